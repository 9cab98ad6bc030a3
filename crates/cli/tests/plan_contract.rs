//! `voltplan plan --contract FILE` as a process: on the worked example of `docs/tariffs.md` (a
//! German spot contract with a §14a Modul 3 grid fee) the plan on the customer's price differs from
//! the plan on the day-ahead price, says so in `pricing`, and its wholesale figures agree with the
//! plan made on the day-ahead price.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples")
}

fn request() -> String {
    std::fs::read_to_string(examples().join("plan_request_de_2024-01-24.json")).unwrap()
}

fn run_plan(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_voltplan"))
        .arg("plan")
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn plan(args: &[&str], stdin: &str) -> (Value, String) {
    let out = run_plan(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "voltplan plan {args:?} failed: {stderr}"
    );
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Grid energy of the plan's intervals starting in `[from, to)` (UTC, RFC 3339).
fn energy_between(plan: &Value, from: &str, to: &str) -> f64 {
    plan["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            let start = i["start"].as_str().unwrap();
            start >= from && start < to
        })
        .map(|i| f(&i["energy_kwh"]))
        .sum()
}

#[test]
fn a_modul3_contract_moves_charging_into_the_low_grid_fee_window() {
    let contract = examples().join("contract_spot_modul3.json");
    let contract = contract.to_str().unwrap();
    let (wholesale, _) = plan(&[], &request());
    let (customer, stderr) = plan(&["--contract", contract], &request());

    assert_eq!(wholesale["pricing"]["basis"], "wholesale");
    assert_eq!(wholesale["pricing"]["currency"], "EUR");
    assert_eq!(customer["pricing"]["basis"], "customer");
    assert_eq!(customer["pricing"]["currency"], "EUR");
    assert!(customer["pricing"]["note"].is_null());

    // Same energy (same target), different hours: the low window is 01:00–04:00 Berlin, i.e.
    // 00:00–03:00 UTC on 25 January.
    let energy = f(&wholesale["energy_kwh"]);
    assert!((f(&customer["energy_kwh"]) - energy).abs() < 1e-9);
    assert_ne!(wholesale["intervals"], customer["intervals"]);
    let low = |p: &Value| energy_between(p, "2024-01-25T00:00", "2024-01-25T03:00");
    assert!(low(&customer) > 30.0, "{customer:#}");
    assert!(low(&wholesale) < 1e-9, "{wholesale:#}");

    // The customer plan's wholesale figures are the day-ahead price of its own intervals: dearer
    // than the wholesale plan (which is optimal there), same baseline (same energy, same hours).
    let at_wholesale = f(&customer["pricing"]["wholesale_cost_eur"]);
    assert!(at_wholesale > f(&wholesale["expected_cost_eur"]));
    assert!(
        (f(&customer["pricing"]["wholesale_baseline_cost_eur"])
            - f(&wholesale["baseline_cost_eur"]))
        .abs()
            < 1e-9
    );
    // On the bill the customer plan is far cheaper than the day-ahead figures suggest it costs.
    assert!(f(&customer["expected_cost_eur"]) > at_wholesale);
    assert!(
        stderr.contains("on the customer's price (EUR) this plan costs"),
        "{stderr}"
    );
}

#[test]
fn a_contract_that_cannot_price_falls_back_to_wholesale_and_a_bad_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("voltplan-plan-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // A component of 20 €/kWh makes the customer's price implausible: planned on wholesale.
    let absurd = dir.join("absurd.json");
    std::fs::write(
        &absurd,
        r#"{"tariff_components": [{"name": "typo", "price_per_kwh": 20}]}"#,
    )
    .unwrap();
    let (fallback, stderr) = plan(&["--contract", absurd.to_str().unwrap()], &request());
    let (wholesale, _) = plan(&[], &request());
    assert_eq!(fallback["pricing"]["basis"], "wholesale");
    let note = fallback["pricing"]["note"].as_str().unwrap();
    assert!(note.contains("outside the plausible range"), "{note}");
    assert!(stderr.contains(note), "{stderr}");
    assert_eq!(fallback["intervals"], wholesale["intervals"]);

    // A spot contract in CHF is refused, naming the field.
    let chf = dir.join("chf.json");
    std::fs::write(
        &chf,
        r#"{"energy_contract_type": "spot_hourly", "currency_energy_price": "CHF"}"#,
    )
    .unwrap();
    let out = run_plan(&["--contract", chf.to_str().unwrap()], &request());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("currency_energy_price"), "{stderr}");

    std::fs::remove_dir_all(&dir).ok();
}
