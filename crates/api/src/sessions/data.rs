//! `/data`: an EV's time series in UTC-aligned buckets, aggregated from the worker's readings.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use voltplan_core::time::calendar::bucket_of;
use voltplan_store::fleet::ReadingRecord;

use super::query::DataRange;
use super::statistics::{StatisticsMetadataOut, round_to};

/// One row of the EV time series; only the requested keywords are present.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only: rows are built as maps holding the requested keys
pub struct EvDataRowOut {
    /// Start of the UTC-aligned bucket; the first one may start before `from_datetime` when
    /// that is not on the bucket grid (its figures still cover only the requested range).
    time: DateTime<Utc>,
    /// Mean day-ahead price seen by the vehicle, EUR/MWh.
    price: Option<f64>,
    /// Last battery level in the bucket, percent.
    battery_level: Option<f64>,
    /// Charging at any reading in the bucket.
    is_charging: Option<bool>,
    /// Plugged in at any reading in the bucket.
    is_plugged_in: Option<bool>,
    /// Inside the geo-fence at the last reading of the bucket.
    is_at_optimized_location: Option<bool>,
    /// Energy drawn from the grid, Wh.
    estimated_consumption: Option<f64>,
    /// What charging at once would have drawn, Wh. Not recorded yet: always `null`.
    unoptimized_consumption: Option<f64>,
    /// Voltplan extension, only when named in `keywords`: the mean price on the customer's energy
    /// contract (`docs/tariffs.md`), per MWh in the contract's currency; `null` without one.
    customer_price: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvDataOut {
    pub metadata: StatisticsMetadataOut,
    /// Rows hold `time` and the requested keywords only.
    #[schema(value_type = Vec<EvDataRowOut>)]
    pub data: Vec<Map<String, Value>>,
}
/// One row per bucket of `request` that has readings, or every bucket with `fill_missing`: `time`
/// and the requested figures.
pub(super) fn rows(request: &DataRange, readings: &[ReadingRecord]) -> Vec<Map<String, Value>> {
    let buckets = &request.buckets;
    let mut grouped: Vec<Vec<&ReadingRecord>> = buckets.iter().map(|_| Vec::new()).collect();
    for r in readings {
        if let Some(group) = bucket_of(buckets, r.at).and_then(|i| grouped.get_mut(i)) {
            group.push(r);
        }
    }
    buckets
        .iter()
        .zip(&grouped)
        .filter(|(_, group)| request.fill_missing || !group.is_empty())
        .map(|(&(start, _), group)| {
            let figures = aggregate(group);
            let mut row = Map::new();
            // The bucket's aligned start, not the clipped one: rows sit on the UTC grid.
            let time = request.bucket.floor(start).unwrap_or(start);
            row.insert("time".into(), json!(time));
            for k in &request.keywords {
                row.insert(
                    (*k).to_owned(),
                    figures.get(*k).cloned().unwrap_or(Value::Null),
                );
            }
            row
        })
        .collect()
}

/// The figures of one bucket, from its readings (sorted by time).
fn aggregate(readings: &[&ReadingRecord]) -> Map<String, Value> {
    let prices: Vec<f64> = readings.iter().filter_map(|r| r.price_eur_mwh).collect();
    let customer_prices: Vec<f64> = readings
        .iter()
        .filter_map(|r| r.customer_price_per_mwh)
        .collect();
    let any = |f: fn(&ReadingRecord) -> Option<bool>| {
        let seen: Vec<bool> = readings.iter().filter_map(|r| f(r)).collect();
        (!seen.is_empty()).then(|| seen.iter().any(|b| *b))
    };
    let energy: Vec<f64> = readings.iter().filter_map(|r| r.energy_kwh).collect();
    let mut row = Map::new();
    row.insert(
        "price".into(),
        json!(
            (!prices.is_empty())
                .then(|| round_to(prices.iter().sum::<f64>() / prices.len() as f64, 4))
        ),
    );
    row.insert(
        "battery_level".into(),
        json!(readings.iter().rev().find_map(|r| r.battery_level)),
    );
    row.insert("is_charging".into(), json!(any(|r| r.is_charging)));
    row.insert("is_plugged_in".into(), json!(any(|r| r.is_plugged_in)));
    row.insert(
        "is_at_optimized_location".into(),
        json!(readings.iter().rev().find_map(|r| r.is_at_home)),
    );
    row.insert(
        "estimated_consumption".into(),
        json!((!energy.is_empty()).then(|| round_to(energy.iter().sum::<f64>() * 1000.0, 1))),
    );
    row.insert("unoptimized_consumption".into(), Value::Null);
    row.insert(
        "customer_price".into(),
        json!((!customer_prices.is_empty()).then(|| round_to(
            customer_prices.iter().sum::<f64>() / customer_prices.len() as f64,
            4
        ))),
    );
    row
}
