//! SetChargingProfile calls pushed while the swarm is connected, the way the worker will push
//! them: rows of `ocpp_commands` queued through the store, which the server's dispatcher takes
//! and sends. What each call took is read back from its row (`created_at`, `sent_at`,
//! `answered_at`), so the numbers are the server's own.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep};
use uuid::Uuid;
use voltplan_ocpp::profile::{ProfileRequest, Step, Unit, set_charging_profile};
use voltplan_store::ocpp::{CommandStatus, OcppCommand};
use voltplan_store::{OrgScope, Store};

use crate::stats::Percentiles;

/// A call not sent within this long expires (the charger would be offline).
const EXPIRY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A three-step schedule (full power, then less, then a pause) as a TxDefaultProfile in
/// amperes, like a plan for a car plugged in tonight.
fn payload(profile_id: i64) -> anyhow::Result<String> {
    let now = Utc::now();
    let hour = chrono::TimeDelta::hours(1);
    let steps = [
        Step {
            from: now,
            power_w: 11_000.0,
        },
        Step {
            from: now + hour,
            power_w: 3_500.0,
        },
        Step {
            from: now + hour * 2,
            power_w: 0.0,
        },
    ];
    let profile = set_charging_profile(&ProfileRequest {
        profile_id,
        transaction_id: None,
        start: now,
        steps: &steps,
        valid_to: now + hour * 8,
        unit: Unit::A { phases: 3 },
        max_periods: 24,
    });
    Ok(serde_json::to_string(&profile)?)
}

/// Queues `rate` calls a second to random chargers until `until`; their ids.
pub async fn push(
    store: Arc<dyn Store>,
    org: OrgScope,
    wallboxes: Arc<Vec<Uuid>>,
    rate: f64,
    until: Instant,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    if rate <= 0.0 || wallboxes.is_empty() {
        return Ok(ids);
    }
    let mut ticks = interval(Duration::from_secs_f64(1.0 / rate));
    // A slow insert is caught up on, so the rate holds over the window.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut profile_id = 0;
    loop {
        ticks.tick().await;
        if Instant::now() >= until {
            return Ok(ids);
        }
        profile_id += 1;
        let wallbox_id = wallboxes[rand::thread_rng().gen_range(0..wallboxes.len())];
        let created_at = Utc::now();
        let command = OcppCommand {
            id: Uuid::new_v4().to_string(),
            org_id: org.id(),
            wallbox_id,
            action: "SetChargingProfile".to_owned(),
            payload: payload(profile_id)?,
            created_at,
            expires_at: created_at + EXPIRY,
            status: CommandStatus::Queued,
            sent_by: None,
            sent_at: None,
            answered_at: None,
            response: None,
        };
        store.queue_ocpp_command(&command).await?;
        ids.push(command.id);
    }
}

/// What became of the pushed calls.
#[derive(Debug, Default)]
pub struct Outcome {
    pub queued: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub failed: usize,
    pub expired: usize,
    /// Still queued or sent when the benchmark stopped waiting.
    pub unresolved: usize,
    /// `sent_at - created_at`, ms.
    pub queue_to_sent: Percentiles,
    /// `answered_at - sent_at`, ms.
    pub round_trip: Percentiles,
}

impl Outcome {
    /// Calls that did not end accepted.
    pub fn dropped(&self) -> usize {
        self.queued - self.accepted
    }
}

/// Waits until every call is answered, failed or expired (until `deadline` at most) and reads
/// the rows.
pub async fn settle(
    store: &dyn Store,
    org: OrgScope,
    ids: &[String],
    deadline: Instant,
) -> anyhow::Result<Outcome> {
    let mut open: HashSet<&String> = ids.iter().collect();
    let mut done: Vec<OcppCommand> = Vec::with_capacity(ids.len());
    loop {
        let mut still_open = HashSet::new();
        for id in open {
            match store.get_ocpp_command(org, id).await? {
                Some(row) if !matches!(row.status, CommandStatus::Queued | CommandStatus::Sent) => {
                    done.push(row)
                }
                _ => {
                    still_open.insert(id);
                }
            }
        }
        open = still_open;
        if open.is_empty() || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_millis(500)).await;
    }
    let mut outcome = Outcome {
        queued: ids.len(),
        unresolved: open.len(),
        ..Outcome::default()
    };
    let mut queue_to_sent = Vec::new();
    let mut round_trip = Vec::new();
    for row in &done {
        match row.status {
            CommandStatus::Accepted => outcome.accepted += 1,
            CommandStatus::Rejected => outcome.rejected += 1,
            CommandStatus::Failed => outcome.failed += 1,
            CommandStatus::Expired => outcome.expired += 1,
            CommandStatus::Queued | CommandStatus::Sent => {}
        }
        if let Some(sent) = row.sent_at {
            queue_to_sent.push(millis(sent - row.created_at));
            if let Some(answered) = row.answered_at {
                round_trip.push(millis(answered - sent));
            }
        }
    }
    outcome.queue_to_sent = Percentiles::of(queue_to_sent);
    outcome.round_trip = Percentiles::of(round_trip);
    Ok(outcome)
}

fn millis(delta: chrono::TimeDelta) -> f64 {
    delta.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}
