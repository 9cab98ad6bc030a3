//! A wallbox's sessions: one per OCPP transaction, its energy and cost from the charger's
//! register, and the `/data` rows.

use chrono::{DateTime, Utc};
use uuid::Uuid;
use voltplan_store::fleet::{ReadingRecord, SessionData, SessionRecord};
use voltplan_store::wallbox_fleet::ClaimedWallbox;

use super::types::{
    CustomerCosting, WallboxObserved, WallboxReading, WallboxRuntime, WallboxSession, Wallboxes,
};
use crate::device::{Step, Work};

/// Opens a session when a transaction starts, closes it (into the cycle's writes) when the
/// transaction stops; `true` when a session opened in this cycle.
pub(super) fn track_session(
    claimed: &ClaimedWallbox,
    work: &mut Work<Wallboxes<'_>>,
    reading: &WallboxReading,
    observed: &WallboxObserved,
    step: Step<'_>,
) -> bool {
    let (org_id, wallbox_id) = (claimed.wallbox.org_id, claimed.wallbox.id);
    let following = work.runtime.session.as_ref().map(|s| s.transaction_id);
    let open_id = observed.open.as_ref().map(|t| t.id);
    if following.is_some()
        && following != open_id
        && let Some(mut session) = work.runtime.session.take()
    {
        let stopped = reading
            .transactions
            .iter()
            .find(|t| t.id == session.transaction_id);
        let end = stopped.and_then(|t| t.stopped_at).unwrap_or(step.now);
        let last = stopped.and_then(|t| Some((t.stopped_at?, t.meter_stop_wh? as f64)));
        cost_up_to(&mut session, last.into_iter(), step);
        let max_kw = f64::from(claimed.wallbox.settings.charge_power_max_w) / 1000.0;
        let record = session_record(org_id, wallbox_id, &session, Some(end), max_kw, step);
        work.writes.sessions.push(record);
    }
    if let Some(open) = &observed.open
        && work.runtime.session.is_none()
    {
        work.runtime.session = Some(WallboxSession {
            id: Uuid::now_v7(),
            transaction_id: open.id,
            plug_in: open.started_at,
            meter_start_wh: open.meter_start_wh as f64,
            costed_at: open.started_at,
            costed_meter_wh: open.meter_start_wh as f64,
            cost_eur: 0.0,
            peak_power_kw: None,
            need_kwh: observed.car_need_kwh,
            deadline: None,
            expected_savings_eur: None,
            customer: None,
            customer_expected_savings: None,
        });
        work.runtime.sent_decision = None;
        work.runtime.attempt = 0;
        return true;
    }
    false
}

/// Prices the energy between register readings newer than the last costed one: the energy
/// between two readings is spread over the time between them, slot by slot
/// ([`crate::price_book::PriceBook::cost_of`]), so the cost follows the charger's own register; likewise on the
/// customer's price when a contract prices the wallbox.
pub(super) fn cost_up_to(
    session: &mut WallboxSession,
    readings: impl Iterator<Item = (DateTime<Utc>, f64)>,
    step: Step<'_>,
) {
    for (at, wh) in readings {
        if at <= session.costed_at || wh < session.costed_meter_wh {
            continue;
        }
        let kwh = (wh - session.costed_meter_wh) / 1000.0;
        session.cost_eur += step.book.cost_of(kwh, session.costed_at, at);
        if let Some(c) = step.pricing.customer() {
            let costing = session.customer.get_or_insert_with(|| CustomerCosting {
                contract_id: c.contract_id,
                currency: c.currency.clone(),
                cost: 0.0,
            });
            costing.cost += c.book.cost_of(kwh, session.costed_at, at);
        }
        session.costed_at = at;
        session.costed_meter_wh = wh;
    }
}

pub(super) fn session_record(
    org_id: Uuid,
    wallbox_id: Uuid,
    session: &WallboxSession,
    unplug: Option<DateTime<Utc>>,
    max_power_kw: f64,
    step: Step<'_>,
) -> SessionRecord {
    let energy = ((session.costed_meter_wh - session.meter_start_wh) / 1000.0).max(0.0);
    // What the same energy would have cost charged at once from the plug-in.
    let baseline = step
        .book
        .cost_charging_at_once(energy, max_power_kw, session.plug_in);
    // The customer's baseline only while the contract that priced the session still applies.
    let customer = session.customer.as_ref();
    let customer_baseline = customer.and_then(|costing| {
        step.pricing
            .customer()
            .filter(|c| c.contract_id == costing.contract_id)
            .map(|c| {
                c.book
                    .cost_charging_at_once(energy, max_power_kw, session.plug_in)
            })
    });
    SessionRecord {
        id: session.id,
        org_id,
        vehicle_id: wallbox_id,
        plug_in_time: session.plug_in,
        unplug_time: unplug,
        data: SessionData {
            charge_deadline: session.deadline,
            energy_charged_kwh: energy,
            peak_charge_power_kw: session.peak_power_kw,
            actual_cost_eur: session.cost_eur,
            baseline_cost_eur: baseline,
            expected_savings_eur: session.expected_savings_eur,
            energy_contract_id: customer.map(|c| c.contract_id),
            customer_currency: customer.map(|c| c.currency.clone()),
            customer_cost: customer.map(|c| c.cost),
            customer_baseline_cost: customer_baseline,
            customer_savings: customer_baseline.zip(customer).map(|(b, c)| b - c.cost),
            customer_expected_savings: session.customer_expected_savings,
            ..SessionData::default()
        },
    }
}

/// This cycle's `/data` row, when the meter moved or the plug changed.
pub(super) fn report(
    wallbox: &voltplan_store::WallboxRecord,
    rt: &mut WallboxRuntime,
    observed: &WallboxObserved,
    step: Step<'_>,
) -> Option<ReadingRecord> {
    let meter = wallbox.charger.meter_wh;
    let moved = meter.is_some() && meter != rt.reported_meter_wh;
    if !moved && rt.reported_at.is_some() {
        return None;
    }
    let energy_kwh = match (meter, rt.reported_meter_wh) {
        (Some(now), Some(before)) => Some(((now - before) / 1000.0).max(0.0)),
        _ => None,
    };
    rt.reported_meter_wh = meter.or(rt.reported_meter_wh);
    rt.reported_at = Some(step.now);
    Some(ReadingRecord {
        vehicle_id: wallbox.id,
        org_id: wallbox.org_id,
        at: step.now,
        battery_level: wallbox.charger.soc,
        is_plugged_in: Some(observed.plugged_in),
        is_charging: Some(observed.charging),
        is_at_home: None,
        power_w: wallbox.charger.power_w,
        energy_kwh,
        price_eur_mwh: step.book.price_at(step.now),
        customer_price_per_mwh: step
            .pricing
            .customer()
            .and_then(|c| c.book.price_at(step.now)),
    })
}
