//! `voltplan plan`: reads one JSON plan request on stdin, writes the plan as pretty JSON on stdout
//! and the defaults it applied on stderr.
//!
//! The request uses the Podero API's EV field names plus `now` and `prices`; `docs/planner.md`
//! lists every field and its default. Absent fields are never assumed silently: the plan lists
//! them (`defaults_applied`) and its explanation names those that shaped it.

use std::io::{Read, Write};

use anyhow::{Context, Result, anyhow};
use serde_json::{Map, Value};
use voltplan_core::planner::{Plan, PlanRequest};

pub fn run() -> Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the plan request from stdin")?;
    let plan = plan_from_json(&input)?;
    if let Some(note) = defaults_note(&plan) {
        eprintln!("{note}");
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &plan).context("writing the plan")?;
    writeln!(out).context("writing the plan")?;
    Ok(())
}

/// Parses a request and plans it; errors name the offending field.
pub fn plan_from_json(input: &str) -> Result<Plan> {
    let value: Value = serde_json::from_str(input).context("the plan request is not valid JSON")?;
    let request: PlanRequest = serde_json::from_value(value.clone())
        .map_err(|err| anyhow!("invalid plan request: {}", describe(&value, &err)))?;
    request
        .plan()
        .map_err(|err| anyhow!("invalid plan request: {err}"))
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
        let plan = plan_from_json(REQUEST).unwrap();
        assert!(plan.feasible);
        assert!(!plan.intervals.is_empty());
    }

    #[test]
    fn defaults_are_named_in_the_plan_and_on_stderr() {
        let plan = plan_from_json(REQUEST).unwrap();
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
        let plan = plan_from_json(&explicit).unwrap();
        assert_eq!(defaults_note(&plan), None);
        assert!(
            !plan.explanation.contains("Defaults"),
            "{}",
            plan.explanation
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err =
            plan_from_json(&REQUEST.replace("\"battery_level\": 40", "\"battery_level\": \"x\""))
                .unwrap_err()
                .to_string();
        assert!(err.contains("`battery_level`"), "{err}");
        let err = plan_from_json(&REQUEST.replace("\"DE_LU\"", "\"DE\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`price_zone`"), "{err}");
        let err = plan_from_json(&REQUEST.replace("\"battery_capacity_kwh\": 60,", ""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("battery_capacity_kwh"), "{err}");
        let err =
            plan_from_json(&REQUEST.replace("\"battery_level\": 40", "\"battery_level\": 140"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("battery_level"), "{err}");
    }
}
