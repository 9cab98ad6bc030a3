//! Day-ahead price points: public series (ENTSO-E, imported files) and organisations' own uploads.
//!
//! Public prices are stored under the nil UUID instead of a NULL `org_id` (see the 0002
//! migration); [`OrgScope`] never holds the nil UUID for a real organisation because ids are v7.
//! On reads an organisation's uploads take precedence over public prices wherever they overlap.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::validation::FieldError;
use voltplan_core::{PriceSlot, PriceZone};

use crate::{OrgScope, Result, StoreError};

/// Rows per multi-row INSERT. Each row binds 7 parameters: 2,000 rows = 14,000 parameters, under
/// SQLite's 32,766 and PostgreSQL's 65,535, and large enough that a year of quarter-hours
/// (35,136 points) needs only 18 statements.
pub(crate) const UPSERT_CHUNK_ROWS: usize = 2_000;

/// The longest slot any source produces is one hour; a day of margin lets a window read use the
/// primary key's `start_at` range and still find the slot that began before the window.
const MAX_SLOT_LENGTH: Duration = Duration::days(1);

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpsertSummary {
    /// Points in the batch.
    pub received: usize,
    /// Points inserted or changed (price, end or source differed from what was stored).
    pub written: usize,
    /// Points already stored with the same price, end and source: left untouched.
    pub unchanged: usize,
}

/// One stored price point as read back, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPrice {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub price_eur_mwh: f64,
    /// `entsoe`, `upload`, `file:<name>`, … as given to [`PriceStore::upsert_prices`].
    pub source: String,
    /// The organisation that uploaded it; `None` for public prices.
    pub org_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
}

impl StoredPrice {
    pub fn slot(&self) -> PriceSlot {
        PriceSlot {
            start: self.start,
            end: self.end,
            price_eur_mwh: self.price_eur_mwh,
        }
    }
}

#[async_trait]
pub trait PriceStore: Send + Sync {
    /// Inserts or replaces the slots of `zone` for `org` (`None` = public) in one transaction.
    /// Idempotent: a slot already stored with the same price, end and source is not rewritten.
    /// Refuses (writing nothing) empty or inverted slots, non-finite prices, a start instant that
    /// occurs twice in the batch and an empty source.
    async fn upsert_prices(
        &self,
        zone: PriceZone,
        org: Option<OrgScope>,
        source: &str,
        slots: &[PriceSlot],
        received_at: DateTime<Utc>,
    ) -> Result<UpsertSummary>;

    /// The slots of `zone` that overlap `[from, to)`, ascending by start. With `org`, that
    /// organisation's uploads are merged over the public prices: where they overlap, the upload
    /// wins and a public slot keeps only the parts no upload covers.
    async fn read_prices(
        &self,
        zone: PriceZone,
        org: Option<OrgScope>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredPrice>>;

    /// End of the last public slot of `zone`, if any: where the fetch scheduler resumes.
    async fn price_coverage(&self, zone: PriceZone) -> Result<Option<DateTime<Utc>>>;

    /// Distinct price zones of vehicles that are not deleted, ascending by wire name.
    async fn zones_in_use(&self) -> Result<Vec<PriceZone>>;
}

/// The `org_id` column value for a scope: the nil UUID stands for "public".
pub(crate) fn org_key(org: Option<OrgScope>) -> Uuid {
    org.map_or(Uuid::nil(), |scope| scope.id())
}

pub(crate) fn validate_batch(source: &str, slots: &[PriceSlot]) -> Result<()> {
    let mut errors = Vec::new();
    if source.trim().is_empty() {
        errors.push(FieldError::at(
            &["source"],
            "missing",
            "A price source is required",
        ));
    }
    for (index, slot) in slots.iter().enumerate() {
        let index = index.to_string();
        if slot.end <= slot.start {
            errors.push(FieldError::at(
                &["slots", &index],
                "value_error",
                format!(
                    "Slot {}..{} does not end after it starts",
                    slot.start, slot.end
                ),
            ));
        }
        if !voltplan_core::price::is_plausible_price(slot.price_eur_mwh) {
            errors.push(FieldError::at(
                &["slots", &index, "price_eur_mwh"],
                "value_error",
                format!(
                    "Price must be a finite number between -{limit} and {limit} per MWh",
                    limit = voltplan_core::price::PRICE_LIMIT_EUR_MWH
                ),
            ));
        }
    }
    // One INSERT … ON CONFLICT DO UPDATE may not touch a row twice (PostgreSQL refuses it), and a
    // batch that names a slot twice is ambiguous anyway.
    for start in voltplan_core::price::duplicate_starts(slots) {
        errors.push(FieldError::at(
            &["slots"],
            "duplicate",
            format!("Start {start} occurs more than once"),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(errors))
    }
}

/// Lower bound for the `start_at` range scan of a window read.
pub(crate) fn scan_from(from: DateTime<Utc>) -> DateTime<Utc> {
    from - MAX_SLOT_LENGTH
}

#[derive(sqlx::FromRow)]
pub(crate) struct PriceRow {
    pub org_id: Uuid,
    pub start_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    pub price_eur_mwh: f64,
    pub source: String,
    pub received_at: DateTime<Utc>,
}

impl From<PriceRow> for StoredPrice {
    fn from(row: PriceRow) -> Self {
        StoredPrice {
            start: row.start_at,
            end: row.end_at,
            price_eur_mwh: row.price_eur_mwh,
            source: row.source,
            org_id: (!row.org_id.is_nil()).then_some(row.org_id),
            received_at: row.received_at,
        }
    }
}

/// Merges an organisation's slots over public ones. Both inputs ascending by start and each free
/// of overlaps. A public slot overlapped by uploads keeps the uncovered parts of its interval,
/// with its price (a price per MWh holds for any part of its slot).
pub(crate) fn merge_precedence(
    own: Vec<StoredPrice>,
    public: Vec<StoredPrice>,
) -> Vec<StoredPrice> {
    if own.is_empty() {
        return public;
    }
    let mut merged = Vec::with_capacity(own.len() + public.len());
    let mut first_relevant = 0;
    for slot in public {
        // Uploads ending before this slot cannot overlap it or any later public slot.
        while first_relevant < own.len() && own[first_relevant].end <= slot.start {
            first_relevant += 1;
        }
        let mut cursor = slot.start;
        for upload in own[first_relevant..]
            .iter()
            .take_while(|upload| upload.start < slot.end)
        {
            if upload.start > cursor {
                merged.push(StoredPrice {
                    start: cursor,
                    end: upload.start,
                    ..slot.clone()
                });
            }
            cursor = cursor.max(upload.end);
        }
        if cursor == slot.start {
            merged.push(slot);
        } else if cursor < slot.end {
            merged.push(StoredPrice {
                start: cursor,
                ..slot
            });
        }
    }
    merged.extend(own);
    merged.sort_by_key(|price| price.start);
    merged
}

/// Implements [`PriceStore`] for a backend. `$store` must have `read` and `write` pools and a
/// `begin_write()` that opens a write transaction (BEGIN IMMEDIATE on SQLite); `$db` is its
/// sqlx database type.
macro_rules! price_store_impl {
    ($store:ty, db = $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::PriceStore for $store {
            async fn upsert_prices(
                &self,
                zone: voltplan_core::PriceZone,
                org: Option<$crate::OrgScope>,
                source: &str,
                slots: &[voltplan_core::PriceSlot],
                received_at: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<$crate::UpsertSummary> {
                $crate::prices::validate_batch(source, slots)?;
                let org_id = $crate::prices::org_key(org);
                let mut written = 0usize;
                let mut tx = self.begin_write().await?;
                for chunk in slots.chunks($crate::prices::UPSERT_CHUNK_ROWS) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO price_points \
                         (zone, org_id, start_at, end_at, price_eur_mwh, source, received_at) ",
                    );
                    insert.push_values(chunk, |mut row, slot| {
                        row.push_bind(zone.as_str())
                            .push_bind(org_id)
                            .push_bind(slot.start)
                            .push_bind(slot.end)
                            .push_bind(slot.price_eur_mwh)
                            .push_bind(source)
                            .push_bind(received_at);
                    });
                    // The WHERE makes an identical re-delivery a no-op: the row is not rewritten
                    // and not counted, which is how callers tell "already stored" from "changed".
                    insert.push(
                        " ON CONFLICT (zone, org_id, start_at) DO UPDATE SET \
                         end_at = excluded.end_at, price_eur_mwh = excluded.price_eur_mwh, \
                         source = excluded.source, received_at = excluded.received_at \
                         WHERE price_points.price_eur_mwh <> excluded.price_eur_mwh \
                         OR price_points.end_at <> excluded.end_at \
                         OR price_points.source <> excluded.source",
                    );
                    let done = insert.build().execute(&mut *tx).await?;
                    written += usize::try_from(done.rows_affected()).unwrap_or(usize::MAX);
                }
                tx.commit().await?;
                Ok($crate::UpsertSummary {
                    received: slots.len(),
                    written,
                    unchanged: slots.len().saturating_sub(written),
                })
            }

            async fn read_prices(
                &self,
                zone: voltplan_core::PriceZone,
                org: Option<$crate::OrgScope>,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
            ) -> $crate::Result<Vec<$crate::StoredPrice>> {
                if to <= from {
                    return Ok(Vec::new());
                }
                let org_id = $crate::prices::org_key(org);
                let rows: Vec<$crate::prices::PriceRow> = sqlx::query_as(
                    "SELECT org_id, start_at, end_at, price_eur_mwh, source, received_at \
                     FROM price_points \
                     WHERE zone = $1 AND org_id IN ($2, $3) \
                     AND start_at >= $4 AND start_at < $5 AND end_at > $6 \
                     ORDER BY start_at",
                )
                .bind(zone.as_str())
                .bind(uuid::Uuid::nil())
                .bind(org_id)
                .bind($crate::prices::scan_from(from))
                .bind(to)
                .bind(from)
                .fetch_all(&self.read)
                .await?;
                let (own, public): (Vec<$crate::StoredPrice>, Vec<$crate::StoredPrice>) = rows
                    .into_iter()
                    .map($crate::StoredPrice::from)
                    .partition(|price| price.org_id.is_some());
                Ok($crate::prices::merge_precedence(own, public))
            }

            async fn price_coverage(
                &self,
                zone: voltplan_core::PriceZone,
            ) -> $crate::Result<Option<chrono::DateTime<chrono::Utc>>> {
                // The slot with the latest start also has the latest end (slots of one scope do not
                // overlap), and ordering by the key column reads one index entry; MAX(end_at) would
                // scan the zone and, on SQLite, come back as untyped text.
                let row: Option<(chrono::DateTime<chrono::Utc>,)> = sqlx::query_as(
                    "SELECT end_at FROM price_points WHERE zone = $1 AND org_id = $2 \
                     ORDER BY start_at DESC LIMIT 1",
                )
                .bind(zone.as_str())
                .bind(uuid::Uuid::nil())
                .fetch_optional(&self.read)
                .await?;
                Ok(row.map(|(end,)| end))
            }

            async fn zones_in_use(&self) -> $crate::Result<Vec<voltplan_core::PriceZone>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT DISTINCT price_zone FROM electric_vehicles \
                     WHERE deleted_at IS NULL ORDER BY price_zone",
                )
                .fetch_all(&self.read)
                .await?;
                rows.into_iter()
                    .map(|(zone,)| {
                        zone.parse::<voltplan_core::PriceZone>().map_err(|error| {
                            $crate::StoreError::Corrupt(format!("electric_vehicles: {error}"))
                        })
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use price_store_impl;

/// The prices of `zone` as the zone catalogue defines them. A derived zone (`AT_HOURLY`: hourly
/// means of `AT`'s quarter-hours) is read from its base zone and averaged per hour, unless prices
/// were stored under the derived zone itself (an upload or import for it wins). An hour whose
/// quarter-hours are incomplete is left out, so it shows as a gap rather than a wrong mean.
pub async fn read_zone_prices<S: PriceStore + ?Sized>(
    store: &S,
    zone: PriceZone,
    org: Option<OrgScope>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StoredPrice>> {
    let own = store.read_prices(zone, org, from, to).await?;
    let voltplan_core::zone::PriceSource::HourlyMeanOf(base) = zone.info().source else {
        return Ok(own);
    };
    if !own.is_empty() {
        return Ok(own);
    }
    let base_prices = store.read_prices(base, org, from, to).await?;
    let Some(received_at) = base_prices.iter().map(|p| p.received_at).max() else {
        return Ok(Vec::new());
    };
    let slots: Vec<PriceSlot> = base_prices.iter().map(StoredPrice::slot).collect();
    let hourly =
        voltplan_core::price::resample(&slots, voltplan_core::Resolution::Hour).map_err(|e| {
            StoreError::Corrupt(format!("prices of {base} cannot be averaged per hour: {e}"))
        })?;
    Ok(hourly
        .into_iter()
        .map(|slot| StoredPrice {
            start: slot.start,
            end: slot.end,
            price_eur_mwh: slot.price_eur_mwh,
            source: format!("hourly-mean:{base}"),
            org_id: None,
            received_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, hour, minute, 0).unwrap()
    }

    fn price(start: DateTime<Utc>, minutes: i64, value: f64, org: Option<Uuid>) -> StoredPrice {
        StoredPrice {
            start,
            end: start + Duration::minutes(minutes),
            price_eur_mwh: value,
            source: if org.is_some() { "upload" } else { "entsoe" }.to_owned(),
            org_id: org,
            received_at: at(0, 0),
        }
    }

    #[test]
    fn uploads_cut_public_slots_to_their_uncovered_parts() {
        let org = Some(Uuid::now_v7());
        let public = vec![
            price(at(0, 0), 60, 10.0, None),
            price(at(1, 0), 60, 20.0, None),
        ];
        let own = vec![
            price(at(0, 15), 15, 1.0, org),
            price(at(1, 0), 15, 2.0, org),
            price(at(1, 15), 15, 3.0, org),
            price(at(1, 30), 15, 4.0, org),
            price(at(1, 45), 15, 5.0, org),
        ];
        let merged = merge_precedence(own, public);
        let spans: Vec<_> = merged
            .iter()
            .map(|p| (p.start, p.end, p.price_eur_mwh))
            .collect();
        assert_eq!(
            spans,
            vec![
                (at(0, 0), at(0, 15), 10.0),
                (at(0, 15), at(0, 30), 1.0),
                (at(0, 30), at(1, 0), 10.0),
                (at(1, 0), at(1, 15), 2.0),
                (at(1, 15), at(1, 30), 3.0),
                (at(1, 30), at(1, 45), 4.0),
                (at(1, 45), at(2, 0), 5.0),
            ]
        );
    }

    #[test]
    fn a_batch_naming_a_start_twice_is_refused() {
        let slot = PriceSlot {
            start: at(0, 0),
            end: at(0, 15),
            price_eur_mwh: 1.0,
        };
        assert!(matches!(
            validate_batch("entsoe", &[slot, slot]),
            Err(StoreError::Invalid(_))
        ));
        let nan = PriceSlot {
            price_eur_mwh: f64::NAN,
            ..slot
        };
        assert!(matches!(
            validate_batch("entsoe", &[nan]),
            Err(StoreError::Invalid(_))
        ));
        assert!(validate_batch("entsoe", &[slot]).is_ok());
    }
}
