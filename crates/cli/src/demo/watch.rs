//! The demo's running commentary on stdout: a status line every simulated hour and a summary of
//! the night every simulated morning, read from the store (what the API serves partners), never
//! from the simulator.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;
use voltplan_core::{Clock, PriceZone};
use voltplan_store::fleet::{ReadingRecord, SessionRecord};
use voltplan_store::{OrgScope, Store, StoreError, read_zone_prices};

use super::TIME_ZONE;
use super::report::{
    CarNow, FleetNow, NightSummary, fleet_peak, next_hour, next_local, quarter_hour_peak,
    status_line,
};

/// The morning summary is due at this local time, after the simulated drivers have left.
pub const MORNING: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// Sessions that closed in a night may have opened this long before it.
const LONGEST_SESSION: Duration = Duration::days(7);
/// A car writes a `/data` row at least every 15 min, so this much before a night holds every car's
/// state at its start.
const READINGS_BEFORE: Duration = Duration::hours(1);
const SESSIONS_PAGE: i64 = 500;

pub struct Watch {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub speed: f64,
    pub org: OrgScope,
    pub vehicles: Vec<Uuid>,
    /// The wallbox households' (user, wallbox).
    pub wallboxes: Vec<(Uuid, Uuid)>,
    /// When the demo started (simulated): the first night starts here.
    pub started: DateTime<Utc>,
    /// The feeder's grid group and its limit, kW.
    pub feeder: Option<(Uuid, f64)>,
}

impl Watch {
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        // The first line once the worker has seen the fleet (its first batch takes about a second).
        let mut next_status =
            self.started + Duration::seconds((3.0 * self.speed).max(120.0) as i64);
        let mut night_from = self.started;
        let mut next_summary = next_local(self.started, TIME_ZONE, MORNING);
        // The highest draw the feeder's joint plans saw the cars would have planned alone.
        let mut alone_peak: Option<(DateTime<Utc>, f64)> = None;
        loop {
            let now = self.clock.now();
            if now >= next_status {
                if let Some((feeder, _)) = self.feeder {
                    match self.alone_peak(feeder, next_summary).await {
                        Ok(Some((at, kw))) if alone_peak.is_none_or(|(_, max)| kw > max) => {
                            alone_peak = Some((at, kw));
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "the feeder's joint plan could not be read")
                        }
                    }
                }
                match self.status(now).await {
                    Ok(line) => println!("{line}"),
                    Err(e) => tracing::warn!(error = %e, "the status line could not be read"),
                }
                if !self.wallboxes.is_empty() {
                    match super::wallboxes::summary(self.store.as_ref(), self.org, &self.wallboxes)
                        .await
                    {
                        Ok(line) => println!("{line}"),
                        Err(e) => {
                            tracing::warn!(error = %e, "the wallboxes' line could not be read")
                        }
                    }
                }
                next_status = next_hour(now);
            }
            if now >= next_summary {
                match self.night(night_from, next_summary).await {
                    Ok((lines, quarter_peak)) => {
                        lines.iter().for_each(|line| println!("{line}"));
                        if let Some((_, limit_kw)) = self.feeder {
                            println!("{}", feeder_line(limit_kw, quarter_peak, alone_peak.take()));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the night's summary could not be read"),
                }
                night_from = next_summary;
                next_summary = next_local(now, TIME_ZONE, MORNING);
            }
            let due = next_status.min(next_summary);
            tokio::select! {
                _ = tokio::time::sleep(real_wait(due - self.clock.now(), self.speed)) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
        }
    }

    /// The status line at `now`: each car as the API reports it, and each zone's price now.
    async fn status(&self, now: DateTime<Utc>) -> Result<String, StoreError> {
        let mut cars = Vec::with_capacity(self.vehicles.len());
        let mut zones = BTreeSet::new();
        for &id in &self.vehicles {
            match self.store.get_vehicle_in_org(self.org, id).await {
                Ok(vehicle) => {
                    cars.push(CarNow::of(&vehicle.settings, &vehicle.state));
                    zones.insert(vehicle.price_zone);
                }
                // Deleted through the API meanwhile.
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let mut prices: Vec<(PriceZone, Option<f64>)> = Vec::new();
        for zone in zones {
            let slots = read_zone_prices(
                self.store.as_ref(),
                zone,
                Some(self.org),
                now,
                now + Duration::seconds(1),
            )
            .await?;
            let price = slots
                .iter()
                .find(|slot| slot.start <= now && now < slot.end)
                .map(|slot| slot.price_eur_mwh);
            prices.push((zone, price));
        }
        Ok(status_line(now, TIME_ZONE, &FleetNow::of(&cars), &prices))
    }

    /// The highest draw before `until` in the feeder's last joint plan had each car been planned
    /// alone (`alone_kw` of the outermost group), and when.
    async fn alone_peak(
        &self,
        feeder: Uuid,
        until: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, f64)>, StoreError> {
        let group = self.store.get_grid_group(self.org, feeder).await?;
        let Some(plan) = group
            .joint_plan
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        else {
            return Ok(None);
        };
        let slots = plan["groups"][0]["slots"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(slots
            .iter()
            .filter_map(|slot| {
                let start: DateTime<Utc> = slot["start"].as_str()?.parse().ok()?;
                Some((start, slot["alone_kw"].as_f64()?))
            })
            .filter(|(start, _)| *start < until)
            .max_by(|a, b| a.1.total_cmp(&b.1)))
    }

    /// The summary of the sessions closed in `[from, to)`, with the fleet's peak from `/data`.
    /// Also the fleet's highest quarter-hour average power.
    async fn night(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Vec<String>, Option<(DateTime<Utc>, f64)>), StoreError> {
        let mut sessions: Vec<SessionRecord> = Vec::new();
        loop {
            let (_, page) = self
                .store
                .list_sessions(
                    self.org,
                    None,
                    from - LONGEST_SESSION,
                    to,
                    SESSIONS_PAGE,
                    sessions.len() as i64,
                )
                .await?;
            let full = page.len() as i64 == SESSIONS_PAGE;
            sessions.extend(page);
            if !full {
                break;
            }
        }
        let mut readings: Vec<ReadingRecord> = Vec::new();
        for &id in &self.vehicles {
            readings.extend(
                self.store
                    .list_readings(self.org, id, from - READINGS_BEFORE, to)
                    .await?,
            );
        }
        let summary = NightSummary {
            peak: fleet_peak(&readings, from, to),
            ..NightSummary::of(&sessions, from, to)
        };
        Ok((
            summary.lines(from, to, TIME_ZONE),
            quarter_hour_peak(&readings, from, to),
        ))
    }
}

/// `  feeder: limit 150 kW · highest quarter-hour 146.2 kW at 02:15 · planned alone the cars would
/// have drawn 532.6 kW at 02:15`.
fn feeder_line(
    limit_kw: f64,
    quarter_peak: Option<(DateTime<Utc>, f64)>,
    alone_peak: Option<(DateTime<Utc>, f64)>,
) -> String {
    let at = |t: DateTime<Utc>| t.with_timezone(&TIME_ZONE).format("%H:%M").to_string();
    let mut line = format!("  feeder: limit {limit_kw:.0} kW");
    if let Some((t, kw)) = quarter_peak {
        line.push_str(&format!(" · highest quarter-hour {kw:.1} kW at {}", at(t)));
    }
    if let Some((t, kw)) = alone_peak {
        line.push_str(&format!(
            " · planned alone the cars would have drawn {kw:.1} kW at {}",
            at(t)
        ));
    }
    line
}

/// Real time until a simulated duration has passed, at most a second (so a stop is noticed and a
/// clock that jumps is followed).
fn real_wait(simulated: Duration, speed: f64) -> std::time::Duration {
    let seconds = simulated.num_milliseconds().max(0) as f64 / 1000.0 / speed;
    std::time::Duration::from_secs_f64(seconds.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn waits_are_in_real_time_and_short() {
        use super::*;
        assert_eq!(
            real_wait(Duration::minutes(1), 60.0),
            std::time::Duration::from_secs(1)
        );
        assert_eq!(
            real_wait(Duration::seconds(30), 60.0),
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            real_wait(Duration::hours(1), 60.0),
            std::time::Duration::from_secs(1)
        );
        assert_eq!(
            real_wait(Duration::seconds(-5), 60.0),
            std::time::Duration::ZERO
        );
    }
}
