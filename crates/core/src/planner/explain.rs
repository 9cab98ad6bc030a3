//! The plan in a few sentences a driver understands: what happens when, what it costs against
//! charging at once, which prices are forecasts and how they were made, which defaults it assumed.
//!
//! Every figure is a field of the [`Plan`] a client reads as JSON (or a sum, maximum or count over
//! its intervals), rounded as shown; every clock time is one of its instants in the price zone's
//! local time, with the zone's abbreviation. `tests/planner_explanation.rs` checks both on
//! thousands of random plans, so write nothing here that is not in the plan.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::forecast::ForecastBasis;
use super::input::{AppliedDefault, PlannerSettings};
use super::output::{Plan, PlanInterval, PlanMode, Reason};

/// Local clock times of one plan.
struct Clock {
    tz: Tz,
    /// The local date the plan was made on: today and tomorrow need no weekday.
    today: NaiveDate,
}

impl Clock {
    /// ("03:02", "CET"), or ("Fri 03:02", "CET") beyond tomorrow.
    fn parts(&self, t: DateTime<Utc>) -> (String, String) {
        let local = t.with_timezone(&self.tz);
        let days = (local.date_naive() - self.today).num_days();
        let time = if (0..=1).contains(&days) {
            local.format("%H:%M")
        } else {
            local.format("%a %H:%M")
        };
        (time.to_string(), local.format("%Z").to_string())
    }

    /// "03:02 CET".
    fn at(&self, t: DateTime<Utc>) -> String {
        let (time, zone) = self.parts(t);
        format!("{time} {zone}")
    }

    /// "01:00–03:30 CET"; "01:30 CEST–03:30 CET" across a change of offset.
    fn range(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
        let ((a, za), (b, zb)) = (self.parts(from), self.parts(to));
        if za == zb {
            format!("{a}–{b} {zb}")
        } else {
            format!("{a} {za}–{b} {zb}")
        }
    }

    /// When a group of intervals charges: one range, or the number of blocks and their bounds.
    fn span(&self, intervals: &[&PlanInterval]) -> Option<String> {
        let first = intervals.first()?;
        let last = intervals.last()?;
        let blocks = intervals
            .windows(2)
            .filter(|w| w[0].end != w[1].start)
            .count()
            + 1;
        Some(if blocks == 1 {
            self.range(first.start, last.end)
        } else {
            format!(
                "in {blocks} blocks between {} and {}",
                self.at(first.start),
                self.at(last.end)
            )
        })
    }
}

/// `x` with `decimals` digits, never "-0".
fn fixed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(abs) if abs.chars().all(|c| c == '0' || c == '.') => abs.to_owned(),
        _ => s,
    }
}

fn pct(level: f64) -> String {
    format!("{} %", fixed(level, 0))
}

fn kw(power_w: f64) -> String {
    let kw = power_w / 1000.0;
    if (kw - kw.round()).abs() < 0.05 {
        format!("{} kW", fixed(kw, 0))
    } else {
        format!("{} kW", fixed(kw, 1))
    }
}

fn kwh(energy: f64) -> String {
    // Two decimals below 1 kWh, so that a small top-up does not read "0.0 kWh".
    let decimals = if energy.abs() < 1.0 { 2 } else { 1 };
    format!("{} kWh", fixed(energy, decimals))
}

/// How the explanation writes a currency: its sign where it has a common one, else its code.
fn currency_sign(code: &str) -> &str {
    match code {
        "EUR" => "€",
        "GBP" => "£",
        other => other,
    }
}

fn eur(amount: f64, currency: &str) -> String {
    format!("{} {}", fixed(amount, 2), currency_sign(currency))
}

fn eur_mwh(price: f64, currency: &str) -> String {
    format!("{} {}/MWh", fixed(price, 0), currency_sign(currency))
}

fn max_kw(intervals: &[&PlanInterval]) -> String {
    kw(intervals.iter().map(|i| i.power_w).fold(0.0, f64::max))
}

fn of<'p>(plan: &'p Plan, reasons: &[Reason]) -> Vec<&'p PlanInterval> {
    plan.intervals
        .iter()
        .filter(|i| reasons.contains(&i.reason))
        .collect()
}

/// "a", "a and b", "a, b and c".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `max_power_w` is the car's maximum grid power, which the plan reports only through its
/// intervals; it tells whether the power default mattered.
pub(crate) fn explain(plan: &Plan, settings: &PlannerSettings, max_power_w: f64) -> String {
    let tz = settings.price_zone.time_zone();
    let currency = settings
        .currency
        .as_deref()
        .unwrap_or(settings.price_zone.info().currency);
    let clock = Clock {
        tz,
        today: plan.planned_at.with_timezone(&tz).date_naive(),
    };
    let what = match plan.mode {
        PlanMode::NotPluggedIn => return "Not plugged in: nothing to plan.".into(),
        PlanMode::AwayFromHome | PlanMode::SmartOptimizationOff => uncontrolled_line(plan, &clock),
        PlanMode::Boost => boost_line(plan, &clock),
        PlanMode::Smart => smart_line(plan, &clock),
    };
    [
        Some(what),
        shared_limit(plan),
        money(plan, currency),
        forecast(plan, &clock, currency),
        defaults(plan, max_power_w, &clock),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// Names the grid group whose limit shaped the plan, and what it costs the driver.
fn shared_limit(plan: &Plan) -> Option<String> {
    let note = plan.shared_limit.as_ref()?;
    let mut line = format!(
        "It shares a power limit with other devices in grid group “{}” and charges only when the group's joint plan leaves it room.",
        note.group_name
    );
    if note.shortfall_kwh >= 0.05 {
        line.push_str(&format!(
            " The limit leaves {:.1} kWh of its target undelivered by the deadline: the group serves drivers below their minimum level first, then delivers as much of every target as the limit allows at the least cost.",
            note.shortfall_kwh
        ));
    }
    Some(line)
}

fn ready_by(plan: &Plan, clock: &Clock) -> String {
    plan.ready_by
        .map_or(String::new(), |t| format!(" by {}", clock.at(t)))
}

fn after_pause(plan: &Plan, clock: &Clock) -> String {
    plan.pause_until.map_or(String::new(), |p| {
        format!(" once the pause ends at {}", clock.at(p))
    })
}

fn uncontrolled_line(plan: &Plan, clock: &Clock) -> String {
    let why = if plan.mode == PlanMode::AwayFromHome {
        "Away from home"
    } else {
        "Smart charging is off"
    };
    let all: Vec<&PlanInterval> = plan.intervals.iter().collect();
    if all.is_empty() {
        return format!(
            "{why}: the battery is already at {}.",
            pct(plan.final_battery_level)
        );
    }
    format!(
        "{why}: charging now at {} as the car would on its own, to {}{}.",
        max_kw(&all),
        pct(plan.final_battery_level),
        ready_by(plan, clock)
    )
}

fn boost_line(plan: &Plan, clock: &Clock) -> String {
    let all: Vec<&PlanInterval> = plan.intervals.iter().collect();
    if all.is_empty() {
        return format!(
            "Boost: the battery is already full at {}.",
            pct(plan.final_battery_level)
        );
    }
    format!(
        "Boost: charging at full power ({}){}, to {}{}.",
        max_kw(&all),
        after_pause(plan, clock),
        pct(plan.final_battery_level),
        ready_by(plan, clock)
    )
}

fn smart_line(plan: &Plan, clock: &Clock) -> String {
    let all: Vec<&PlanInterval> = plan.intervals.iter().collect();
    if !plan.feasible
        && let (Some(target), Some(deadline)) = (plan.target_level, plan.deadline)
    {
        let how = if all.is_empty() {
            String::new()
        } else {
            format!(
                ": charging at full power ({}){}",
                max_kw(&all),
                after_pause(plan, clock)
            )
        };
        let at_deadline = plan
            .battery_level_at_deadline
            .unwrap_or(plan.start_battery_level);
        let later = plan.ready_by.map_or(String::new(), |t| {
            format!(" and {} at {}", pct(target), clock.at(t))
        });
        return format!(
            "Cannot reach {} by {}{how}, reaching {} by then{later}.",
            pct(target),
            clock.at(deadline),
            pct(at_deadline),
        );
    }
    let min_part = of(plan, &[Reason::MinLevel]);
    // Infeasible energy in a feasible plan: forced within rounding of the capacity; it still
    // serves the target.
    let target_part = of(plan, &[Reason::Target, Reason::Infeasible]);
    let over_part = of(plan, &[Reason::OverCharge]);
    let mut pieces = Vec::new();
    if let (false, Some(min)) = (min_part.is_empty(), plan.minimum_level) {
        let when = match plan.pause_until {
            Some(p) => format!("once the pause ends at {}", clock.at(p)),
            None => "now".to_owned(),
        };
        pieces.push(format!(
            "Charging at {} to the {} minimum {when}",
            max_kw(&min_part),
            pct(min)
        ));
    }
    if let (Some(when), Some(deadline)) = (clock.span(&target_part), plan.deadline) {
        pieces.push(format!(
            "{} {when} at {}, the cheapest hours before {}",
            if pieces.is_empty() {
                "Charging"
            } else {
                "then"
            },
            max_kw(&target_part),
            clock.at(deadline),
        ));
    }
    let mut line = pieces.join(", ");
    if !pieces.is_empty() {
        match (plan.target_level, plan.ready_by) {
            (Some(target), Some(t)) => {
                line.push_str(&format!("; {} by {}.", pct(target), clock.at(t)));
            }
            _ => line.push('.'),
        }
    }
    // Over-charge is beyond the target and may fall before or after it: a sentence of its own.
    if let Some(when) = clock.span(&over_part) {
        let energy: f64 = over_part.iter().map(|i| i.energy_kwh).sum();
        let gap = if line.is_empty() { "" } else { " " };
        line.push_str(&format!(
            "{gap}Over-charging {} {when} while prices are at or below zero.",
            kwh(energy)
        ));
    }
    if line.is_empty() {
        return match (plan.target_level, plan.deadline) {
            (Some(target), Some(deadline)) => format!(
                "Already at {}: no charging needed for {} by {}.",
                pct(plan.start_battery_level),
                pct(target),
                clock.at(deadline)
            ),
            _ => format!("At {}: no charging needed.", pct(plan.start_battery_level)),
        };
    }
    line
}

/// Energy, cost and average price; for smart charging also what charging at once would cost
/// (the plan's baseline; the other modes are charging at once).
fn money(plan: &Plan, currency: &str) -> Option<String> {
    let average = plan.average_price_eur_mwh?;
    let mut s = format!(
        "Total: {} for {} ({} on average)",
        kwh(plan.energy_kwh),
        eur(plan.expected_cost_eur, currency),
        eur_mwh(average, currency)
    );
    if plan.mode == PlanMode::Smart
        && let Some(baseline) = plan.baseline_average_price_eur_mwh
    {
        s.push_str(&format!(
            "; charging at once would cost {} ({}{})",
            eur(plan.baseline_cost_eur, currency),
            eur_mwh(baseline, currency),
            if plan.baseline_uses_forecast_prices {
                ", partly at forecast prices"
            } else {
                ""
            }
        ));
    }
    s.push('.');
    Some(s)
}

/// Which prices are forecasts, how they were made, and which charging relies on them.
fn forecast(plan: &Plan, clock: &Clock, currency: &str) -> Option<String> {
    let first = plan.forecast_prices.first()?;
    let mut runs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for p in &plan.forecast_prices {
        match runs.last_mut() {
            Some(run) if run.1 == p.start => run.1 = p.end,
            _ => runs.push((p.start, p.end)),
        }
    }
    let when = match runs.as_slice() {
        [(from, _), .., (_, to)] if runs.len() > 3 => format!(
            "in {} stretches between {} and {}",
            runs.len(),
            clock.at(*from),
            clock.at(*to)
        ),
        _ => format!(
            "for {}",
            list(
                &runs
                    .iter()
                    .map(|(a, b)| clock.range(*a, *b))
                    .collect::<Vec<_>>()
            )
        ),
    };
    const SAME_TIME: &str =
        "the mean price at the same time of day on the previous days given (up to a week back)";
    let mean = plan
        .forecast_prices
        .iter()
        .find(|p| p.basis == ForecastBasis::MeanOfGivenPrices)
        .map(|p| p.price_eur_mwh);
    let previous_days = plan
        .forecast_prices
        .iter()
        .any(|p| p.basis == ForecastBasis::PreviousDays);
    let basis = match (previous_days, mean) {
        (true, None) => SAME_TIME.to_owned(),
        (true, Some(mean)) => format!(
            "{SAME_TIME}, else a flat {} (the mean of all given prices)",
            eur_mwh(mean, currency)
        ),
        (false, Some(mean)) => format!(
            "a flat {}, the mean of all given prices",
            eur_mwh(mean, currency)
        ),
        (false, None) => format!(
            "{}, as no prices were given",
            eur_mwh(first.price_eur_mwh, currency)
        ),
    };
    // The charging time that falls on forecast slots (an interval may be only partly on them).
    let mut relying: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for i in &plan.intervals {
        for (from, to) in &runs {
            let (a, b) = (i.start.max(*from), i.end.min(*to));
            if a < b {
                match relying.last_mut() {
                    Some(last) if last.1 == a => last.1 = b,
                    _ => relying.push((a, b)),
                }
            }
        }
    }
    let usage = match relying.as_slice() {
        [] if plan.intervals.is_empty() => String::new(),
        [] => "; the charging itself uses published prices only".to_owned(),
        [(a, b)] => format!("; charging {} relies on them", clock.range(*a, *b)),
        [(a, _), .., (_, b)] => format!(
            "; charging in {} blocks between {} and {} relies on them",
            relying.len(),
            clock.at(*a),
            clock.at(*b)
        ),
    };
    Some(format!(
        "Prices {when} are not published yet and are forecast as {basis}{usage}."
    ))
}

/// The defaults (absent request fields) that shaped this plan.
fn defaults(plan: &Plan, max_power_w: f64, clock: &Clock) -> Option<String> {
    let charging = !plan.intervals.is_empty();
    let smart = plan.mode == PlanMode::Smart;
    // A block stretched at lower power is where the shortest-block and lowest-power rules acted.
    let stretched = plan
        .intervals
        .iter()
        .any(|i| i.power_w < 0.99 * max_power_w);
    let min_level_charged = plan.intervals.iter().any(|i| i.reason == Reason::MinLevel);
    let on_off = |on: bool, what: &str| format!("{what} {}", if on { "on" } else { "off" });
    let items: Vec<String> = plan
        .defaults_applied
        .iter()
        .filter_map(|d| match *d {
            AppliedDefault::IsPluggedIn(on) => {
                Some(if on { "plugged in" } else { "not plugged in" }.to_owned())
            }
            AppliedDefault::IsSmartOptimizationActive(on)
                if plan.mode != PlanMode::AwayFromHome =>
            {
                Some(on_off(on, "smart charging"))
            }
            AppliedDefault::ChargeTargetMin(v) if min_level_charged => {
                Some(format!("minimum level {}", pct(v)))
            }
            AppliedDefault::MinimumChargeLimit(v) if smart && plan.target_level.is_some() => {
                Some(format!("target {}", pct(v)))
            }
            AppliedDefault::ChargeDeadlineAt(_) if smart => {
                plan.deadline.map(|at| format!("deadline {}", clock.at(at)))
            }
            AppliedDefault::ExpectedMaxChargePower(w) if charging && w >= max_power_w => {
                Some(format!("maximum power {}", kw(w)))
            }
            AppliedDefault::GeoFenceDistanceM(m) => Some(format!("home radius {} m", fixed(m, 0))),
            AppliedDefault::ChargingEfficiency(e) if charging => {
                Some(format!("charging efficiency {}", pct(e * 100.0)))
            }
            AppliedDefault::MinBlockMinutes(m) if stretched => {
                Some(format!("shortest block {m} min"))
            }
            AppliedDefault::MinChargePowerW(w) if stretched => {
                Some(format!("lowest power {}", kw(w)))
            }
            _ => None,
        })
        .collect();
    (!items.is_empty())
        .then(|| format!("Defaults used (not in the request): {}.", items.join(", ")))
}
