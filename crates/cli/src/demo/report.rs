//! What the demo prints while it runs, as pure functions of what the store holds: the hourly
//! status line (the fleet now, the day-ahead prices now) and the morning summary of the night's
//! sessions. `watch.rs` reads the store and the clock; everything here is arithmetic and text.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::fmt::Write;
use voltplan_core::PriceZone;
use voltplan_core::vehicle::{EvSettings, EvState};
use voltplan_store::fleet::{ReadingRecord, SessionRecord};

/// One car as the API reports it now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CarNow {
    pub plugged_in: bool,
    pub charging: bool,
    pub power_w: f64,
    pub level_pct: Option<f64>,
    /// The level asked for by the deadline, capped by the car's own limit.
    pub target_pct: Option<f64>,
}

impl CarNow {
    pub fn of(settings: &EvSettings, state: &EvState) -> Self {
        let charging = state.is_charging == Some(true);
        let cap = state.charge_target_max.unwrap_or(100);
        Self {
            plugged_in: state.is_plugged_in == Some(true),
            charging,
            power_w: if charging {
                f64::from(state.charge_rate_w.unwrap_or(0).max(0))
            } else {
                0.0
            },
            level_pct: state.battery_level.map(f64::from),
            target_pct: settings
                .minimum_charge_limit
                .map(|target| f64::from(target.min(cap))),
        }
    }

    fn at_target(&self) -> bool {
        match (self.level_pct, self.target_pct) {
            // The whole percent the API shows, at or above the target.
            (Some(level), Some(target)) => level >= target,
            _ => false,
        }
    }
}

/// The fleet at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FleetNow {
    pub cars: usize,
    pub plugged_in: usize,
    pub charging: usize,
    /// Plugged in and at (or above) the level asked for by the deadline.
    pub at_target: usize,
    pub power_kw: f64,
}

impl FleetNow {
    pub fn of(cars: &[CarNow]) -> Self {
        let plugged = || cars.iter().filter(|c| c.plugged_in);
        Self {
            cars: cars.len(),
            plugged_in: plugged().count(),
            charging: plugged().filter(|c| c.charging).count(),
            at_target: plugged().filter(|c| c.at_target()).count(),
            // A fold from +0.0: an empty `sum` of f64 is -0.0, printed "-0.0 kW".
            power_kw: plugged().fold(0.0, |w, c| w + c.power_w) / 1000.0,
        }
    }
}

/// `Tue 03 Jun 21:00 CEST`.
pub fn local_minute(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%a %d %b %H:%M %Z")
        .to_string()
}

/// One line: the simulated local time, the fleet, and each zone's day-ahead price now (`–` where
/// the store has none).
pub fn status_line(
    at: DateTime<Utc>,
    zone: Tz,
    fleet: &FleetNow,
    prices: &[(PriceZone, Option<f64>)],
) -> String {
    let mut line = format!(
        "{}  plugged in {:>2}/{} · charging {:>2} · at target {:>2} · {:>6.1} kW",
        local_minute(at, zone),
        fleet.plugged_in,
        fleet.cars,
        fleet.charging,
        fleet.at_target,
        fleet.power_kw,
    );
    if !prices.is_empty() {
        line.push_str(" · day-ahead");
        for (price_zone, price) in prices {
            match price {
                Some(p) => {
                    let _ = write!(line, " {price_zone} {p:.1}");
                }
                None => {
                    let _ = write!(line, " {price_zone} –");
                }
            }
        }
        line.push_str(" €/MWh");
    }
    line
}

/// The sessions closed within a window, added up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NightSummary {
    pub sessions: usize,
    /// Sessions with a target level, and those that reached it by their deadline
    /// (`target_reached_at` ≤ `charge_deadline`).
    pub with_target: usize,
    pub targets_met: usize,
    pub energy_kwh: f64,
    pub cost_eur: f64,
    /// What the same energy would have cost charging at full power from plug-in.
    pub baseline_eur: f64,
    /// `session_outcome` as the worker recorded it (`?` when missing).
    pub outcomes: BTreeMap<String, usize>,
    /// The fleet's highest total charging power within the window, and when.
    pub peak: Option<(DateTime<Utc>, f64)>,
}

impl NightSummary {
    /// Adds up the sessions unplugged within `[from, to)`; open sessions and others are ignored.
    pub fn of(sessions: &[SessionRecord], from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let mut summary = Self::default();
        for session in sessions {
            if !session.unplug_time.is_some_and(|t| from <= t && t < to) {
                continue;
            }
            let data = &session.data;
            summary.sessions += 1;
            if data.target_soc_pct.is_some() {
                summary.with_target += 1;
                // The session rules' own test (docs/worker.md): reached by the deadline.
                let met = match (data.target_reached_at, data.charge_deadline) {
                    (Some(reached), Some(deadline)) => reached <= deadline,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if met {
                    summary.targets_met += 1;
                }
            }
            summary.energy_kwh += data.energy_charged_kwh;
            summary.cost_eur += data.actual_cost_eur;
            summary.baseline_eur += data.baseline_cost_eur;
            let outcome = data.session_outcome.as_deref().unwrap_or("?");
            *summary.outcomes.entry(outcome.to_owned()).or_default() += 1;
        }
        summary
    }

    pub fn saved_eur(&self) -> f64 {
        self.baseline_eur - self.cost_eur
    }

    /// Saved in percent of the baseline; `None` without a baseline.
    pub fn saved_pct(&self) -> Option<f64> {
        (self.baseline_eur > 0.0).then(|| 100.0 * self.saved_eur() / self.baseline_eur)
    }

    /// The text: a headline and a line of outcomes.
    pub fn lines(&self, from: DateTime<Utc>, to: DateTime<Utc>, zone: Tz) -> Vec<String> {
        let mut head = format!(
            "Night {} – {}: {} sessions closed",
            local_minute(from, zone),
            local_minute(to, zone),
            self.sessions
        );
        if self.sessions == 0 {
            return vec![head];
        }
        let _ = write!(
            head,
            " · targets met {}/{}",
            self.targets_met, self.with_target
        );
        if self.with_target > 0 {
            let share = 100.0 * self.targets_met as f64 / self.with_target as f64;
            let _ = write!(head, " ({share:.0} %)");
        }
        let _ = write!(
            head,
            " · {:.1} kWh · cost {} · saved {}",
            self.energy_kwh,
            euros(self.cost_eur),
            euros(self.saved_eur())
        );
        if let Some(pct) = self.saved_pct() {
            let _ = write!(head, " ({} %)", whole(pct));
        }
        head.push_str(" vs charging at once");
        if let Some((at, kw)) = self.peak {
            let _ = write!(
                head,
                " · fleet peak {kw:.1} kW at {}",
                at.with_timezone(&zone).format("%H:%M")
            );
        }
        let outcomes = self
            .outcomes
            .iter()
            .map(|(outcome, n)| format!("{outcome} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        vec![head, format!("  outcomes: {outcomes}")]
    }
}

/// `€1.50`, `-€0.26`; never `-€0.00`.
fn euros(eur: f64) -> String {
    let cents = (eur * 100.0).round();
    if cents < 0.0 {
        format!("-€{:.2}", -cents / 100.0)
    } else {
        format!("€{:.2}", cents.abs() / 100.0)
    }
}

/// Rounded to a whole number; never `-0`.
fn whole(x: f64) -> String {
    format!("{:.0}", x.round() + 0.0)
}

/// The highest total charging power of the fleet within `[from, to)` and when it began, from the
/// `/data` readings: each car draws the power of its latest reading until its next one (a car
/// reported as not charging draws nothing). Readings before `from` set where the window starts.
/// `None` without readings.
pub fn fleet_peak(
    readings: &[ReadingRecord],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<(DateTime<Utc>, f64)> {
    let mut sorted: Vec<&ReadingRecord> = readings.iter().filter(|r| r.at < to).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by_key(|r| r.at);
    let power_w = |r: &ReadingRecord| {
        if r.is_charging == Some(false) {
            0.0
        } else {
            r.power_w.unwrap_or(0.0).max(0.0)
        }
    };
    let mut now = BTreeMap::new();
    let mut total = 0.0;
    let mut peak: Option<(DateTime<Utc>, f64)> = None;
    let mut i = 0;
    // The fleet as it stands at `from`.
    while i < sorted.len() && sorted[i].at < from {
        let r = sorted[i];
        total += power_w(r) - now.insert(r.vehicle_id, power_w(r)).unwrap_or(0.0);
        i += 1;
    }
    if i > 0 {
        peak = Some((from, total));
    }
    // Readings taken at the same instant count together.
    while i < sorted.len() {
        let at = sorted[i].at;
        while i < sorted.len() && sorted[i].at == at {
            let r = sorted[i];
            total += power_w(r) - now.insert(r.vehicle_id, power_w(r)).unwrap_or(0.0);
            i += 1;
        }
        if peak.is_none_or(|(_, kw)| total > kw) {
            peak = Some((at, total));
        }
    }
    peak.map(|(at, w)| (at, w / 1000.0))
}

/// The fleet's highest quarter-hour average power within `[from, to)` and the quarter-hour it
/// began, from the energy of the `/data` readings (each reading's energy spread evenly since the
/// car's previous one): what a grid meter measuring in 15-minute periods sees, free of the
/// staleness of instantaneous readings. `None` without energy.
pub fn quarter_hour_peak(
    readings: &[ReadingRecord],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<(DateTime<Utc>, f64)> {
    let quarter = Duration::minutes(15);
    let mut by_car: BTreeMap<uuid::Uuid, Vec<&ReadingRecord>> = BTreeMap::new();
    for r in readings {
        by_car.entry(r.vehicle_id).or_default().push(r);
    }
    let mut bins: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for mut car in by_car.into_values() {
        car.sort_by_key(|r| r.at);
        for pair in car.windows(2) {
            let (start, end, kwh) = (pair[0].at, pair[1].at, pair[1].energy_kwh.unwrap_or(0.0));
            let span = (end - start).num_milliseconds() as f64;
            if kwh <= 0.0 || span <= 0.0 {
                continue;
            }
            let mut bin = quarter_start(start);
            while bin < end {
                let (a, b) = (bin.max(start), (bin + quarter).min(end));
                let share = (b - a).num_milliseconds() as f64 / span;
                if bin >= quarter_start(from) && bin < to {
                    *bins.entry(bin).or_default() += kwh * share;
                }
                bin += quarter;
            }
        }
    }
    bins.into_iter()
        .filter(|(_, kwh)| *kwh > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(at, kwh)| (at, kwh * 4.0))
}

fn quarter_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = t.timestamp().div_euclid(900) * 900;
    Utc.timestamp_opt(seconds, 0).single().unwrap_or(t)
}

/// The first whole hour after `t` (an hour of UTC is an hour of every zone the demo uses).
pub fn next_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = t
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t);
    floor + Duration::hours(1)
}

/// The first instant after `t` that reads `time` on the clocks of `zone` (skipping a day on which
/// that time does not exist).
pub fn next_local(t: DateTime<Utc>, zone: Tz, time: NaiveTime) -> DateTime<Utc> {
    let mut date = t.with_timezone(&zone).date_naive();
    for _ in 0..4 {
        if let Some(at) = zone.from_local_datetime(&date.and_time(time)).earliest() {
            let at = at.with_timezone(&Utc);
            if at > t {
                return at;
            }
        }
        date = date.succ_opt().unwrap_or(date);
    }
    t + Duration::days(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Vienna;
    use uuid::Uuid;
    use voltplan_store::fleet::SessionData;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap()
    }

    fn car(plugged_in: bool, charging: bool, kw: f64, level: f64, target: f64) -> CarNow {
        CarNow {
            plugged_in,
            charging,
            power_w: kw * 1000.0,
            level_pct: Some(level),
            target_pct: Some(target),
        }
    }

    #[test]
    fn the_fleet_counts_plugged_charging_and_at_target_cars_and_adds_their_power() {
        let fleet = FleetNow::of(&[
            car(true, true, 11.0, 40.0, 80.0),
            car(true, true, 7.4, 80.0, 80.0), // the API shows 80: at target
            car(true, true, 7.4, 79.0, 80.0), // 79 is not 80
            car(true, false, 0.0, 90.0, 90.0),
            car(true, false, 0.0, 50.0, 80.0),
            car(false, false, 0.0, 95.0, 80.0), // full but away: not counted
            CarNow::default(),
        ]);
        assert_eq!(
            fleet,
            FleetNow {
                cars: 7,
                plugged_in: 5,
                charging: 3,
                at_target: 2,
                power_kw: 25.8,
            }
        );
    }

    #[test]
    fn a_car_reads_from_the_api_state_and_its_own_limit_caps_the_target() {
        let settings = EvSettings {
            minimum_charge_limit: Some(90),
            ..EvSettings::default()
        };
        let state = EvState {
            is_plugged_in: Some(true),
            is_charging: Some(false),
            charge_rate_w: Some(7_000), // stale rate of a stopped car
            battery_level: Some(80),
            charge_target_max: Some(80),
            ..EvState::default()
        };
        let car = CarNow::of(&settings, &state);
        assert_eq!(car.power_w, 0.0);
        assert_eq!(car.target_pct, Some(80.0));
        assert!(car.at_target());
    }

    #[test]
    fn the_status_line_is_one_line_in_local_time() {
        let fleet = FleetNow {
            cars: 50,
            plugged_in: 31,
            charging: 12,
            at_target: 9,
            power_kw: 86.44,
        };
        let line = status_line(
            utc(2025, 6, 3, 19, 0),
            Vienna,
            &fleet,
            &[(PriceZone::At, Some(98.43)), (PriceZone::DeLu, None)],
        );
        assert_eq!(
            line,
            "Tue 03 Jun 21:00 CEST  plugged in 31/50 · charging 12 · at target  9 ·   86.4 kW · day-ahead AT 98.4 DE_LU – €/MWh"
        );
        assert!(!line.contains('\n'));
        let nobody = status_line(utc(2025, 6, 3, 9, 0), Vienna, &FleetNow::of(&[]), &[]);
        assert_eq!(
            nobody,
            "Tue 03 Jun 11:00 CEST  plugged in  0/0 · charging  0 · at target  0 ·    0.0 kW"
        );
    }

    fn session(unplug: Option<DateTime<Utc>>, data: SessionData) -> SessionRecord {
        SessionRecord {
            id: Uuid::new_v4(),
            org_id: Uuid::nil(),
            vehicle_id: Uuid::new_v4(),
            plug_in_time: utc(2025, 6, 3, 16, 0),
            unplug_time: unplug,
            data,
        }
    }

    fn closed(
        target: Option<f64>,
        last: f64,
        kwh: f64,
        cost: f64,
        base: f64,
        o: &str,
    ) -> SessionData {
        SessionData {
            target_soc_pct: target,
            final_soc_pct: Some(last),
            // Reached (by the deadline) when the last level is at the target, as the worker says.
            target_reached_at: target.filter(|t| last >= *t).map(|_| utc(2025, 6, 4, 3, 0)),
            charge_deadline: Some(utc(2025, 6, 4, 4, 0)),
            energy_charged_kwh: kwh,
            actual_cost_eur: cost,
            baseline_cost_eur: base,
            session_outcome: Some(o.to_owned()),
            ..SessionData::default()
        }
    }

    #[test]
    fn the_night_adds_up_the_sessions_closed_within_it() {
        let (from, to) = (utc(2025, 6, 3, 7, 0), utc(2025, 6, 4, 7, 0));
        let sessions = [
            session(
                Some(utc(2025, 6, 4, 5, 0)),
                closed(Some(80.0), 80.0, 30.0, 3.0, 4.0, "completed"),
            ),
            session(
                Some(utc(2025, 6, 4, 5, 30)),
                closed(Some(90.0), 90.2, 20.0, 2.0, 3.0, "completed"),
            ),
            session(
                Some(utc(2025, 6, 4, 6, 0)),
                closed(Some(80.0), 60.0, 10.0, 1.5, 2.0, "target_missed"),
            ),
            session(
                Some(utc(2025, 6, 4, 6, 15)),
                closed(None, 50.0, 0.0, 0.0, 0.0, "completed"),
            ),
            // Still plugged in, and closed after the window: not counted.
            session(None, closed(Some(80.0), 50.0, 5.0, 1.0, 1.0, "completed")),
            session(
                Some(to),
                closed(Some(80.0), 80.0, 5.0, 1.0, 1.0, "completed"),
            ),
        ];
        let night = NightSummary::of(&sessions, from, to);
        assert_eq!(night.sessions, 4);
        assert_eq!((night.targets_met, night.with_target), (2, 3));
        assert!((night.energy_kwh - 60.0).abs() < 1e-9);
        assert!((night.cost_eur - 6.5).abs() < 1e-9);
        assert!((night.saved_eur() - 2.5).abs() < 1e-9);
        assert!((night.saved_pct().unwrap() - 100.0 * 2.5 / 9.0).abs() < 1e-9);
        assert_eq!(night.outcomes["completed"], 3);
        assert_eq!(night.outcomes["target_missed"], 1);

        let lines = NightSummary {
            peak: Some((utc(2025, 6, 3, 23, 15), 123.44)),
            ..night
        }
        .lines(from, to, Vienna);
        assert_eq!(
            lines,
            [
                "Night Tue 03 Jun 09:00 CEST – Wed 04 Jun 09:00 CEST: 4 sessions closed · targets met 2/3 (67 %) · 60.0 kWh · cost €6.50 · saved €2.50 (28 %) vs charging at once · fleet peak 123.4 kW at 01:15",
                "  outcomes: completed 3, target_missed 1",
            ]
        );
        assert_eq!(
            NightSummary::default().lines(from, to, Vienna),
            ["Night Tue 03 Jun 09:00 CEST – Wed 04 Jun 09:00 CEST: 0 sessions closed"]
        );
    }

    #[test]
    fn money_and_shares_carry_their_sign_without_a_negative_zero() {
        assert_eq!(euros(1.5), "€1.50");
        assert_eq!(euros(-0.26), "-€0.26");
        assert_eq!(euros(-0.001), "€0.00");
        assert_eq!(whole(-0.2), "0");
        assert_eq!(whole(-2.6), "-3");
        assert_eq!(whole(66.4), "66");
    }

    fn reading(car: Uuid, at: DateTime<Utc>, kw: f64) -> ReadingRecord {
        ReadingRecord {
            vehicle_id: car,
            at,
            is_charging: Some(kw > 0.0),
            power_w: Some(kw * 1000.0),
            ..ReadingRecord::default()
        }
    }

    #[test]
    fn the_fleet_peak_adds_each_cars_latest_reading() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (from, to) = (utc(2025, 6, 3, 7, 0), utc(2025, 6, 4, 7, 0));
        let readings = [
            // Charging since before the window.
            reading(a, utc(2025, 6, 3, 6, 50), 11.0),
            reading(b, utc(2025, 6, 3, 20, 0), 7.0),
            reading(a, utc(2025, 6, 3, 20, 5), 11.0), // still 11 kW: no double count
            reading(c, utc(2025, 6, 3, 21, 0), 3.6),  // 21.6 kW from here
            reading(a, utc(2025, 6, 3, 21, 30), 0.0),
            // Two cars at one instant: counted together.
            reading(a, utc(2025, 6, 4, 1, 0), 11.0),
            reading(b, utc(2025, 6, 4, 1, 0), 0.0),
            // After the window.
            reading(b, to, 50.0),
        ];
        let (at, kw) = fleet_peak(&readings, from, to).unwrap();
        assert_eq!(at, utc(2025, 6, 3, 21, 0));
        assert!((kw - 21.6).abs() < 1e-9);
        // A window after all changes: the standing total at its start.
        let later = utc(2025, 6, 4, 2, 0);
        let (at, kw) = fleet_peak(&readings[..7], later, to).unwrap();
        assert_eq!(at, later);
        assert!((kw - 14.6).abs() < 1e-9);
        assert_eq!(fleet_peak(&[], from, to), None);
    }

    #[test]
    fn the_quarter_hour_peak_spreads_each_readings_energy_since_the_previous_one() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let energy = |car, at, kwh| ReadingRecord {
            vehicle_id: car,
            at,
            energy_kwh: Some(kwh),
            ..ReadingRecord::default()
        };
        let readings = [
            energy(a, utc(2025, 6, 3, 23, 50), 0.0),
            // 5.5 kWh over 00:00–00:30 at 11 kW: 2.75 kWh in each quarter-hour.
            energy(a, utc(2025, 6, 4, 0, 0), 0.0),
            energy(a, utc(2025, 6, 4, 0, 30), 5.5),
            // Another car: 1 kWh from 00:15 to 00:20.
            energy(b, utc(2025, 6, 4, 0, 15), 0.0),
            energy(b, utc(2025, 6, 4, 0, 20), 1.0),
        ];
        let (at, kw) =
            quarter_hour_peak(&readings, utc(2025, 6, 3, 9, 0), utc(2025, 6, 4, 9, 0)).unwrap();
        assert_eq!(at, utc(2025, 6, 4, 0, 15));
        assert!((kw - (2.75 + 1.0) * 4.0).abs() < 1e-9, "{kw}");
        assert_eq!(
            quarter_hour_peak(&readings, utc(2025, 6, 4, 1, 0), utc(2025, 6, 4, 9, 0)),
            None
        );
    }

    #[test]
    fn reports_are_due_on_the_hour_and_at_nine_local_across_dst() {
        assert_eq!(next_hour(utc(2025, 6, 3, 19, 0)), utc(2025, 6, 3, 20, 0));
        assert_eq!(
            next_hour(utc(2025, 6, 3, 19, 59) + Duration::seconds(59)),
            utc(2025, 6, 3, 20, 0)
        );
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        // Summer: 09:00 CEST is 07:00 UTC; at 09:00 sharp the next one is tomorrow's.
        assert_eq!(
            next_local(utc(2025, 6, 3, 19, 0), Vienna, nine),
            utc(2025, 6, 4, 7, 0)
        );
        assert_eq!(
            next_local(utc(2025, 6, 4, 7, 0), Vienna, nine),
            utc(2025, 6, 5, 7, 0)
        );
        // The night the clocks go back (26 Oct 2025): 09:00 CET is 08:00 UTC.
        assert_eq!(
            next_local(utc(2025, 10, 25, 20, 0), Vienna, nine),
            utc(2025, 10, 26, 8, 0)
        );
    }
}
