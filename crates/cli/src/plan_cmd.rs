//! `voltplan plan`: reads one JSON plan request on stdin, writes the plan as pretty JSON on stdout.
//!
//! The request uses the Podero API's EV field names plus `now` and `prices`; see
//! `voltplan_core::planner::PlanRequest` for every field and its default.

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
