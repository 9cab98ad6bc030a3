//! Sessions are what happened: two simulated days and nights of drivers who plug in at home, leave
//! early, change their target or deadline, plug in too late to make it, plug in away from home,
//! boost, and ask for 100 %. Every session the worker writes is checked against what the sandbox knows happened
//! (the instants of plug-in and unplug, the levels, the energy drawn, when the target was
//! reached), on every backend. No sleeps: the manual clock moves one minute at a time.

mod common;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use common::*;
use uuid::Uuid;
use voltplan_core::session::target_reached;
use voltplan_store::fleet::SessionRecord;
use voltplan_worker::recompute::recompute_sessions;

/// What a driver does at an instant.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Plug in at home; the session must end as expected.
    PlugIn(Expect),
    /// Plug in at a public charger 5 km away.
    PlugInAway(Expect),
    /// Unplug and drive a round trip of `km`.
    Unplug(f64),
    /// The partner sets `minimum_charge_limit`.
    Target(i32),
    /// The partner sets `charge_deadline_at` (local time, Berlin).
    Deadline(u32),
    Boost,
    /// Back home without charging.
    ComeHome,
}

/// What the session of one stay must say, besides what the simulation measures.
#[derive(Debug, Clone, Copy)]
struct Expect {
    outcome: &'static str,
    reason: Option<&'static str>,
    target: f64,
    /// The deadline in force, as hours after `evening()`.
    deadline_h: i64,
}

/// One stay at a charger, as the sandbox saw it.
struct Stay {
    car: usize,
    plug_in: DateTime<Utc>,
    level_in: f64,
    meter_in: f64,
    unplug: Option<DateTime<Utc>>,
    /// The car's level just before it was unplugged, and whether it was charging then.
    level_out: f64,
    charging_at_unplug: bool,
    meter_out: f64,
    /// The first minute the car showed the expected target while plugged in.
    reached: Option<DateTime<Utc>>,
    /// Energy priced minute by minute at the published price.
    cost: f64,
    expect: Expect,
}

fn h(hours: f64) -> DateTime<Utc> {
    evening() + Duration::minutes((hours * 60.0).round() as i64)
}

fn expect(
    outcome: &'static str,
    reason: Option<&'static str>,
    target: f64,
    deadline_h: i64,
) -> Expect {
    Expect {
        outcome,
        reason,
        target,
        deadline_h,
    }
}

/// The drivers' two days from Tuesday 12 November 2024, 18:00 Berlin (`evening()`, hour 0). The
/// default deadline is 06:00 Berlin (hour 12 the first morning, hour 36 the second), target 80 %.
/// Each plug-in names what its session must say.
fn script() -> Vec<(DateTime<Utc>, usize, Act)> {
    use Act::*;
    vec![
        // Anna (car 0): the regular commuter, both nights completed.
        (h(0.0), 0, PlugIn(expect("completed", None, 80.0, 12))),
        (h(13.5), 0, Unplug(50.0)),
        (h(24.5), 0, PlugIn(expect("completed", None, 80.0, 36))),
        (h(37.5), 0, Unplug(50.0)),
        // Ben (car 1): leaves after two hours the first evening; a full night the second; plugs
        // in again the last morning (still open when the test ends).
        (h(1.0), 1, PlugIn(expect("unplugged_early", None, 80.0, 12))),
        (h(3.0), 1, Unplug(10.0)),
        (h(24.0), 1, PlugIn(expect("completed", None, 80.0, 36))),
        (h(37.0), 1, Unplug(30.0)),
        (h(37.8), 1, PlugIn(expect("open", None, 80.0, 60))),
        // Clara (car 2): the partner raises her target to 100 % half an hour before the first
        // deadline (too late to make it); lowers it again at noon; the second evening moves the
        // deadline to 05:00.
        (
            h(0.0),
            2,
            PlugIn(expect("target_missed", Some("target_changed"), 100.0, 12)),
        ),
        (h(11.5), 2, Target(100)),
        (h(13.0), 2, Unplug(40.0)),
        (h(18.0), 2, Target(80)),
        (h(24.0), 2, PlugIn(expect("completed", None, 80.0, 35))),
        (h(28.0), 2, Deadline(5)),
        (h(37.0), 2, Unplug(40.0)),
        // Dan (car 3): plugs in at 04:00 nearly empty (cannot reach 80 % by 06:00); the second
        // evening he charges at a public charger.
        (
            h(10.0),
            3,
            PlugIn(expect(
                "target_missed",
                Some("infeasible_at_plug_in"),
                80.0,
                12,
            )),
        ),
        (h(13.0), 3, Unplug(20.0)),
        (
            h(24.0),
            3,
            PlugInAway(expect("not_at_home", None, 80.0, 36)),
        ),
        (h(37.0), 3, Unplug(5.0)),
        (h(37.2), 3, ComeHome),
        // Eva (car 4): boosts the first evening.
        (h(0.0), 4, PlugIn(expect("boosted", None, 80.0, 12))),
        (h(0.5), 4, Boost),
        (h(13.0), 4, Unplug(60.0)),
        // Fay (car 5) asks for 100 %. Her car draws less power above 80 % (the sandbox's taper),
        // which the planner does not model, so the night's plan ends short of full: the session
        // says so (the test checks below that the sandbox agrees).
        (h(-0.1), 5, Target(100)),
        (
            h(0.0),
            5,
            PlugIn(expect(
                "target_missed",
                Some("slower_than_planned"),
                100.0,
                12,
            )),
        ),
        (h(13.0), 5, Unplug(30.0)),
    ]
}

const LEVELS: [f64; 6] = [30.0, 25.0, 30.0, 12.0, 40.0, 50.0];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_says_what_happened_over_two_days_on_every_backend() {
    for (name, db) in Db::all().await {
        run_two_days(name, db).await;
    }
}

async fn run_two_days(backend: &str, db: Db) {
    let start = evening() - Duration::minutes(10);
    let env = Env::new(db, start).await;
    let worker = env.worker("w1");
    let mut cars = Vec::new();
    for level in LEVELS {
        cars.push(env.car(level).await);
    }
    drain(&worker).await;

    let mut events = script();
    events.sort_by_key(|(at, car, _)| (*at, *car));
    let mut stays: Vec<Stay> = Vec::new();
    let mut open: Vec<Option<usize>> = vec![None; cars.len()];
    let mut meters: Vec<f64> = cars
        .iter()
        .map(|c| env.sandbox.snapshot(*c).expect("snapshot").grid_energy_kwh)
        .collect();
    let end = h(38.5);
    let mut now = start;
    let mut next_event = 0;
    while now < end {
        now += minute();
        env.clock.set(now);
        while next_event < events.len() && events[next_event].0 <= now {
            let (at, k, act) = events[next_event];
            next_event += 1;
            let car = cars[k];
            let snap = env.sandbox.snapshot(car).expect("snapshot");
            match act {
                Act::PlugIn(expect) | Act::PlugInAway(expect) => {
                    if matches!(act, Act::PlugInAway(_)) {
                        env.sandbox
                            .set_location(car, HOME.0 + 0.045, HOME.1)
                            .expect("away");
                    }
                    env.sandbox.plug_in(car).expect("plug in");
                    stays.push(Stay {
                        car: k,
                        plug_in: now,
                        level_in: snap.battery_level_percent,
                        meter_in: snap.grid_energy_kwh,
                        unplug: None,
                        level_out: 0.0,
                        charging_at_unplug: false,
                        meter_out: 0.0,
                        reached: None,
                        cost: 0.0,
                        expect,
                    });
                    open[k] = Some(stays.len() - 1);
                }
                Act::Unplug(km) => {
                    let stay = &mut stays[open[k].take().expect("plugged in")];
                    stay.unplug = Some(now);
                    stay.level_out = snap.battery_level_percent;
                    stay.charging_at_unplug = snap.is_charging;
                    stay.meter_out = snap.grid_energy_kwh;
                    env.sandbox.unplug(car).expect("unplug");
                    // A round trip: out and back home.
                    env.sandbox.drive(car, km / 2.0).expect("drive");
                    env.sandbox.drive_home(car).expect("drive home");
                }
                Act::Target(pct) => {
                    env.change_settings(car, move |s| s.minimum_charge_limit = Some(pct))
                        .await
                }
                Act::Deadline(hour) => {
                    env.change_settings(car, move |s| {
                        s.charge_deadline_at = NaiveTime::from_hms_opt(hour, 0, 0)
                    })
                    .await
                }
                Act::Boost => {
                    env.change_settings(car, move |s| s.boost_requested_at = Some(at))
                        .await
                }
                Act::ComeHome => {
                    env.sandbox.set_location(car, HOME.0, HOME.1).expect("home");
                }
            }
        }
        drain(&worker).await;
        for (k, car) in cars.iter().enumerate() {
            let snap = env.sandbox.snapshot(*car).expect("snapshot");
            let drawn = snap.grid_energy_kwh - meters[k];
            meters[k] = snap.grid_energy_kwh;
            if let Some(i) = open[k] {
                let stay = &mut stays[i];
                stay.cost += drawn * price_at(now - Duration::seconds(30)) / 1000.0;
                if stay.reached.is_none()
                    && target_reached(snap.battery_level_percent, stay.expect.target, 100.0)
                {
                    stay.reached = Some(now);
                }
            }
        }
    }

    for stay in &stays {
        let car = cars[stay.car];
        let sessions = sessions_of(&env, car).await;
        let ctx = format!("{backend}: car {} plugged in at {}", stay.car, stay.plug_in);
        // A session starts with the first reading that shows the car plugged in (cycles are at
        // most 5 minutes apart while unplugged).
        let session = sessions
            .iter()
            .find(|s| {
                s.plug_in_time >= stay.plug_in
                    && s.plug_in_time <= stay.plug_in + Duration::minutes(6)
            })
            .unwrap_or_else(|| panic!("{ctx}: no session; have {sessions:#?}"));
        let d = &session.data;
        assert_eq!(
            d.session_outcome.as_deref(),
            Some(stay.expect.outcome),
            "{ctx}: outcome; {d:#?}"
        );
        assert_eq!(
            d.session_outcome_reason.as_deref(),
            stay.expect.reason,
            "{ctx}: reason"
        );
        assert_eq!(d.target_soc_pct, Some(stay.expect.target), "{ctx}: target");
        assert_eq!(
            d.charge_deadline,
            Some(evening() + Duration::hours(stay.expect.deadline_h)),
            "{ctx}: the deadline in force during the stay"
        );
        let initial = d.initial_soc_pct.expect("initial level");
        assert!(
            (initial - stay.level_in).abs() < 2.0,
            "{ctx}: initial {initial} vs {}",
            stay.level_in
        );
        match stay.unplug {
            None => {
                assert_eq!(session.unplug_time, None, "{ctx}");
                continue;
            }
            Some(unplug) => {
                let seen = session.unplug_time.expect("closed");
                assert!(
                    seen >= unplug && seen <= unplug + Duration::minutes(6),
                    "{ctx}: unplug seen at {seen}, happened at {unplug}"
                );
            }
        }
        // The level at unplug, not after the drive that followed.
        let last = d.final_soc_pct.expect("final level");
        let tolerance = if stay.charging_at_unplug { 2.0 } else { 1e-6 };
        assert!(
            (last - stay.level_out).abs() <= tolerance,
            "{ctx}: final {last} vs {} at unplug",
            stay.level_out
        );
        // The session's plans are the ones for its own deadline, not the next day's.
        if stay.expect.outcome == "completed" {
            let deadline = evening() + Duration::hours(stay.expect.deadline_h);
            assert!(
                d.desired_charging_end_time.is_some_and(|t| t <= deadline),
                "{ctx}: desired end {:?}, the deadline {deadline}",
                d.desired_charging_end_time
            );
        }
        // Charging stops at or above the target as the car reports it.
        if stay.expect.outcome == "completed" {
            assert!(
                last >= stay.expect.target,
                "{ctx}: final {last} below target"
            );
        }
        if stay.expect.outcome == "target_missed" {
            let deadline = evening() + Duration::hours(stay.expect.deadline_h);
            assert!(
                stay.reached.is_none_or(|t| t > deadline),
                "{ctx}: the sandbox saw the target reached at {:?}",
                stay.reached
            );
        }
        match (stay.reached, d.target_reached_at) {
            (Some(truth), Some(seen)) => assert!(
                seen >= truth && seen <= truth + Duration::minutes(6),
                "{ctx}: reached at {truth}, recorded {seen}"
            ),
            (truth, seen) => assert_eq!(
                truth.is_some(),
                seen.is_some(),
                "{ctx}: target reached {truth:?}, recorded {seen:?}"
            ),
        }
        let energy = stay.meter_out - stay.meter_in;
        // Energy drawn between the unplug and the reading that saw it is none: the car is unplugged.
        assert!(
            (d.energy_charged_kwh - energy).abs() < 1e-6,
            "{ctx}: energy {} vs {energy}",
            d.energy_charged_kwh
        );
        assert!(
            (d.actual_cost_eur - stay.cost).abs() <= 0.02 * stay.cost.abs() + 0.01,
            "{ctx}: cost {} vs {}",
            d.actual_cost_eur,
            stay.cost
        );
        let savings = d.actual_savings_eur.expect("savings");
        assert!(
            (savings - (d.baseline_cost_eur - d.actual_cost_eur)).abs() < 1e-9,
            "{ctx}: savings {savings}"
        );
    }
    assert_eq!(stays.len(), 11);
    recomputing_old_records_gives_the_live_verdicts(backend, &env, &cars[..2]).await;
    recomputing_old_records_gives_the_live_verdicts(backend, &env, &cars[3..4]).await;
    env.db.drop_database().await;
}

/// Sessions written by an older version (wrong level, the next day's deadline, a wrong outcome,
/// no reason) come back as the live worker wrote them after `recompute_sessions`, for cars whose
/// settings did not change (the recomputation can only know the current settings).
async fn recomputing_old_records_gives_the_live_verdicts(backend: &str, env: &Env, cars: &[Uuid]) {
    let mut live = Vec::new();
    for car in cars {
        for session in sessions_of(env, *car).await {
            if session.unplug_time.is_none() {
                continue;
            }
            let mut old = session.clone();
            old.data.final_soc_pct = Some(50.0);
            old.data.charge_deadline = old.data.charge_deadline.map(|d| d + Duration::days(1));
            old.data.session_outcome = Some("unplugged_early".into());
            old.data.session_outcome_reason = None;
            old.data.target_reached_at = None;
            env.store().upsert_session(&old).await.expect("old record");
            live.push(session);
        }
    }
    let dry = recompute_sessions(env.store().as_ref(), env.org, true)
        .await
        .expect("dry run");
    assert!(dry.sessions_changed >= live.len(), "{backend}: {dry:?}");
    assert!(!dry.written);
    let report = recompute_sessions(env.store().as_ref(), env.org, false)
        .await
        .expect("recompute");
    assert_eq!(report.sessions_changed, dry.sessions_changed, "{backend}");
    for session in live {
        let ctx = format!("{backend}: session at {}", session.plug_in_time);
        let car_sessions = sessions_of(env, session.vehicle_id).await;
        let fresh = car_sessions
            .iter()
            .find(|s| s.id == session.id)
            .expect("still there");
        let (a, b) = (&fresh.data, &session.data);
        assert_eq!(a.session_outcome, b.session_outcome, "{ctx}");
        assert_eq!(a.session_outcome_reason, b.session_outcome_reason, "{ctx}");
        assert_eq!(a.charge_deadline, b.charge_deadline, "{ctx}");
        assert_eq!(a.target_soc_pct, b.target_soc_pct, "{ctx}");
        // `/data` rows are written whenever energy flows, so they hold the same readings.
        assert_eq!(a.target_reached_at, b.target_reached_at, "{ctx}");
        let (fa, fb) = (
            a.final_soc_pct.expect("level"),
            b.final_soc_pct.expect("level"),
        );
        assert!((fa - fb).abs() < 1e-9, "{ctx}: final {fa} vs {fb}");
        assert_eq!(a.energy_charged_kwh, b.energy_charged_kwh, "{ctx}");
    }
}

async fn sessions_of(env: &Env, car: Uuid) -> Vec<SessionRecord> {
    let (_, sessions) = env
        .store()
        .list_sessions(
            env.org,
            Some(car),
            evening() - Duration::days(1),
            evening() + Duration::days(3),
            50,
            0,
        )
        .await
        .expect("sessions");
    sessions
}
