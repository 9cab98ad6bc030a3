//! The customer's price of a worker's price book: `cargo bench -p voltplan-core --bench tariff`.
//! A book spans 16 days (8 back for forecasts, 8 ahead), in quarter-hours and in hours; the worker
//! computes one per (zone, organisation, contract) per batch. Plain `Instant` timing.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use voltplan_core::PriceSlot;
use voltplan_core::tariff::{
    ContractType, EnergyContract, TariffComponent, TimeWindow, customer_prices,
};
use voltplan_core::time::WEEKDAYS;
use voltplan_core::zone::PriceZone;

fn time(h: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, 0, 0).unwrap_or(NaiveTime::MIN)
}

/// A spot contract with a Modul 3 grid fee (two windows), two flat levies and VAT.
fn contract() -> EnergyContract {
    let every_day: Vec<String> = WEEKDAYS.iter().map(|d| (*d).to_owned()).collect();
    let flat = |name: &str, price: f64| TariffComponent {
        name: name.to_owned(),
        price_per_kwh: price,
        windows: Vec::new(),
        valid_from: None,
        valid_until: None,
    };
    EnergyContract {
        energy_contract_type: Some(ContractType::SpotHourly),
        currency_energy_price: Some("EUR".to_owned()),
        spot_markup_per_kwh: Some(0.02),
        vat_percentage: Some(19.0),
        tariff_components: vec![
            TariffComponent {
                windows: vec![
                    TimeWindow {
                        days: every_day.clone(),
                        from: time(1),
                        to: time(4),
                        price_per_kwh: 0.0345,
                    },
                    TimeWindow {
                        days: every_day,
                        from: time(17),
                        to: time(19),
                        price_per_kwh: 0.1084,
                    },
                ],
                ..flat("grid fee (Modul 3)", 0.0862)
            },
            flat("electricity tax", 0.0205),
            flat("levies", 0.0316),
        ],
        ..EnergyContract::default()
    }
}

fn book(minutes: i64, slots: i64) -> Vec<PriceSlot> {
    let start: DateTime<Utc> = "2024-06-12T00:00:00Z".parse().unwrap_or_default();
    (0..slots)
        .map(|i| PriceSlot {
            start: start + Duration::minutes(minutes * i),
            end: start + Duration::minutes(minutes * (i + 1)),
            price_eur_mwh: 60.0 + (i % 96) as f64,
        })
        .collect()
}

fn main() {
    let contract = contract();
    for (label, minutes, slots) in [("quarter-hours", 15, 16 * 96), ("hours", 60, 16 * 24)] {
        let wholesale = book(minutes, slots);
        let runs = 200;
        let began = Instant::now();
        for _ in 0..runs {
            black_box(customer_prices(&contract, black_box(&wholesale), PriceZone::DeLu).ok());
        }
        let each = began.elapsed() / runs;
        println!("customer_prices, 16 days of {label} ({slots} slots): {each:?} per book");
    }
}
