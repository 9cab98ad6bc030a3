//! Day-ahead prices as one batch of cycles sees them: one book per (zone, organisation), read
//! once per batch, pricing the energy a reading saw and the session's baseline.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::{PriceSlot, PriceZone};
use voltplan_store::{OrgScope, Store, StoreError};

/// Prices for one (zone, organisation), read once per batch.
#[derive(Debug, Default)]
pub struct PriceBook {
    pub slots: Vec<PriceSlot>,
    /// Changes when new prices are published (the end of coverage moves): a re-plan trigger.
    pub coverage_end: Option<DateTime<Utc>>,
}

impl PriceBook {
    /// The price of the slot containing `at`, if published.
    pub fn price_at(&self, at: DateTime<Utc>) -> Option<f64> {
        let i = self.slots.partition_point(|s| s.end <= at);
        self.slots
            .get(i)
            .filter(|s| s.start <= at)
            .map(|s| s.price_eur_mwh)
    }

    /// Cost in EUR of `energy_kwh` drawn evenly over `[from, to)`, split across the slots it spans.
    /// Unpriced stretches cost nothing (and are rare: the planner needs prices too).
    pub fn cost_of(&self, energy_kwh: f64, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        if energy_kwh <= 0.0 {
            return 0.0;
        }
        let total = (to - from).num_milliseconds() as f64;
        if total <= 0.0 {
            return energy_kwh * self.price_at(to).unwrap_or(0.0) / 1000.0;
        }
        let first = self.slots.partition_point(|s| s.end <= from);
        let mut cost = 0.0;
        for slot in self.slots[first..].iter().take_while(|s| s.start < to) {
            let overlap = (slot.end.min(to) - slot.start.max(from)).num_milliseconds() as f64;
            if overlap > 0.0 {
                cost += energy_kwh * (overlap / total) * slot.price_eur_mwh / 1000.0;
            }
        }
        cost
    }

    /// Cost of drawing `energy_kwh` at `power_kw` from `start` on: the session baseline.
    pub fn cost_charging_at_once(
        &self,
        energy_kwh: f64,
        power_kw: f64,
        start: DateTime<Utc>,
    ) -> f64 {
        if energy_kwh <= 0.0 || power_kw <= 0.0 {
            return 0.0;
        }
        let first = self.slots.partition_point(|s| s.end <= start);
        let mut left = energy_kwh;
        let mut cost = 0.0;
        for slot in &self.slots[first..] {
            if left <= 0.0 {
                break;
            }
            let hours = (slot.end - slot.start.max(start)).num_milliseconds() as f64 / 3_600_000.0;
            let take = (hours * power_kw).min(left);
            cost += take * slot.price_eur_mwh / 1000.0;
            left -= take;
        }
        cost
    }
}

/// How far back the planner's forecast looks (same local time on the previous 7 days).
const PRICE_LOOKBACK: Duration = Duration::days(8);
/// How far ahead the planner may plan (a weekly deadline is at most 7 days away).
const PRICE_LOOKAHEAD: Duration = Duration::days(8);

/// The price books of a batch: one per (zone, organisation) of its devices.
pub(crate) async fn load_price_books(
    store: &dyn Store,
    keys: impl IntoIterator<Item = (PriceZone, Uuid)>,
    now: DateTime<Utc>,
) -> Result<HashMap<(PriceZone, Uuid), Arc<PriceBook>>, StoreError> {
    let mut books = HashMap::new();
    for key in keys {
        if books.contains_key(&key) {
            continue;
        }
        // A session may have started before the look-back: its baseline needs those prices.
        let from = now - PRICE_LOOKBACK;
        let stored = voltplan_store::read_zone_prices(
            store,
            key.0,
            Some(OrgScope::new(key.1)),
            from,
            now + PRICE_LOOKAHEAD,
        )
        .await?;
        let slots: Vec<PriceSlot> = stored.iter().map(|p| p.slot()).collect();
        let coverage_end = slots.last().map(|s| s.end);
        books.insert(
            key,
            Arc::new(PriceBook {
                slots,
                coverage_end,
            }),
        );
    }
    Ok(books)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::t0;
    use chrono::Duration;

    #[test]
    fn price_book_splits_energy_over_the_slots_it_spans() {
        let slot = |h: i64, price: f64| PriceSlot {
            start: t0() + Duration::hours(h),
            end: t0() + Duration::hours(h + 1),
            price_eur_mwh: price,
        };
        let book = PriceBook {
            slots: vec![slot(0, 100.0), slot(1, 300.0)],
            coverage_end: None,
        };
        // 2 kWh over 30 min on each side of the boundary: 1 kWh at 100, 1 kWh at 300.
        let cost = book.cost_of(
            2.0,
            t0() + Duration::minutes(30),
            t0() + Duration::minutes(90),
        );
        assert!((cost - 0.4).abs() < 1e-9);
        // At 11 kW from the start: 11 kWh at 100, then 1 kWh at 300.
        let baseline = book.cost_charging_at_once(12.0, 11.0, t0());
        assert!((baseline - (1.1 + 0.3)).abs() < 1e-9);
    }
}
