//! One line a driver understands: what will happen, when, and why it is cheaper.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::input::PlannerSettings;
use super::output::{Plan, PlanInterval, PlanMode, Reason};

fn hhmm(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

fn kw(power_w: f64) -> String {
    let kw = power_w / 1000.0;
    if (kw - kw.round()).abs() < 0.05 {
        format!("{:.0} kW", kw)
    } else {
        format!("{:.1} kW", kw)
    }
}

fn pct(level: f64) -> String {
    format!("{:.0} %", level)
}

fn max_power(intervals: &[&PlanInterval]) -> f64 {
    intervals.iter().map(|i| i.power_w).fold(0.0, f64::max)
}

fn span(intervals: &[&PlanInterval], tz: Tz) -> Option<String> {
    let first = intervals.first()?;
    let last = intervals.last()?;
    let blocks = intervals
        .windows(2)
        .filter(|w| w[0].end != w[1].start)
        .count()
        + 1;
    let (from, to) = (hhmm(first.start, tz), hhmm(last.end, tz));
    Some(if blocks == 1 {
        format!("{from}–{to}")
    } else {
        format!("in {blocks} blocks between {from} and {to}")
    })
}

pub(crate) fn explain(
    plan: &Plan,
    settings: &PlannerSettings,
    tz: Tz,
    pause_until: Option<DateTime<Utc>>,
) -> String {
    let all: Vec<&PlanInterval> = plan.intervals.iter().collect();
    let power = kw(max_power(&all));
    let until = |level: f64| match plan.ready_by {
        Some(t) if !all.is_empty() => format!("{} (about {})", pct(level), hhmm(t, tz)),
        _ => pct(level),
    };
    let after_pause = pause_until.map_or(String::new(), |p| {
        format!(" after the pause ends at {}", hhmm(p, tz))
    });
    let mut line = match plan.mode {
        PlanMode::NotPluggedIn => return "Not plugged in: nothing to plan.".into(),
        PlanMode::AwayFromHome | PlanMode::SmartOptimizationOff => {
            let why = if plan.mode == PlanMode::AwayFromHome {
                "Away from home"
            } else {
                "Smart charging is off"
            };
            if all.is_empty() {
                format!(
                    "{why}: the battery is already at {}.",
                    pct(plan.final_battery_level)
                )
            } else {
                format!(
                    "{why}: charging now at {power} as the car would on its own, to {}.",
                    until(plan.final_battery_level)
                )
            }
        }
        PlanMode::Boost => {
            if all.is_empty() {
                format!(
                    "Boost: the battery is already full at {}.",
                    pct(plan.final_battery_level)
                )
            } else {
                format!(
                    "Boost: charging at full power ({power}){after_pause} until {}.",
                    until(plan.final_battery_level)
                )
            }
        }
        PlanMode::Smart => smart_line(plan, settings, tz, &after_pause),
    };
    if plan.uses_forecast_prices {
        line.push_str(
            " Some prices are still forecasts; the plan is updated when they are published.",
        );
    }
    line
}

fn smart_line(plan: &Plan, settings: &PlannerSettings, tz: Tz, after_pause: &str) -> String {
    let of = |reasons: &[Reason]| -> Vec<&PlanInterval> {
        plan.intervals
            .iter()
            .filter(|i| reasons.contains(&i.reason))
            .collect()
    };
    let min_part = of(&[Reason::MinLevel]);
    let target_part = of(&[Reason::Target]);
    let over_part = of(&[Reason::OverCharge]);
    let by = plan.deadline.map(|d| hhmm(d, tz));
    if !plan.feasible {
        let target = plan.target_level.unwrap_or(100.0);
        let at_deadline = plan
            .battery_level_at_deadline
            .unwrap_or(plan.start_battery_level);
        let later = plan.ready_by.map_or(String::new(), |t| {
            format!(" and {} at {}", pct(target), hhmm(t, tz))
        });
        return format!(
            "Cannot reach {} by {}: charging at full power ({}){after_pause}, reaching {} by then{later}.",
            pct(target),
            by.unwrap_or_default(),
            kw(max_power(&plan.intervals.iter().collect::<Vec<_>>())),
            pct(at_deadline),
        );
    }
    let mut pieces = Vec::new();
    if !min_part.is_empty() {
        pieces.push(format!(
            "Charging now{after_pause} at {} to the {} minimum",
            kw(max_power(&min_part)),
            pct(settings.charge_target_min_pct)
        ));
    }
    if let Some(when) = span(&target_part, tz) {
        let cost: f64 = target_part.iter().map(|i| i.cost_eur).sum();
        let energy: f64 = target_part.iter().map(|i| i.energy_kwh).sum();
        let avg = cost / energy * 1000.0;
        let mut s = format!(
            "{} {when} at {}, the cheapest hours before {}: {:.0} €/MWh on average",
            if pieces.is_empty() {
                "Charging"
            } else {
                "then"
            },
            kw(max_power(&target_part)),
            by.clone().unwrap_or_default(),
            avg
        );
        // Against what the driver would otherwise pay: the same energy charged at once on
        // plug-in (the plan's baseline), not the price of the current slot alone.
        let at_once = plan.baseline_cost_eur / plan.energy_kwh * 1000.0;
        if plan.energy_kwh > 0.0 && (at_once - avg).abs() >= 0.5 {
            s.push_str(&format!(" instead of {at_once:.0} €/MWh charging at once"));
        }
        pieces.push(s);
    }
    if let Some(when) = span(&over_part, tz) {
        let energy: f64 = over_part.iter().map(|i| i.energy_kwh).sum();
        pieces.push(format!(
            "plus {energy:.1} kWh {when} while prices are at or below zero"
        ));
    }
    if pieces.is_empty() {
        return match (plan.target_level, by) {
            (Some(target), Some(by)) => format!(
                "Already at {}: no charging needed for {} by {by}.",
                pct(plan.start_battery_level),
                pct(target)
            ),
            _ => format!("At {}: no charging needed.", pct(plan.start_battery_level)),
        };
    }
    let mut line = pieces.join(", ");
    if let (Some(target), Some(t)) = (plan.target_level, plan.ready_by) {
        line.push_str(&format!("; {} by {}.", pct(target), hhmm(t, tz)));
    } else {
        line.push('.');
    }
    line
}
