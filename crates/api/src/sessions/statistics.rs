//! Savings and statistics from the recorded charging sessions: the Statistics shape (Podero
//! §3.11) of a device's (EV's or wallbox's) savings per bucket, and the organisation's total.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::time::calendar::{Bucket, Span, bucket_of};
use voltplan_store::fleet::{DeviceTable, SessionRecord};
use voltplan_store::{OrgScope, Store};

use crate::error::ApiResult;

/// Sessions are summed page by page, so memory stays flat however many there are.
const SESSION_PAGE: i64 = 500;

#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsMetadataOut {
    pub requested_at: DateTime<Utc>,
    /// The query as understood, defaults filled in.
    #[schema(value_type = Object)]
    pub query: Value,
    /// Unit of each figure, by its path in a data row.
    #[schema(value_type = Object)]
    pub units: Value,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodOut {
    pub start_period: DateTime<Utc>,
    /// Exclusive.
    pub end_period: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavingsFiguresOut {
    /// EUR: Σ (cost of charging at once on plug-in − actual cost).
    pub total: f64,
    /// Savings in percent of the cost of charging at once; `null` when that cost is 0.
    pub percentage: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsumptionOut {
    /// kWh charged.
    pub total: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvStatisticsOut {
    pub estimated_consumption_wh: f64,
    pub charge_session_count: i64,
    /// Mean of the sessions' average charge power; `null` without sessions that report it.
    pub average_charge_power_w: Option<f64>,
}

/// One bucket of the Statistics shape (Podero §3.11).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsRowOut {
    pub resolution: String,
    pub period: PeriodOut,
    pub savings: SavingsFiguresOut,
    /// Voltplan extension: the savings on the customer's bill, over the bucket's sessions priced
    /// by an energy contract (`docs/tariffs.md`); null when none was, or when they were in more
    /// than one currency.
    pub customer_savings: Option<CustomerSavingsOut>,
    pub consumption: ConsumptionOut,
    /// Always `null` for an electric vehicle.
    #[schema(value_type = Option<Object>)]
    pub heat_pump: Option<Value>,
    pub electric_vehicle: EvStatisticsOut,
    /// Always `null` for an electric vehicle.
    #[schema(value_type = Option<Object>)]
    pub inverter: Option<Value>,
}

/// Savings on the customer's price.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerSavingsOut {
    pub currency: String,
    pub total: f64,
    /// In percent of what charging at once would have cost the customer.
    pub percentage: Option<f64>,
    /// Sessions priced by a contract.
    pub sessions: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsOut {
    pub metadata: StatisticsMetadataOut,
    pub data: Vec<StatisticsRowOut>,
}

/// Savings of the whole organisation, in EUR.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSavingsOut {
    pub total_savings: f64,
    /// Voltplan steers no heat pumps: always 0.
    pub heat_pump_savings: f64,
    pub electric_vehicle_savings: f64,
    /// Voltplan steers no inverters: always 0.
    pub inverter_savings: f64,
}

/// What the sessions of one bucket add up to.
#[derive(Default)]
struct BucketSums {
    baseline_eur: f64,
    savings_eur: f64,
    energy_kwh: f64,
    sessions: i64,
    power_kw_sum: f64,
    power_kw_count: u32,
    customer: Option<CustomerSums>,
    /// Sessions of the bucket were priced in more than one currency.
    mixed_currencies: bool,
}

struct CustomerSums {
    currency: String,
    baseline: f64,
    savings: f64,
    sessions: i64,
}

impl BucketSums {
    fn add(&mut self, s: &SessionRecord) {
        self.baseline_eur += s.data.baseline_cost_eur;
        self.savings_eur += session_savings(s);
        self.energy_kwh += s.data.energy_charged_kwh;
        self.sessions += 1;
        if let Some(kw) = s.data.avg_charge_power_kw {
            self.power_kw_sum += kw;
            self.power_kw_count += 1;
        }
        let d = &s.data;
        if let (Some(currency), Some(baseline), Some(savings)) = (
            &d.customer_currency,
            d.customer_baseline_cost,
            d.customer_savings,
        ) {
            let sums = self.customer.get_or_insert_with(|| CustomerSums {
                currency: currency.clone(),
                baseline: 0.0,
                savings: 0.0,
                sessions: 0,
            });
            self.mixed_currencies |= sums.currency != *currency;
            sums.baseline += baseline;
            sums.savings += savings;
            sums.sessions += 1;
        }
    }

    fn row(&self, bucket: Bucket, (start, end): Span) -> StatisticsRowOut {
        StatisticsRowOut {
            resolution: bucket.name().to_owned(),
            period: PeriodOut {
                start_period: start,
                end_period: end,
            },
            savings: SavingsFiguresOut {
                total: round_to(self.savings_eur, 4),
                percentage: (self.baseline_eur > 0.0)
                    .then(|| round_to(100.0 * self.savings_eur / self.baseline_eur, 2)),
            },
            customer_savings: self
                .customer
                .as_ref()
                .filter(|_| !self.mixed_currencies)
                .map(|c| CustomerSavingsOut {
                    currency: c.currency.clone(),
                    total: round_to(c.savings, 4),
                    percentage: (c.baseline > 0.0)
                        .then(|| round_to(100.0 * c.savings / c.baseline, 2)),
                    sessions: c.sessions,
                }),
            consumption: ConsumptionOut {
                total: round_to(self.energy_kwh, 4),
            },
            heat_pump: None,
            electric_vehicle: EvStatisticsOut {
                estimated_consumption_wh: round_to(self.energy_kwh * 1000.0, 1),
                charge_session_count: self.sessions,
                average_charge_power_w: (self.power_kw_count > 0).then(|| {
                    round_to(
                        1000.0 * self.power_kw_sum / f64::from(self.power_kw_count),
                        1,
                    )
                }),
            },
            inverter: None,
        }
    }
}

/// One row per bucket from the sessions of `device` (in `table`) that started in `range`; a
/// session counts in the bucket of its plug-in.
pub(super) async fn savings_rows(
    store: &dyn Store,
    org: OrgScope,
    (table, device): (DeviceTable, Uuid),
    range: Span,
    bucket: Bucket,
    buckets: &[Span],
) -> ApiResult<Vec<StatisticsRowOut>> {
    let mut sums: Vec<BucketSums> = buckets.iter().map(|_| BucketSums::default()).collect();
    for_each_session(store, org, table, Some(device), range, |s| {
        if let Some(sum) = bucket_of(buckets, s.plug_in_time).and_then(|i| sums.get_mut(i)) {
            sum.add(s);
        }
    })
    .await?;
    Ok(buckets
        .iter()
        .zip(&sums)
        .map(|(&span, sum)| sum.row(bucket, span))
        .collect())
}

/// The savings of every session of the organisation that started in `range`.
pub(super) async fn org_savings_total(
    store: &dyn Store,
    org: OrgScope,
    range: Span,
) -> ApiResult<DeviceSavingsOut> {
    // A wallbox charges an EV: Podero's shape has no wallbox entry, so its sessions count as
    // the EVs' (the OpenAPI description says so).
    let mut total = 0.0;
    for table in DeviceTable::ALL {
        for_each_session(store, org, table, None, range, |s| {
            total += session_savings(s);
        })
        .await?;
    }
    let total = round_to(total, 4);
    Ok(DeviceSavingsOut {
        total_savings: total,
        heat_pump_savings: 0.0,
        electric_vehicle_savings: total,
        inverter_savings: 0.0,
    })
}

/// Calls `each` on every session in `table` of `device` (or the whole organisation) that started
/// in `[from, to)`, a page at a time.
async fn for_each_session(
    store: &dyn Store,
    org: OrgScope,
    table: DeviceTable,
    device: Option<Uuid>,
    (from, to): Span,
    mut each: impl FnMut(&SessionRecord),
) -> ApiResult<()> {
    let mut offset = 0;
    loop {
        let (total, page) = store
            .list_device_sessions(table, org, device, from, to, SESSION_PAGE, offset)
            .await?;
        page.iter().for_each(&mut each);
        offset += page.len() as i64;
        if page.is_empty() || offset >= total {
            return Ok(());
        }
    }
}

pub(super) fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// What charging at once would have cost minus what the charge cost.
fn session_savings(s: &SessionRecord) -> f64 {
    s.data.baseline_cost_eur - s.data.actual_cost_eur
}
