//! `voltplan plan`: reads one JSON plan request on stdin, writes the plan as pretty JSON on stdout
//! and the defaults it applied on stderr.
//!
//! The request uses the Podero API's EV field names plus `now` and `prices`; `docs/planner.md`
//! lists every field and its default. Absent fields are never assumed silently: the plan lists
//! them (`defaults_applied`) and its explanation names those that shaped it.
//!
//! With `--contract FILE` (an energy contract, `docs/tariffs.md`) the request's day-ahead prices
//! become the customer's price per slot (`voltplan_core::tariff::customer_prices`) and the plan is
//! made on them; `pricing` says which price the plan used and, on the customer's price, what the
//! same plan and its baseline cost at the day-ahead price. On stderr it compares the bill: this
//! plan, charging at once, and the plan made on the day-ahead price, all on the customer's price.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use voltplan_core::PriceSlot;
use voltplan_core::planner::{
    DeadlineRule, Plan, PlanInput, PlanPricing, PlanRequest, PlannerSettings, PriceBasis,
    VehicleSnapshot, plan,
};
use voltplan_core::tariff::{EnergyContract, customer_prices};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct PlanArgs {
    /// The customer's energy contract, JSON (`docs/tariffs.md`, e.g.
    /// `docs/examples/contract_spot_modul3.json`): plan on the price the customer pays instead of
    /// the day-ahead price.
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,
}

pub fn run(args: PlanArgs) -> Result<()> {
    let contract = args.contract.as_deref().map(read_contract).transpose()?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the plan request from stdin")?;
    let (plan, bill) = plan_with_bill(&input, contract.as_ref())?;
    if let Some(note) = defaults_note(&plan) {
        eprintln!("{note}");
    }
    if let Some(note) = plan.pricing.as_ref().and_then(|p| p.note.as_deref()) {
        eprintln!("voltplan plan: {note}");
    }
    if let Some(bill) = bill {
        eprintln!("{bill}");
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &plan).context("writing the plan")?;
    writeln!(out).context("writing the plan")?;
    Ok(())
}

/// Reads and validates an energy contract (the `EnergyContract` JSON shape).
pub fn read_contract(path: &Path) -> Result<EnergyContract> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the contract {}", path.display()))?;
    let contract: EnergyContract = serde_json::from_str(&text)
        .with_context(|| format!("the contract {} is not a valid contract", path.display()))?;
    let errors = contract.validate();
    if !errors.is_empty() {
        let list: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.path().trim_start_matches("body."), e.msg))
            .collect();
        bail!("invalid contract {}: {}", path.display(), list.join("; "));
    }
    Ok(contract)
}

/// Parses a request and plans it, on the customer's price when a contract is given; errors name
/// the offending field. With a contract that prices the request, also one line comparing the bill.
fn plan_with_bill(
    input: &str,
    contract: Option<&EnergyContract>,
) -> Result<(Plan, Option<String>)> {
    let value: Value = serde_json::from_str(input).context("the plan request is not valid JSON")?;
    let request: PlanRequest = serde_json::from_value(value.clone())
        .map_err(|err| anyhow!("invalid plan request: {}", describe(&value, &err)))?;
    let invalid = |err| anyhow!("invalid plan request: {err}");
    let input = request.to_input().map_err(invalid)?;
    let wholesale = &request.prices;
    let on_wholesale = |note: Option<String>| -> Result<Plan> {
        let mut plan = input.plan(request.now, wholesale).map_err(invalid)?;
        plan.pricing = Some(PlanPricing {
            basis: PriceBasis::Wholesale,
            energy_contract_id: None,
            currency: request.price_zone.info().currency.to_owned(),
            wholesale_cost_eur: None,
            wholesale_baseline_cost_eur: None,
            note,
        });
        Ok(plan)
    };
    let Some(contract) = contract else {
        return Ok((on_wholesale(None)?, None));
    };
    let customer = match customer_prices(contract, wholesale, request.price_zone) {
        Ok(customer) => customer,
        // `docs/tariffs.md`: a contract that cannot price the slots leaves the day-ahead price.
        Err(err) => {
            let note = format!(
                "the contract cannot price this request ({err}); planned on the day-ahead price"
            );
            return Ok((on_wholesale(Some(note))?, None));
        }
    };
    let mut on_customer = input.clone();
    on_customer.settings.currency = Some(customer.currency.clone());
    let mut plan = on_customer
        .plan(request.now, &customer.slots)
        .map_err(invalid)?;
    let (wholesale_cost, wholesale_baseline) = costs_at(&input, request.now, &plan, wholesale)?;
    // The plan Voltplan makes without the contract, on the customer's bill.
    let wholesale_plan = on_wholesale(None)?;
    let (wholesale_plan_bill, _) = costs_at(&input, request.now, &wholesale_plan, &customer.slots)?;
    let bill = format!(
        "voltplan plan: on the customer's price ({currency}) this plan costs {:.2}, charging at once {:.2} \
         (saves {:.2}); the plan made on the day-ahead price would cost {:.2} (this one saves {:.2} more); \
         at the day-ahead price this plan costs {:.2} {market}, that one {:.2} {market}",
        plan.expected_cost_eur,
        plan.baseline_cost_eur,
        plan.savings_eur,
        wholesale_plan_bill,
        wholesale_plan_bill - plan.expected_cost_eur,
        wholesale_cost,
        wholesale_plan.expected_cost_eur,
        currency = customer.currency,
        market = request.price_zone.info().currency,
    );
    plan.pricing = Some(PlanPricing {
        basis: PriceBasis::Customer,
        energy_contract_id: None,
        currency: customer.currency,
        wholesale_cost_eur: Some(wholesale_cost),
        wholesale_baseline_cost_eur: Some(wholesale_baseline),
        note: None,
    });
    Ok((plan, Some(bill)))
}

/// The plan's intervals and its baseline (the same energy at full power from `now`) priced at
/// another price series of the same slots. Where the series has no price, the part is priced at
/// the forecast the planner makes from that series (as it would when planning on it).
fn costs_at(
    input: &PlanInput,
    now: DateTime<Utc>,
    plan: &Plan,
    series: &[PriceSlot],
) -> Result<(f64, f64)> {
    let timeline = timeline(input, now, series)?;
    let power_kw = input.vehicle.max_charge_power_w / 1000.0;
    let intervals: Vec<Piece> = plan
        .intervals
        .iter()
        .map(|i| (i.start, i.end, i.energy_kwh))
        .collect();
    let baseline_end =
        now + Duration::nanoseconds((plan.energy_kwh / power_kw * 3.6e12).round() as i64);
    let baseline = [(now, baseline_end, plan.energy_kwh)];
    Ok((
        cost_at(&intervals, &timeline),
        cost_at(&baseline, &timeline),
    ))
}

/// Charging at constant power over `[start, end)` with this grid energy (kWh).
type Piece = (DateTime<Utc>, DateTime<Utc>, f64);

/// The published slots of `series` and, where there are none, the planner's forecast of them over
/// its whole horizon: the forecast slots of a plan that charges without a break from `now` on.
fn timeline(input: &PlanInput, now: DateTime<Utc>, series: &[PriceSlot]) -> Result<Vec<PriceSlot>> {
    let power_w = input.vehicle.max_charge_power_w;
    // Longer than the planner's 8-day horizon at full power.
    let probe = VehicleSnapshot {
        battery_level_pct: 0.0,
        battery_capacity_kwh: power_w / 1000.0 * 24.0 * 10.0,
        is_plugged_in: true,
        is_at_home: true,
        max_charge_power_w: power_w,
        charge_target_max_pct: None,
    };
    let settings = PlannerSettings {
        is_smart_optimization_active: false,
        charge_target_min_pct: 0.0,
        deadline: DeadlineRule::None,
        efficiency: 1.0,
        ..PlannerSettings::new(input.settings.price_zone)
    };
    let probe = plan(now, &probe, &settings, series)
        .map_err(|err| anyhow!("invalid plan request: {err}"))?;
    let mut timeline: Vec<PriceSlot> = series.to_vec();
    timeline.extend(probe.forecast_prices.iter().map(|f| PriceSlot {
        start: f.start,
        end: f.end,
        price_eur_mwh: f.price_eur_mwh,
    }));
    timeline.sort_by_key(|s| s.start);
    Ok(timeline)
}

/// Cost of energy spread evenly over each piece, at the prices of `slots` (sorted, disjoint).
fn cost_at(pieces: &[Piece], slots: &[PriceSlot]) -> f64 {
    let mut cost = 0.0;
    for &(start, end, energy) in pieces {
        let total = (end - start).num_nanoseconds().unwrap_or(1).max(1) as f64;
        let lo = slots.partition_point(|p| p.end <= start);
        for slot in slots[lo..].iter().take_while(|p| p.start < end) {
            let overlap = (slot.end.min(end) - slot.start.max(start))
                .num_nanoseconds()
                .unwrap_or(0) as f64;
            cost += energy * overlap / total * slot.price_eur_mwh / 1000.0;
        }
    }
    cost
}

/// One line naming every default the plan relied on (`field = value`), if any.
pub fn defaults_note(plan: &Plan) -> Option<String> {
    let applied: Vec<String> = plan
        .defaults_applied
        .iter()
        .filter_map(|d| serde_json::to_value(d).ok())
        .map(|d| {
            format!(
                "{} = {}",
                d["field"].as_str().unwrap_or_default(),
                d["value"]
            )
        })
        .collect();
    (!applied.is_empty()).then(|| {
        format!(
            "voltplan plan: not in the request, so defaulted: {}",
            applied.join(", ")
        )
    })
}

/// serde_json names missing fields but not the field whose value is malformed; find it by trying
/// each field alone on top of a minimal valid request.
fn describe(value: &Value, err: &serde_json::Error) -> String {
    let Some(fields) = value.as_object() else {
        return "the request must be a JSON object".to_owned();
    };
    let skeleton: Map<String, Value> = serde_json::json!({
        "now": "2024-01-01T00:00:00Z",
        "price_zone": "DE_LU",
        "battery_level": 50,
        "battery_capacity_kwh": 50,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    for (name, field_value) in fields {
        let mut probe = skeleton.clone();
        probe.insert(name.clone(), field_value.clone());
        if let Err(field_err) = serde_json::from_value::<PlanRequest>(Value::Object(probe)) {
            return format!("field `{name}`: {field_err}");
        }
    }
    err.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_from_json(input: &str, contract: Option<&EnergyContract>) -> Result<Plan> {
        plan_with_bill(input, contract).map(|(plan, _)| plan)
    }

    const REQUEST: &str = r#"{
        "now": "2024-01-10T18:00:00Z",
        "price_zone": "DE_LU",
        "battery_level": 40,
        "battery_capacity_kwh": 60,
        "minimum_charge_limit": 80,
        "charge_deadline_at": "07:00",
        "expected_max_charge_power": 11000,
        "prices": [
            {"start": "2024-01-10T18:00:00Z", "end": "2024-01-10T19:00:00Z", "price_eur_mwh": 120},
            {"start": "2024-01-10T19:00:00Z", "end": "2024-01-11T06:00:00Z", "price_eur_mwh": 30}
        ]
    }"#;

    #[test]
    fn plans_a_valid_request() {
        let plan = plan_from_json(REQUEST, None).unwrap();
        assert!(plan.feasible);
        assert!(!plan.intervals.is_empty());
    }

    #[test]
    fn defaults_are_named_in_the_plan_and_on_stderr() {
        let plan = plan_from_json(REQUEST, None).unwrap();
        let note = defaults_note(&plan).unwrap();
        assert!(note.contains("charge_target_min = 50.0"), "{note}");
        assert!(note.contains("charging_efficiency = 0.9"), "{note}");
        assert!(!note.contains("minimum_charge_limit"), "{note}");
        // 40 % is below the default minimum of 50 %: the explanation says why it charges now.
        assert!(
            plan.explanation.contains("minimum level 50 %"),
            "{}",
            plan.explanation
        );
        let explicit = REQUEST.replace(
            "\"battery_level\": 40,",
            "\"battery_level\": 40, \"charge_target_min\": null, \"is_plugged_in\": true,
             \"is_smart_optimization_active\": true, \"charging_efficiency\": 0.9,
             \"min_block_minutes\": 15, \"min_charge_power_w\": 1380,",
        );
        let plan = plan_from_json(&explicit, None).unwrap();
        assert_eq!(defaults_note(&plan), None);
        assert!(
            !plan.explanation.contains("Defaults"),
            "{}",
            plan.explanation
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err = plan_from_json(
            &REQUEST.replace("\"battery_level\": 40", "\"battery_level\": \"x\""),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`battery_level`"), "{err}");
        let err = plan_from_json(&REQUEST.replace("\"DE_LU\"", "\"DE\""), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`price_zone`"), "{err}");
        let err = plan_from_json(&REQUEST.replace("\"battery_capacity_kwh\": 60,", ""), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("battery_capacity_kwh"), "{err}");
        let err = plan_from_json(
            &REQUEST.replace("\"battery_level\": 40", "\"battery_level\": 140"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("battery_level"), "{err}");
    }
}
