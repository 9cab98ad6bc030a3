//! Property tests: the plan's `explanation` says what its JSON says.
//!
//! Random `voltplan plan` requests (zones in four time-zone families, days around both DST
//! switches, 15-minute and hourly prices incl. negative ones, with gaps, history or none at all,
//! every defaultable field absent, `null` or given, weekly policies, caps, pauses, boosts, away
//! cars, over-charge) are planned and the plan serialised to JSON. The checker then reads the
//! explanation back: every number must match the JSON figure it stands for at the precision shown
//! (the number of decimals printed), every clock time must carry a zone label and equal the JSON
//! instant in the plan's `time_zone`, and no digit may be left unchecked. A mutation test changes
//! each digit of real explanations (and a few JSON figures) and requires the checker to fail.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use regex::{Captures, Regex};
use serde_json::{Value, json};
use voltplan_core::planner::PlanRequest;

mod support;
use support::Rng;

// ---------------------------------------------------------------------------------------------
// Random requests

fn hh_mm(r: &mut Rng) -> String {
    let (h, m) = (r.int(0, 23), r.pick(&[0, 0, 15, 30, 45, 7]));
    if r.chance(0.2) {
        format!("{h:02}:{m:02}:00")
    } else {
        format!("{h:02}:{m:02}")
    }
}

fn request(seed: u64) -> Value {
    let mut r = Rng(seed);
    let zone = r.pick(&["DE_LU", "AT", "PT", "UK", "EE", "RO", "SE_3", "IT_NORD"]);
    let day = r.pick(&[
        "2024-03-30",
        "2024-03-31",
        "2024-10-26",
        "2024-10-27",
        "2024-06-12",
        "2025-01-15",
        "2025-03-30",
    ]);
    let day_start: DateTime<Utc> = format!("{day}T00:00:00Z").parse().unwrap();
    let now = day_start + Duration::seconds(r.int(-6 * 3600, 30 * 3600));
    let mut req = json!({
        "now": now,
        "price_zone": zone,
        "battery_level": if r.chance(0.1) { 0.0 } else { (r.range(0.0, 100.0) * 10.0).round() / 10.0 },
        "battery_capacity_kwh": if r.chance(0.2) { json!(format!("{:.1}", r.range(10.0, 100.0))) } else { json!(r.range(10.0, 100.0)) },
    });
    let o = req.as_object_mut().unwrap();

    // Prices: none (forecast 0), only the future (flat mean), or with 1–2 days of history
    // (previous-days forecast), sometimes with a hole (forecast in the middle).
    if !r.chance(0.08) {
        let step = if r.chance(0.5) { 15 } else { 60 };
        let aligned = now - Duration::seconds(now.timestamp().rem_euclid(step * 60));
        let history_h = if r.chance(0.4) { r.int(20, 50) } else { 0 };
        let first = aligned - Duration::hours(history_h) + Duration::minutes(step * r.int(0, 2));
        let ahead_h = r.pick(&[0, 1, 2, 4, 8, 14, 20, 30, 40]);
        let n = ((history_h + ahead_h) * 60 / step).max(1);
        let ties = r.chance(0.3);
        // Unpublished stretches in between: one, or several (forecast in many stretches).
        let holes: Vec<(i64, i64)> = (0..r.pick(&[0, 0, 0, 0, 0, 1, 1, 4]))
            .map(|_| {
                let at = r.int(0, n);
                (at, at + r.int(1, 6))
            })
            .collect();
        let prices: Vec<Value> = (0..n)
            .filter(|i| holes.iter().all(|(a, b)| i < a || i >= b))
            .map(|i| {
                let raw = r.range(-60.0, 250.0);
                let price = if ties {
                    (raw / 40.0).round() * 40.0
                } else {
                    (raw * 100.0).round() / 100.0
                };
                json!({
                    "start": first + Duration::minutes(step * i),
                    "end": first + Duration::minutes(step * (i + 1)),
                    "price_eur_mwh": price,
                })
            })
            .collect();
        o.insert("prices".into(), json!(prices));
    }

    /// Leaves `key` out with probability `absent`, sets it to `null` with `null`, else to `value`.
    fn maybe(
        o: &mut serde_json::Map<String, Value>,
        r: &mut Rng,
        key: &str,
        absent: f64,
        null: f64,
        value: Value,
    ) {
        let u = r.unit();
        if u < absent {
        } else if u < absent + null {
            o.insert(key.into(), Value::Null);
        } else {
            o.insert(key.into(), value);
        }
    }
    let v = json!(!r.chance(0.1));
    maybe(o, &mut r, "is_plugged_in", 0.7, 0.0, v);
    let v = json!(!r.chance(0.1));
    maybe(o, &mut r, "is_smart_optimization_active", 0.7, 0.0, v);
    let v = json!(r.range(0.0, 70.0));
    maybe(o, &mut r, "charge_target_min", 0.4, 0.15, v);
    let v = json!(r.range(20.0, 100.0));
    maybe(o, &mut r, "minimum_charge_limit", 0.3, 0.08, v);
    let v = json!(hh_mm(&mut r));
    maybe(o, &mut r, "charge_deadline_at", 0.3, 0.05, v);
    if r.chance(0.1) {
        let mut days = serde_json::Map::new();
        for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
            if r.chance(0.3) {
                days.insert(
                    d.into(),
                    json!({"charge_percentage": r.int(20, 100), "charge_deadline": hh_mm(&mut r)}),
                );
            }
        }
        o.insert("weekly_charge_policy".into(), Value::Object(days));
        let v = json!(r.chance(0.8));
        maybe(o, &mut r, "is_charge_policy_enabled", 0.1, 0.0, v);
    }
    let v = json!(r.range(40.0, 100.0));
    maybe(o, &mut r, "charge_target_max", 0.7, 0.0, v);
    let v = json!(r.pick(&[1400.0, 3700.0, 7400.0, 11_000.0, 22_000.0]) * r.range(0.8, 1.0));
    maybe(o, &mut r, "expected_max_charge_power", 0.4, 0.0, v);
    let v = json!(r.range(0.0, 12_000.0));
    maybe(o, &mut r, "charge_rate_w", 0.85, 0.05, v);
    let v = json!(r.chance(0.8));
    maybe(o, &mut r, "is_over_charge_allowed", 0.5, 0.05, v);
    let v = json!(now + Duration::seconds(r.int(-3600, 10 * 3600)));
    maybe(o, &mut r, "pause_power_until", 0.8, 0.02, v);
    let v = json!(true);
    maybe(o, &mut r, "boost", 0.95, 0.0, v);
    let v = json!(r.pick(&["requested", "ongoing", "available"]));
    maybe(o, &mut r, "boost_state", 0.96, 0.0, v);
    if r.chance(0.15) {
        let (lat, lon) = (48.2, 16.37);
        o.insert("home_latitude".into(), json!(lat));
        o.insert("home_longitude".into(), json!(lon));
        let off = r.pick(&[0.0, 0.0005, 0.002, 0.1]);
        o.insert("latitude".into(), json!(lat + off));
        o.insert("longitude".into(), json!(lon));
        let v = json!(r.pick(&[50.0, 100.0, 500.0]));
        maybe(o, &mut r, "geo_fence_distance_m", 0.6, 0.0, v);
    }
    let v = json!(r.range(0.8, 1.0));
    maybe(o, &mut r, "charging_efficiency", 0.6, 0.0, v);
    let v = json!(r.pick(&[0, 15, 30, 60]));
    maybe(o, &mut r, "min_block_minutes", 0.6, 0.0, v);
    let v = json!(r.pick(&[0.0, 1380.0, 4000.0]));
    maybe(o, &mut r, "min_charge_power_w", 0.7, 0.0, v);
    req
}

/// The plan of `seed`'s request as JSON, or why the request was refused.
fn plan_json(seed: u64) -> Result<Value, String> {
    let req: PlanRequest = serde_json::from_value(request(seed)).map_err(|e| e.to_string())?;
    let plan = req.plan().map_err(|e| e.to_string())?;
    Ok(serde_json::to_value(&plan).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Reading the explanation back

const NUM: &str = r"(-?\d+(?:\.\d+)?)";
const DAY: &str = r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?";
const ZONE: &str = r"(?:[A-Z]{2,5}|[+-]\d{2,4})";

fn time_re() -> String {
    format!(r"({DAY}\d{{2}}:\d{{2}} {ZONE})")
}

fn span_re() -> String {
    let t = format!(r"{DAY}\d{{2}}:\d{{2}} {ZONE}");
    format!(r"(in \d+ blocks between {t} and {t}|{DAY}\d{{2}}:\d{{2}}(?: {ZONE})?–{t})")
}

/// `template` with `{N}` (number), `{T}` (labelled time) and `{S}` (span) filled in, compiled once
/// per thread (shared, not cloned: a cloned `Regex` starts with empty search caches).
fn re(template: &str) -> Rc<Regex> {
    thread_local! {
        static COMPILED: RefCell<HashMap<String, Rc<Regex>>> = RefCell::new(HashMap::new());
    }
    COMPILED.with(|compiled| {
        compiled
            .borrow_mut()
            .entry(template.to_owned())
            .or_insert_with(|| {
                Rc::new(
                    Regex::new(
                        &template
                            .replace("{N}", NUM)
                            .replace("{T}", &time_re())
                            .replace("{S}", &span_re()),
                    )
                    .unwrap(),
                )
            })
            .clone()
    })
}

struct Json<'a>(&'a Value);

impl Json<'_> {
    fn f(&self, key: &str) -> Option<f64> {
        self.0[key].as_f64()
    }
    fn num(&self, key: &str) -> Result<f64, String> {
        self.f(key)
            .ok_or_else(|| format!("`{key}` is null but the text shows it"))
    }
    fn at(&self, key: &str) -> Result<DateTime<Utc>, String> {
        self.0[key]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("`{key}` is null but the text shows it"))
    }
    fn str(&self, key: &str) -> &str {
        self.0[key].as_str().unwrap_or_default()
    }
    fn intervals(&self, reasons: &[&str]) -> Vec<&Value> {
        self.0["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| reasons.is_empty() || reasons.contains(&i["reason"].as_str().unwrap()))
            .collect()
    }
}

fn at_of(v: &Value, key: &str) -> DateTime<Utc> {
    v[key].as_str().unwrap().parse().unwrap()
}

/// Contiguous `[start, end)` ranges joined.
fn merged(ranges: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for &(a, b) in ranges {
        match out.last_mut() {
            Some(last) if last.1 == a => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    out
}

/// A shown number equals `value` at the precision shown.
fn same(shown: &str, value: f64, what: &str) -> Result<(), String> {
    let parsed: f64 = shown.parse().map_err(|_| format!("{what}: {shown:?}"))?;
    if parsed == 0.0 && shown.starts_with('-') {
        return Err(format!("{what}: shown as {shown}"));
    }
    let decimals = shown.split('.').nth(1).map_or(0, str::len) as i32;
    let tolerance = 0.5 * 10f64.powi(-decimals) + 1e-9 * value.abs().max(1.0);
    if (parsed - value).abs() <= tolerance {
        Ok(())
    } else {
        Err(format!("{what}: text {shown}, JSON {value}"))
    }
}

struct Local {
    tz: Tz,
    today: chrono::NaiveDate,
}

impl Local {
    /// The JSON instant as the text must show it: local HH:MM (with the weekday beyond tomorrow)
    /// and the zone's abbreviation.
    fn show(&self, t: DateTime<Utc>) -> (String, String) {
        let local = t.with_timezone(&self.tz);
        let days = (local.date_naive() - self.today).num_days();
        let fmt = if (0..=1).contains(&days) {
            "%H:%M"
        } else {
            "%a %H:%M"
        };
        (
            local.format(fmt).to_string(),
            local.format("%Z").to_string(),
        )
    }

    fn time(&self, shown: &str, t: DateTime<Utc>, what: &str) -> Result<(), String> {
        let (hm, zone) = self.show(t);
        let want = format!("{hm} {zone}");
        if shown == want {
            Ok(())
        } else {
            Err(format!("{what}: text {shown:?}, JSON {t} = {want:?}"))
        }
    }

    /// `shown` is "a–b Z", "a Z–b Z" or "in N blocks between … and …" for these intervals.
    fn span(&self, shown: &str, intervals: &[&Value], what: &str) -> Result<(), String> {
        let times: Vec<_> = intervals
            .iter()
            .map(|i| (at_of(i, "start"), at_of(i, "end")))
            .collect();
        self.blocks(shown, &merged(&times), what)
    }

    /// The same for contiguous blocks of time.
    fn blocks(
        &self,
        shown: &str,
        blocks: &[(DateTime<Utc>, DateTime<Utc>)],
        what: &str,
    ) -> Result<(), String> {
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Err(format!("{what}: a span without intervals"));
        };
        if let Some(rest) = shown.strip_prefix("in ") {
            let (n, rest) = rest.split_once(" blocks between ").unwrap();
            let (a, b) = rest.split_once(" and ").unwrap();
            if n.parse::<usize>() != Ok(blocks.len()) || blocks.len() == 1 {
                return Err(format!("{what}: text {n} blocks, JSON {}", blocks.len()));
            }
            self.time(a, first.0, what)?;
            return self.time(b, last.1, what);
        }
        if blocks.len() != 1 {
            return Err(format!("{what}: text one block, JSON {}", blocks.len()));
        }
        self.range(shown, first.0, last.1, what)
    }

    fn range(
        &self,
        shown: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        what: &str,
    ) -> Result<(), String> {
        let (a, b) = shown.split_once('–').ok_or(format!("{what}: {shown:?}"))?;
        let zone = b.rsplit(' ').next().unwrap_or_default();
        let a = if re(&format!("{ZONE}$")).is_match(a) {
            a.to_owned()
        } else {
            format!("{a} {zone}")
        };
        self.time(&a, from, what)?;
        self.time(b, to, what)
    }
}

/// Everything the text says must hold in the JSON; returns what does not.
fn check(plan: &Value) -> Result<(), String> {
    let text = plan["explanation"].as_str().unwrap();
    check_text(plan, text).map_err(|why| format!("{why}\n  explanation: {text}"))
}

fn check_text(plan: &Value, text: &str) -> Result<(), String> {
    // The United Kingdom's market is in pounds, every other zone's in euros: the sign must be the
    // zone's; the rules below read amounts with `€`.
    let (sign, other) = if plan["time_zone"] == "Europe/London" {
        ('£', '€')
    } else {
        ('€', '£')
    };
    if text.contains(other) {
        return Err(format!(
            "the zone's currency is {sign}, the text shows {other}"
        ));
    }
    let text = &text.replace(sign, "€");
    let j = Json(plan);
    let mode = j.str("mode");
    if mode == "not_plugged_in" {
        return if text == "Not plugged in: nothing to plan." {
            Ok(())
        } else {
            Err("not plugged in".into())
        };
    }
    let tz: Tz = j.str("time_zone").parse().map_err(|_| "time_zone")?;
    let local = Local {
        tz,
        today: j.at("planned_at")?.with_timezone(&tz).date_naive(),
    };

    // Every clock time carries a zone label, or is the first end of a range whose second has one.
    let clock = re(&format!(
        r"\d{{2}}:\d{{2}}( {ZONE}\b|–{DAY}\d{{2}}:\d{{2}} {ZONE})?"
    ));
    for m in clock.captures_iter(text) {
        if m.get(1).is_none() {
            return Err(format!("time without zone: {:?}", &m[0]));
        }
    }

    let energy_sum = |v: &[&Value]| {
        v.iter()
            .map(|i| i["energy_kwh"].as_f64().unwrap())
            .sum::<f64>()
    };
    let max_kw = |v: &[&Value]| {
        v.iter()
            .map(|i| i["power_w"].as_f64().unwrap())
            .fold(0.0, f64::max)
            / 1000.0
    };
    let all = j.intervals(&[]);
    let smart = mode == "smart";
    let feasible = plan["feasible"].as_bool().unwrap();
    let min_part = j.intervals(&["min_level"]);
    let target_part = j.intervals(&["target", "infeasible"]);
    let over_part = j.intervals(&["over_charge"]);
    let flag = |k: &str| plan[k].as_bool().unwrap();

    // The JSON's own derived figures, which the text relies on.
    if let Some(energy) = j.f("energy_kwh").filter(|e| *e > 1e-6) {
        for (avg, cost) in [
            ("average_price_eur_mwh", "expected_cost_eur"),
            ("baseline_average_price_eur_mwh", "baseline_cost_eur"),
        ] {
            let want = j.num(cost)? / energy * 1000.0;
            if (j.num(avg)? - want).abs() > 1e-6 * want.abs().max(1.0) {
                return Err(format!("{avg} is not {cost} / energy_kwh"));
            }
        }
    }
    if flag("uses_forecast_prices") != all.iter().any(|i| i["uses_forecast_prices"] == true) {
        return Err("uses_forecast_prices disagrees with the intervals".into());
    }

    let mut covered: Vec<(usize, usize)> = Vec::new();
    // Applies `template`; it must match exactly once when `expected`, else never.
    let rule = |template: &str,
                expected: bool,
                covered: &mut Vec<(usize, usize)>,
                check: &dyn Fn(&Captures) -> Result<(), String>|
     -> Result<(), String> {
        let found: Vec<Captures> = re(template).captures_iter(text).collect();
        match (found.len(), expected) {
            (0, false) => Ok(()),
            (1, true) => {
                let m = found[0].get(0).unwrap();
                covered.push((m.start(), m.end()));
                check(&found[0]).map_err(|e| format!("[{template}] {e}"))
            }
            (n, _) => Err(format!(
                "[{template}] found {n} times, expected: {expected}"
            )),
        }
    };
    let opt_time = |c: &Captures, i: usize, key: &str| -> Result<(), String> {
        match (c.get(i), !plan[key].is_null()) {
            (Some(m), true) => local.time(m.as_str(), j.at(key)?, key),
            (None, false) => Ok(()),
            (shown, _) => Err(format!("{key}: text {shown:?}, JSON {}", plan[key])),
        }
    };

    let average = !plan["average_price_eur_mwh"].is_null();
    rule(
        r"Total: {N} kWh for {N} € \({N} €/MWh on average\)",
        average,
        &mut covered,
        &|c| {
            same(&c[1], j.num("energy_kwh")?, "energy_kwh")?;
            same(&c[2], j.num("expected_cost_eur")?, "expected_cost_eur")?;
            same(
                &c[3],
                j.num("average_price_eur_mwh")?,
                "average_price_eur_mwh",
            )
        },
    )?;
    rule(
        r"; charging at once would cost {N} € \({N} €/MWh(, partly at forecast prices)?\)",
        smart && average,
        &mut covered,
        &|c| {
            same(&c[1], j.num("baseline_cost_eur")?, "baseline_cost_eur")?;
            same(
                &c[2],
                j.num("baseline_average_price_eur_mwh")?,
                "baseline_average_price_eur_mwh",
            )?;
            if c.get(3).is_some() != flag("baseline_uses_forecast_prices") {
                return Err("baseline_uses_forecast_prices".into());
            }
            Ok(())
        },
    )?;
    let uncontrolled = mode == "away_from_home" || mode == "smart_optimization_off";
    rule(
        r": the battery is already at {N} %\.",
        uncontrolled && all.is_empty(),
        &mut covered,
        &|c| same(&c[1], j.num("final_battery_level")?, "final_battery_level"),
    )?;
    rule(
        r": charging now at {N} kW as the car would on its own, to {N} %(?: by {T})?\.",
        uncontrolled && !all.is_empty(),
        &mut covered,
        &|c| {
            same(&c[1], max_kw(&all), "maximum interval power")?;
            same(&c[2], j.num("final_battery_level")?, "final_battery_level")?;
            opt_time(c, 3, "ready_by")
        },
    )?;
    rule(
        r"Boost: the battery is already full at {N} %\.",
        mode == "boost" && all.is_empty(),
        &mut covered,
        &|c| same(&c[1], j.num("final_battery_level")?, "final_battery_level"),
    )?;
    rule(
        r"Boost: charging at full power \({N} kW\)(?: once the pause ends at {T})?, to {N} %(?: by {T})?\.",
        mode == "boost" && !all.is_empty(),
        &mut covered,
        &|c| {
            same(&c[1], max_kw(&all), "maximum interval power")?;
            opt_time(c, 2, "pause_until")?;
            same(&c[3], j.num("final_battery_level")?, "final_battery_level")?;
            opt_time(c, 4, "ready_by")
        },
    )?;
    rule(
        r"Cannot reach {N} % by {T}(?:: charging at full power \({N} kW\)(?: once the pause ends at {T})?)?, reaching {N} % by then(?: and {N} % at {T})?\.",
        smart && !feasible,
        &mut covered,
        &|c| {
            same(&c[1], j.num("target_level")?, "target_level")?;
            local.time(&c[2], j.at("deadline")?, "deadline")?;
            if c.get(3).is_some() == all.is_empty() {
                return Err("full power clause without charging".into());
            }
            if let Some(p) = c.get(3) {
                same(p.as_str(), max_kw(&all), "maximum interval power")?;
                opt_time(c, 4, "pause_until")?;
            }
            same(
                &c[5],
                j.num("battery_level_at_deadline")?,
                "battery_level_at_deadline",
            )?;
            if let Some(t) = c.get(6) {
                same(t.as_str(), j.num("target_level")?, "target_level")?;
            }
            opt_time(c, 7, "ready_by")
        },
    )?;
    rule(
        r"Charging at {N} kW to the {N} % minimum (?:now|once the pause ends at {T})",
        smart && feasible && !min_part.is_empty(),
        &mut covered,
        &|c| {
            same(&c[1], max_kw(&min_part), "maximum min_level power")?;
            same(&c[2], j.num("minimum_level")?, "minimum_level")?;
            opt_time(c, 3, "pause_until")
        },
    )?;
    rule(
        r"(?:Charging|then) {S} at {N} kW, the cheapest hours before {T}",
        smart && feasible && !target_part.is_empty(),
        &mut covered,
        &|c| {
            local.span(&c[1], &target_part, "target intervals")?;
            same(&c[2], max_kw(&target_part), "maximum target power")?;
            local.time(&c[3], j.at("deadline")?, "deadline")
        },
    )?;
    rule(
        r"Over-charging {N} kWh {S} while prices are at or below zero\.",
        smart && feasible && !over_part.is_empty(),
        &mut covered,
        &|c| {
            same(&c[1], energy_sum(&over_part), "over_charge energy")?;
            local.span(&c[2], &over_part, "over_charge intervals")
        },
    )?;
    let ready_clause = smart
        && feasible
        && !plan["target_level"].is_null()
        && !plan["ready_by"].is_null()
        && !(min_part.is_empty() && target_part.is_empty());
    rule(r"; {N} % by {T}\.", ready_clause, &mut covered, &|c| {
        same(&c[1], j.num("target_level")?, "target_level")?;
        local.time(&c[2], j.at("ready_by")?, "ready_by")
    })?;
    let nothing = smart && feasible && all.is_empty();
    rule(
        r"^Already at {N} %: no charging needed for {N} % by {T}\.",
        nothing && !plan["deadline"].is_null(),
        &mut covered,
        &|c| {
            same(&c[1], j.num("start_battery_level")?, "start_battery_level")?;
            same(&c[2], j.num("target_level")?, "target_level")?;
            local.time(&c[3], j.at("deadline")?, "deadline")
        },
    )?;
    rule(
        r"^At {N} %: no charging needed\.",
        nothing && plan["deadline"].is_null(),
        &mut covered,
        &|c| same(&c[1], j.num("start_battery_level")?, "start_battery_level"),
    )?;

    let forecast = plan["forecast_prices"].as_array().unwrap();
    rule(
        r"Prices (for .+?|in \d+ stretches between {T} and {T}) are not published yet and are forecast as (.+?)(?:; (charging {S} relies on them|the charging itself uses published prices only))?\.(?: |$)",
        !forecast.is_empty(),
        &mut covered,
        &|c| check_forecast(plan, &local, c, forecast),
    )?;

    let defaults = plan["defaults_applied"].as_array().unwrap();
    let default_of = |field: &str| {
        defaults
            .iter()
            .find(|d| d["field"] == field)
            .map(|d| &d["value"])
    };
    rule(
        r"Defaults used \(not in the request\): (.+?)\.(?: |$)",
        {
            // The defaults that must be named when they were taken; others may be.
            let must = [
                ("is_plugged_in", true),
                ("charging_efficiency", !all.is_empty()),
                ("charge_target_min", !min_part.is_empty()),
                (
                    "minimum_charge_limit",
                    smart && !plan["target_level"].is_null(),
                ),
                ("charge_deadline_at", smart && !plan["deadline"].is_null()),
            ];
            let named = must
                .iter()
                .any(|(f, when)| *when && default_of(f).is_some());
            let text_has = text.contains("Defaults used");
            if named && !text_has {
                return Err("a default that shaped the plan is not named".into());
            }
            text_has
        },
        &mut covered,
        &|c| {
            let mut seen = BTreeSet::new();
            for item in c[1].split(", ") {
                let item_re = |t: &str| re(&format!("^{t}$")).captures(item);
                let (field, ok) = if item == "plugged in" || item == "not plugged in" {
                    (
                        "is_plugged_in",
                        default_of("is_plugged_in") == Some(&json!(item == "plugged in")),
                    )
                } else if let Some(on) = item.strip_prefix("smart charging ") {
                    let v = default_of("is_smart_optimization_active");
                    (
                        "is_smart_optimization_active",
                        v == Some(&json!(on == "on")),
                    )
                } else if let Some(m) = item_re("minimum level {N} %") {
                    (
                        "charge_target_min",
                        default_is(default_of("charge_target_min"), &m[1], 1.0)?,
                    )
                } else if let Some(m) = item_re("target {N} %") {
                    (
                        "minimum_charge_limit",
                        default_is(default_of("minimum_charge_limit"), &m[1], 1.0)?,
                    )
                } else if let Some(m) = item_re("deadline {T}") {
                    local.time(&m[1], j.at("deadline")?, "deadline")?;
                    let hm = m[1].rsplit(' ').nth(1).unwrap_or_default();
                    let default = default_of("charge_deadline_at").and_then(Value::as_str);
                    (
                        "charge_deadline_at",
                        default.is_some_and(|d| d.starts_with(hm)),
                    )
                } else if let Some(m) = item_re("maximum power {N} kW") {
                    (
                        "expected_max_charge_power",
                        default_is(default_of("expected_max_charge_power"), &m[1], 1e-3)?,
                    )
                } else if let Some(m) = item_re("home radius {N} m") {
                    (
                        "geo_fence_distance_m",
                        default_is(default_of("geo_fence_distance_m"), &m[1], 1.0)?,
                    )
                } else if let Some(m) = item_re("charging efficiency {N} %") {
                    (
                        "charging_efficiency",
                        default_is(default_of("charging_efficiency"), &m[1], 100.0)?,
                    )
                } else if let Some(m) = item_re("shortest block {N} min") {
                    (
                        "min_block_minutes",
                        default_is(default_of("min_block_minutes"), &m[1], 1.0)?,
                    )
                } else if let Some(m) = item_re("lowest power {N} kW") {
                    (
                        "min_charge_power_w",
                        default_is(default_of("min_charge_power_w"), &m[1], 1e-3)?,
                    )
                } else {
                    return Err(format!("unknown default {item:?}"));
                };
                if !ok || !seen.insert(field) {
                    return Err(format!(
                        "default {item:?} is not in defaults_applied (or twice)"
                    ));
                }
            }
            Ok(())
        },
    )?;

    // Nothing numeric outside what the rules checked.
    let mut rest = text.to_owned().into_bytes();
    for (a, b) in covered {
        rest[a..b].fill(b' ');
    }
    let rest = String::from_utf8_lossy(&rest);
    if rest.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!("unchecked figure in {rest:?}"));
    }
    Ok(())
}

/// A default's JSON value × `scale` is the shown number.
fn default_is(value: Option<&Value>, shown: &str, scale: f64) -> Result<bool, String> {
    Ok(match value.and_then(Value::as_f64) {
        Some(v) => same(shown, v * scale, "default").is_ok(),
        None => false,
    })
}

fn check_forecast(
    plan: &Value,
    local: &Local,
    c: &Captures,
    forecast: &[Value],
) -> Result<(), String> {
    let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for p in forecast {
        let (s, e) = (at_of(p, "start"), at_of(p, "end"));
        match runs.last_mut() {
            Some(run) if run.1 == s => run.1 = e,
            _ => runs.push((s, e)),
        }
    }
    let when = &c[1];
    if let Some(list) = when.strip_prefix("for ") {
        let shown: Vec<&str> = list.split(", ").flat_map(|s| s.split(" and ")).collect();
        if shown.len() != runs.len() || runs.len() > 3 {
            return Err(format!(
                "forecast: text {} runs, JSON {}",
                shown.len(),
                runs.len()
            ));
        }
        for (s, (a, b)) in shown.iter().zip(&runs) {
            local.range(s, *a, *b, "forecast run")?;
        }
    } else {
        let n: usize = when["in ".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if n != runs.len() || n <= 3 {
            return Err(format!("forecast: text {n} stretches, JSON {}", runs.len()));
        }
        local.time(&c[2], runs[0].0, "first forecast")?;
        local.time(&c[3], runs[runs.len() - 1].1, "last forecast")?;
    }

    // How the forecast was made, as each slot's `basis` says.
    let bases: BTreeSet<&str> = forecast
        .iter()
        .map(|p| p["basis"].as_str().unwrap())
        .collect();
    let mean: Vec<f64> = forecast
        .iter()
        .filter(|p| p["basis"] == "mean_of_given_prices")
        .map(|p| p["price_eur_mwh"].as_f64().unwrap())
        .collect();
    if mean.windows(2).any(|w| w[0] != w[1]) {
        return Err("a flat forecast that is not flat".into());
    }
    let same_time =
        "the mean price at the same time of day on the previous days given (up to a week back)";
    let basis = &c[4];
    let b = |s: &[&str]| bases == s.iter().copied().collect::<BTreeSet<_>>();
    let ok = if basis == same_time {
        b(&["previous_days"])
    } else if let Some(m) = re(&format!(
        "^{}, else a flat {{N}} €/MWh \\(the mean of all given prices\\)$",
        regex::escape(same_time)
    ))
    .captures(basis)
    {
        b(&["previous_days", "mean_of_given_prices"])
            && same(&m[1], mean[0], "forecast mean").is_ok()
    } else if let Some(m) = re(r"^a flat {N} €/MWh, the mean of all given prices$").captures(basis)
    {
        b(&["mean_of_given_prices"]) && same(&m[1], mean[0], "forecast mean").is_ok()
    } else if let Some(m) = re(r"^{N} €/MWh, as no prices were given$").captures(basis) {
        b(&["no_prices"])
            && same(
                &m[1],
                forecast[0]["price_eur_mwh"].as_f64().unwrap(),
                "forecast",
            )
            .is_ok()
    } else {
        false
    };
    if !ok {
        return Err(format!("forecast basis {basis:?} but JSON bases {bases:?}"));
    }

    // Which charging time falls on forecast prices.
    let intervals = plan["intervals"].as_array().unwrap();
    let mut relying = Vec::new();
    for i in intervals {
        for (from, to) in &runs {
            let (a, b) = (at_of(i, "start").max(*from), at_of(i, "end").min(*to));
            if a < b {
                relying.push((a, b));
            }
        }
    }
    let relying = merged(&relying);
    if relying.is_empty() == plan["uses_forecast_prices"].as_bool().unwrap() {
        return Err("uses_forecast_prices disagrees with the forecast slots".into());
    }
    match c.get(5).map(|m| m.as_str()) {
        Some(u) if u.starts_with("charging ") => {
            local.blocks(&c[6], &relying, "charging on forecasts")
        }
        Some(_) if relying.is_empty() && !intervals.is_empty() => Ok(()),
        None if intervals.is_empty() => Ok(()),
        other => Err(format!(
            "forecast use {other:?}, {} stretches rely on forecasts",
            relying.len()
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn explanation_matches_the_plan_json(seed in any::<u64>()) {
        if let Ok(plan) = plan_json(seed)
            && let Err(why) = check(&plan)
        {
            return Err(TestCaseError::fail(format!(
                "seed {seed}: {why}\nrequest: {}\nplan: {plan:#}",
                request(seed)
            )));
        }
    }
}

/// The checker is not vacuous: changing any one digit of a real explanation, or a figure the
/// text shows, makes it fail.
#[test]
fn checker_rejects_every_changed_digit_and_figure() {
    let mut digits = 0;
    for seed in 0..300 {
        let Ok(plan) = plan_json(seed) else { continue };
        let text = plan["explanation"].as_str().unwrap().to_owned();
        check(&plan).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        for (i, ch) in text.char_indices().filter(|(_, c)| c.is_ascii_digit()) {
            let changed = char::from(b'0' + (ch as u8 - b'0' + 5) % 10);
            let mut bad = text.clone();
            bad.replace_range(i..i + 1, &changed.to_string());
            assert!(
                check_text(&plan, &bad).is_err(),
                "seed {seed}: changing digit {i} went unnoticed:\n{bad}"
            );
            digits += 1;
        }
        let shifted = |key: &str, value: Value| {
            let mut p = plan.clone();
            p[key] = value;
            check(&p).is_err()
        };
        if let Some(avg) = plan["average_price_eur_mwh"].as_f64() {
            assert!(
                shifted("average_price_eur_mwh", json!(avg + 1.0)),
                "seed {seed}"
            );
            let cost = plan["expected_cost_eur"].as_f64().unwrap();
            assert!(
                shifted("expected_cost_eur", json!(cost + 0.02)),
                "seed {seed}"
            );
        }
        if re(r"\d\d:\d\d").is_match(&text) {
            assert!(shifted("time_zone", json!("Asia/Tokyo")), "seed {seed}");
        }
    }
    assert!(digits > 6_000, "{digits}");
}

/// The random requests reach the cases the explanation distinguishes.
#[test]
fn generator_covers_the_interesting_cases() {
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut count =
        |what: &'static str, yes: bool| *seen.entry(what).or_default() += usize::from(yes);
    for seed in 0..1500 {
        let Ok(p) = plan_json(seed) else {
            count("refused", true);
            continue;
        };
        let text = p["explanation"].as_str().unwrap();
        let bases: Vec<&str> = p["forecast_prices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["basis"].as_str().unwrap())
            .collect();
        for mode in [
            "smart",
            "boost",
            "away_from_home",
            "smart_optimization_off",
            "not_plugged_in",
        ] {
            count(mode, p["mode"] == mode);
        }
        count("infeasible", p["feasible"] == false);
        count("min level", text.contains("minimum"));
        count("over-charge", text.contains("Over-charging"));
        count("several blocks", text.contains(" blocks between "));
        count("pause", text.contains("pause ends"));
        count(
            "negative cost",
            p["expected_cost_eur"].as_f64().unwrap() < -0.005,
        );
        count("forecast used", p["uses_forecast_prices"] == true);
        count(
            "baseline on forecasts",
            p["baseline_uses_forecast_prices"] == true,
        );
        count("previous days", bases.contains(&"previous_days"));
        count("flat mean", bases.contains(&"mean_of_given_prices"));
        count("no prices", bases.contains(&"no_prices"));
        count("forecast stretches", text.contains(" stretches between "));
        count("defaults named", text.contains("Defaults used"));
        count(
            "weekday shown",
            ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "]
                .iter()
                .any(|d| text.contains(d)),
        );
        count(
            "offset change in a range",
            re(r"\d\d:\d\d [A-Z]+–").is_match(text),
        );
        count(
            "summer time",
            text.contains("CEST")
                || text.contains("BST")
                || text.contains("WEST")
                || text.contains("EEST"),
        );
        count(
            "winter time",
            text.contains("CET ")
                || text.contains("GMT")
                || text.contains("WET ")
                || text.contains("EET "),
        );
    }
    let low: Vec<_> = seen
        .iter()
        .filter(|(k, n)| **n < 10 && **k != "refused")
        .collect();
    assert!(low.is_empty(), "rare cases {low:?} in {seen:?}");
}

/// `SEED=… cargo test -p voltplan-core --test planner_explanation show_seed -- --ignored --nocapture`
#[test]
#[ignore]
fn show_seed() {
    let (seed, count) = support::seed_from_env(1);
    for seed in seed..seed + count {
        match plan_json(seed) {
            Ok(plan) => println!(
                "{seed}: {}\n  {:?}\n",
                plan["explanation"],
                check(&plan).err()
            ),
            Err(e) => println!("{seed}: refused: {e}\n"),
        }
    }
}
