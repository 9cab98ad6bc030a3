//! What a customer really pays per slot: the energy contract (Podero §3.3) and the tariff
//! components Voltplan adds to it (grid fees and levies by time window, VAT, a spot markup).
//!
//! The formula, per quarter-hour `q` (`docs/tariffs.md` has a worked example):
//!
//! ```text
//! energy(q)   = the contract's price at q            (monthly / yearly, or spot_hourly with prices given)
//!             | wholesale(q) / 1000 + spot_markup    (spot, or no contract price covering q)
//! customer(q) = energy(q)                                               if the price includes external components
//!             | (energy(q) + Σ component(q)) × (1 + vat_percentage / 100) otherwise
//! ```
//!
//! all per kWh in the contract's currency; a slot of the price series costs the mean of its
//! quarter-hours (so an hourly zone with a window that starts at :15 is priced exactly). A component
//! applies on the local dates of its validity; inside one of its windows it costs the window's
//! price, elsewhere its base price. Local times are in the contract's `timezone` (default: the price
//! zone's).
//!
//! Pure: the store keeps contracts, the worker and the backtest call [`customer_prices`].

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::price::{PRICE_LIMIT_EUR_MWH, PriceSlot};
use crate::time::WEEKDAYS;
use crate::validation::{FieldError, LocPart};
use crate::zone::PriceZone;

/// `energy_contract_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractType {
    SpotHourly,
    Monthly,
    Yearly,
}

impl ContractType {
    pub const ALL: [ContractType; 3] = [Self::SpotHourly, Self::Monthly, Self::Yearly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpotHourly => "spot_hourly",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One entry of `energy_prices`: a price per kWh from `timestamp` on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContractPrice {
    pub price: f64,
    pub timestamp: DateTime<Utc>,
}

/// A stretch of the week during which a component has another price, e.g. a §14a Modul 3 low
/// window `00:00–06:00` on every day. `to` at or before `from` runs past midnight into the next
/// day (`22:00–06:00`); `from == to` is the whole day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Days on which the window starts, `mon`…`sun`.
    pub days: Vec<String>,
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub price_per_kwh: f64,
}

/// A grid fee, levy or other charge per kWh on top of the energy price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TariffComponent {
    pub name: String,
    /// The price outside every window.
    pub price_per_kwh: f64,
    #[serde(default)]
    pub windows: Vec<TimeWindow>,
    /// First local date the component applies (none: always has).
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    /// Last local date the component applies, inclusive (none: open-ended).
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
}

/// A user's energy contract with Voltplan's tariff extension.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EnergyContract {
    pub energy_contract_type: Option<ContractType>,
    pub energy_prices: Vec<ContractPrice>,
    pub meter_id: Option<String>,
    pub supplier: Option<String>,
    pub currency_energy_price: Option<String>,
    pub energy_price_includes_external_components: Option<bool>,
    pub tariff_components: Vec<TariffComponent>,
    pub vat_percentage: Option<f64>,
    pub spot_markup_per_kwh: Option<f64>,
    /// IANA time zone of the windows and validity dates (none: the price zone's).
    pub timezone: Option<String>,
}

/// The largest price per kWh accepted anywhere in a contract: far above any retail price, small
/// enough that a sum of them stays a plausible price for the planner.
pub const MAX_PRICE_PER_KWH: f64 = 5.0;
/// At most this many components, windows per component and `energy_prices` entries.
pub const MAX_COMPONENTS: usize = 20;
pub const MAX_WINDOWS: usize = 48;
pub const MAX_ENERGY_PRICES: usize = 10_000;

/// The currencies of the supported day-ahead markets (`ZoneInfo::currency`): EUR, and GBP in the
/// United Kingdom. A contract that follows the market is in one of them.
pub const MARKET_CURRENCIES: [&str; 2] = ["EUR", "GBP"];

/// Why a contract cannot price a device's slots (the device is then planned on wholesale prices).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TariffError {
    #[error(
        "the contract is in {currency} but its energy price follows the day-ahead market, which is in {market}"
    )]
    CurrencyMismatch {
        currency: String,
        market: &'static str,
    },
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("the customer's price at {at} ({price:.4} per kWh) is outside the plausible range")]
    Implausible { at: DateTime<Utc>, price: f64 },
}

/// A device's prices on the customer's bill.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerPrices {
    /// The wholesale series' slots, priced per MWh in `currency`.
    pub slots: Vec<PriceSlot>,
    pub currency: String,
}

const QUARTER: i64 = 15;

impl EnergyContract {
    /// The contract's currency; when none is given, the market's of `zone`.
    pub fn currency_in(&self, zone: PriceZone) -> &str {
        self.currency_energy_price
            .as_deref()
            .unwrap_or(zone.info().currency)
    }

    /// Whether some quarter-hour's energy price comes from the day-ahead market.
    fn follows_spot(&self) -> bool {
        match self.energy_contract_type {
            None | Some(ContractType::SpotHourly) => true,
            Some(ContractType::Monthly | ContractType::Yearly) => self.energy_prices.is_empty(),
        }
    }

    fn time_zone(&self, zone_tz: Tz) -> Result<Tz, TariffError> {
        match &self.timezone {
            None => Ok(zone_tz),
            Some(name) => name
                .parse()
                .map_err(|_| TariffError::UnknownTimeZone(name.clone())),
        }
    }

    /// The energy price per kWh over the quarter-hour starting at `q`, before components.
    fn energy_at(&self, q: DateTime<Utc>, wholesale_eur_mwh: f64) -> f64 {
        let spot = wholesale_eur_mwh / 1000.0 + self.spot_markup_per_kwh.unwrap_or(0.0);
        // `energy_prices` is sorted by timestamp (validation refuses duplicates, the store sorts).
        let i = self.energy_prices.partition_point(|p| p.timestamp <= q);
        match self.energy_contract_type {
            None | Some(ContractType::SpotHourly) => {
                // An hourly price covers its own hour only; other hours follow the market.
                i.checked_sub(1)
                    .map(|k| self.energy_prices[k])
                    .filter(|p| q < p.timestamp + Duration::hours(1))
                    .map_or(spot, |p| p.price)
            }
            Some(ContractType::Monthly | ContractType::Yearly) => {
                // A step function; before its first entry the first price holds.
                match i.checked_sub(1).or(self.energy_prices.first().map(|_| 0)) {
                    Some(k) => self.energy_prices[k].price,
                    None => spot,
                }
            }
        }
    }

    /// The customer's price per kWh over the quarter-hour starting at `q` (UTC), local time `local`.
    fn customer_at(&self, q: DateTime<Utc>, wholesale_eur_mwh: f64, tz: Tz) -> f64 {
        let energy = self.energy_at(q, wholesale_eur_mwh);
        if self.energy_price_includes_external_components == Some(true) {
            return energy;
        }
        let local = q.with_timezone(&tz).naive_local();
        let components: f64 = self
            .tariff_components
            .iter()
            .map(|c| c.price_at(local.date(), local.time()))
            .sum();
        (energy + components) * (1.0 + self.vat_percentage.unwrap_or(0.0) / 100.0)
    }

    /// Semantic checks the API's parser cannot make field by field; each error is located under
    /// `body`. Nothing here depends on other rows.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let at = |parts: &[LocPart]| {
            let mut loc = vec![LocPart::from("body")];
            loc.extend_from_slice(parts);
            loc
        };
        let currency_problem = match &self.currency_energy_price {
            Some(c) if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) => Some((
                "value_error",
                "an ISO 4217 code of three capital letters, such as EUR".to_owned(),
            )),
            Some(c) if !MARKET_CURRENCIES.contains(&c.as_str()) && self.follows_spot() => Some((
                "value_error",
                format!(
                    "a contract that follows the day-ahead market is in the market's currency, EUR (GBP in the UK); got {c}"
                ),
            )),
            None if !self.energy_prices.is_empty() => Some((
                "missing",
                "required when energy_prices are given".to_owned(),
            )),
            _ => None,
        };
        if let Some((kind, msg)) = currency_problem {
            errors.push(FieldError::new(
                at(&["currency_energy_price".into()]),
                kind,
                msg,
            ));
        }
        for pair in self.energy_prices.windows(2) {
            if pair[0].timestamp == pair[1].timestamp {
                let index = self
                    .energy_prices
                    .iter()
                    .rposition(|p| p.timestamp == pair[1].timestamp)
                    .unwrap_or(0);
                errors.push(FieldError::new(
                    at(&["energy_prices".into(), index.into(), "timestamp".into()]),
                    "value_error",
                    "two prices for the same timestamp",
                ));
                break;
            }
        }
        if let Some(tz) = &self.timezone
            && tz.parse::<Tz>().is_err()
        {
            errors.push(FieldError::new(
                at(&["timezone".into()]),
                "value_error",
                "an IANA time zone name, such as Europe/Berlin",
            ));
        }
        for (i, c) in self.tariff_components.iter().enumerate() {
            if let (Some(from), Some(until)) = (c.valid_from, c.valid_until)
                && until < from
            {
                errors.push(FieldError::new(
                    at(&["tariff_components".into(), i.into(), "valid_until".into()]),
                    "value_error",
                    "must not be before valid_from",
                ));
            }
            for (w, window) in c.windows.iter().enumerate() {
                let loc = |field: &str| {
                    at(&[
                        "tariff_components".into(),
                        i.into(),
                        "windows".into(),
                        w.into(),
                        field.into(),
                    ])
                };
                for (field, time) in [("from", window.from), ("to", window.to)] {
                    if time.minute() % QUARTER as u32 != 0 || time.second() != 0 {
                        errors.push(FieldError::new(
                            loc(field),
                            "value_error",
                            "windows start and end on a quarter-hour (:00, :15, :30, :45)",
                        ));
                    }
                }
                if window.days.is_empty() {
                    errors.push(FieldError::new(
                        loc("days"),
                        "too_short",
                        "name at least one day (mon … sun)",
                    ));
                }
                if let Some(bad) = window.days.iter().find(|d| weekday_index(d).is_none()) {
                    errors.push(FieldError::new(
                        loc("days"),
                        "enum",
                        format!("{bad:?} is not one of mon, tue, wed, thu, fri, sat, sun"),
                    ));
                }
            }
        }
        errors
    }
}

impl TariffComponent {
    /// The component's price per kWh at a local date and time (zero outside its validity).
    pub fn price_at(&self, date: NaiveDate, time: NaiveTime) -> f64 {
        if self.valid_from.is_some_and(|from| date < from)
            || self.valid_until.is_some_and(|until| date > until)
        {
            return 0.0;
        }
        self.windows
            .iter()
            .find(|w| w.covers(date.weekday(), time))
            .map_or(self.price_per_kwh, |w| w.price_per_kwh)
    }
}

impl TimeWindow {
    fn starts_on(&self, day: Weekday) -> bool {
        self.days
            .iter()
            .any(|d| weekday_index(d) == Some(day.num_days_from_monday()))
    }

    /// Whether local `time` on weekday `day` lies in this window (which may have started the day
    /// before, when it runs past midnight).
    fn covers(&self, day: Weekday, time: NaiveTime) -> bool {
        if self.from < self.to {
            self.starts_on(day) && self.from <= time && time < self.to
        } else if self.from == self.to {
            self.starts_on(day)
        } else {
            (self.starts_on(day) && time >= self.from)
                || (self.starts_on(day.pred()) && time < self.to)
        }
    }
}

fn weekday_index(name: &str) -> Option<u32> {
    WEEKDAYS.iter().position(|d| *d == name).map(|i| i as u32)
}

/// The customer's price per MWh for each slot of `zone`'s wholesale series (per MWh in the
/// zone's currency), in the contract's currency: the mean of the slot's quarter-hours (see the
/// module documentation for the formula).
pub fn customer_prices(
    contract: &EnergyContract,
    wholesale: &[PriceSlot],
    zone: PriceZone,
) -> Result<CustomerPrices, TariffError> {
    let market = zone.info().currency;
    let currency = contract.currency_in(zone);
    if contract.follows_spot() && currency != market {
        return Err(TariffError::CurrencyMismatch {
            currency: currency.to_owned(),
            market,
        });
    }
    let tz = contract.time_zone(zone.time_zone())?;
    let mut slots = Vec::with_capacity(wholesale.len());
    for slot in wholesale {
        let mut sum = 0.0;
        let mut weight = 0.0;
        let mut q = slot.start;
        while q < slot.end {
            let next = (q + Duration::minutes(QUARTER)).min(slot.end);
            let minutes = (next - q).num_seconds() as f64 / 60.0;
            sum += contract.customer_at(q, slot.price_eur_mwh, tz) * minutes;
            weight += minutes;
            q = next;
        }
        let per_kwh = if weight > 0.0 { sum / weight } else { 0.0 };
        let per_mwh = per_kwh * 1000.0;
        if !(per_mwh.is_finite() && per_mwh.abs() <= PRICE_LIMIT_EUR_MWH) {
            return Err(TariffError::Implausible {
                at: slot.start,
                price: per_kwh,
            });
        }
        slots.push(PriceSlot {
            price_eur_mwh: per_mwh,
            ..*slot
        });
    }
    Ok(CustomerPrices {
        slots,
        currency: currency.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn hourly(day: NaiveDate, prices: &[f64], tz: Tz) -> Vec<PriceSlot> {
        let start = tz
            .from_local_datetime(&day.and_time(t(0, 0)))
            .single()
            .unwrap()
            .with_timezone(&Utc);
        prices
            .iter()
            .enumerate()
            .map(|(i, p)| PriceSlot {
                start: start + Duration::hours(i as i64),
                end: start + Duration::hours(i as i64 + 1),
                price_eur_mwh: *p,
            })
            .collect()
    }

    /// §14a Modul 3 as a German DSO might publish it: low 00:00–06:00, high 17:00–21:00, standard
    /// otherwise, every day.
    fn modul3() -> TariffComponent {
        let all: Vec<String> = WEEKDAYS.iter().map(|d| (*d).to_owned()).collect();
        TariffComponent {
            name: "grid fee (§14a Modul 3)".into(),
            price_per_kwh: 0.08,
            windows: vec![
                TimeWindow {
                    days: all.clone(),
                    from: t(0, 0),
                    to: t(6, 0),
                    price_per_kwh: 0.02,
                },
                TimeWindow {
                    days: all,
                    from: t(17, 0),
                    to: t(21, 0),
                    price_per_kwh: 0.12,
                },
            ],
            valid_from: None,
            valid_until: None,
        }
    }

    #[test]
    fn spot_contract_adds_markup_components_and_vat() {
        let zone = PriceZone::DeLu;
        let tz = zone.time_zone();
        let day = NaiveDate::from_ymd_opt(2026, 1, 14).unwrap();
        let contract = EnergyContract {
            energy_contract_type: Some(ContractType::SpotHourly),
            currency_energy_price: Some("EUR".into()),
            energy_price_includes_external_components: Some(false),
            tariff_components: vec![
                modul3(),
                TariffComponent {
                    name: "levies".into(),
                    price_per_kwh: 0.05,
                    windows: vec![],
                    valid_from: None,
                    valid_until: None,
                },
            ],
            vat_percentage: Some(19.0),
            spot_markup_per_kwh: Some(0.02),
            ..EnergyContract::default()
        };
        let wholesale = hourly(day, &[100.0; 24], tz);
        let customer = customer_prices(&contract, &wholesale, zone).unwrap();
        // 03:00: (0.10 + 0.02 + 0.02 + 0.05) × 1.19 = 0.2261 €/kWh.
        assert!((customer.slots[3].price_eur_mwh - 226.1).abs() < 1e-9);
        // 12:00 standard: (0.10 + 0.02 + 0.08 + 0.05) × 1.19 = 0.2975.
        assert!((customer.slots[12].price_eur_mwh - 297.5).abs() < 1e-9);
        // 18:00 high: (0.10 + 0.02 + 0.12 + 0.05) × 1.19 = 0.3451.
        assert!((customer.slots[18].price_eur_mwh - 345.1).abs() < 1e-9);
        assert_eq!(customer.currency, "EUR");
    }

    #[test]
    fn an_hour_straddling_a_window_edge_costs_the_mean_of_its_quarters() {
        let zone = PriceZone::DeLu;
        let tz = zone.time_zone();
        let day = NaiveDate::from_ymd_opt(2026, 1, 14).unwrap();
        let mut component = modul3();
        component.windows[0].to = t(5, 15);
        let contract = EnergyContract {
            tariff_components: vec![component],
            ..EnergyContract::default()
        };
        let wholesale = hourly(day, &[0.0; 24], tz);
        let customer = customer_prices(&contract, &wholesale, zone).unwrap();
        // 05:00–06:00: one quarter at 0.02, three at 0.08.
        assert!((customer.slots[5].price_eur_mwh - 65.0).abs() < 1e-9);
    }

    #[test]
    fn fixed_contracts_step_and_all_in_prices_take_nothing_more() {
        let zone = PriceZone::At;
        let tz = zone.time_zone();
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let change = Utc.with_ymd_and_hms(2026, 3, 1, 11, 0, 0).unwrap();
        let contract = EnergyContract {
            energy_contract_type: Some(ContractType::Monthly),
            energy_prices: vec![
                ContractPrice {
                    price: 0.30,
                    timestamp: Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap(),
                },
                ContractPrice {
                    price: 0.25,
                    timestamp: change,
                },
            ],
            currency_energy_price: Some("EUR".into()),
            energy_price_includes_external_components: Some(true),
            tariff_components: vec![modul3()],
            vat_percentage: Some(20.0),
            ..EnergyContract::default()
        };
        let wholesale = hourly(day, &[-50.0; 24], tz);
        let customer = customer_prices(&contract, &wholesale, zone).unwrap();
        assert!((customer.slots[0].price_eur_mwh - 300.0).abs() < 1e-9);
        // 12:00 Vienna = 11:00 UTC, the change.
        assert!((customer.slots[12].price_eur_mwh - 250.0).abs() < 1e-9);
    }

    #[test]
    fn hourly_prices_given_cover_their_hour_and_spot_the_rest() {
        let zone = PriceZone::At;
        let tz = zone.time_zone();
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let wholesale = hourly(day, &[80.0; 24], tz);
        let contract = EnergyContract {
            energy_contract_type: Some(ContractType::SpotHourly),
            energy_prices: vec![ContractPrice {
                price: 0.5,
                timestamp: wholesale[2].start,
            }],
            currency_energy_price: Some("EUR".into()),
            ..EnergyContract::default()
        };
        let customer = customer_prices(&contract, &wholesale, zone).unwrap();
        assert!((customer.slots[2].price_eur_mwh - 500.0).abs() < 1e-9);
        assert!((customer.slots[3].price_eur_mwh - 80.0).abs() < 1e-9);
    }

    #[test]
    fn windows_past_midnight_and_validity_dates() {
        let all: Vec<String> = vec!["fri".into()];
        let c = TariffComponent {
            name: "night".into(),
            price_per_kwh: 0.1,
            windows: vec![TimeWindow {
                days: all,
                from: t(22, 0),
                to: t(6, 0),
                price_per_kwh: 0.0,
            }],
            valid_from: NaiveDate::from_ymd_opt(2026, 1, 1),
            valid_until: NaiveDate::from_ymd_opt(2026, 12, 31),
        };
        let fri = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let sat = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
        assert_eq!(c.price_at(fri, t(23, 0)), 0.0);
        assert_eq!(c.price_at(sat, t(5, 45)), 0.0);
        assert_eq!(c.price_at(sat, t(6, 0)), 0.1);
        assert_eq!(c.price_at(fri, t(21, 45)), 0.1);
        assert_eq!(
            c.price_at(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(), t(12, 0)),
            0.0
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = EnergyContract {
            energy_prices: vec![ContractPrice {
                price: 0.3,
                timestamp: Utc::now(),
            }],
            timezone: Some("Mars/Olympus".into()),
            tariff_components: vec![TariffComponent {
                name: "x".into(),
                price_per_kwh: 0.1,
                windows: vec![TimeWindow {
                    days: vec!["monday".into()],
                    from: t(1, 10),
                    to: t(2, 0),
                    price_per_kwh: 0.0,
                }],
                valid_from: NaiveDate::from_ymd_opt(2026, 2, 1),
                valid_until: NaiveDate::from_ymd_opt(2026, 1, 1),
            }],
            ..EnergyContract::default()
        };
        let paths: Vec<String> = bad.validate().iter().map(FieldError::path).collect();
        assert_eq!(
            paths,
            [
                "body.currency_energy_price",
                "body.timezone",
                "body.tariff_components.0.valid_until",
                "body.tariff_components.0.windows.0.from",
                "body.tariff_components.0.windows.0.days",
            ]
        );
        let chf_spot = EnergyContract {
            currency_energy_price: Some("CHF".into()),
            ..EnergyContract::default()
        };
        assert_eq!(chf_spot.validate().len(), 1);
        assert!(matches!(
            customer_prices(&chf_spot, &[], PriceZone::At),
            Err(TariffError::CurrencyMismatch { .. })
        ));
        // A GBP spot contract is valid, and prices British slots but not Austrian ones.
        let gbp_spot = EnergyContract {
            currency_energy_price: Some("GBP".into()),
            ..EnergyContract::default()
        };
        assert_eq!(gbp_spot.validate(), vec![]);
        assert!(customer_prices(&gbp_spot, &[], PriceZone::Uk).is_ok());
        assert!(customer_prices(&gbp_spot, &[], PriceZone::At).is_err());
    }
}
