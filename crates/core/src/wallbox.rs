//! A wallbox as Voltplan keeps it: the settings a partner writes (Podero §3.8 and the common device
//! fields) and the state the worker observes. The third document, what the OCPP central system
//! knows about the charger, is [`crate::charger::Charger`]. Field names follow the Podero Partner
//! API v2.0; defaults follow the EV's where Podero gives none for wallboxes.

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::vehicle::{BoostState, DeviceModel, StatusLevel, inverter_forced_mode_epoch};

/// What a home wallbox delivers on three phases at 16 A: the default `charge_power_max_w`.
pub const DEFAULT_CHARGE_POWER_MAX_W: i32 = 11_000;

/// Settings a partner (or the driver through the partner) controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WallboxSettings {
    pub is_smart_optimization_active: bool,
    pub pause_power_until: Option<DateTime<Utc>>,
    pub external_device_id: Option<String>,
    pub comment: Option<String>,
    pub charge_target_min: Option<i32>,
    /// The car's own cap as the partner knows it: a wallbox cannot detect it (the EV's is
    /// detected from its cloud). `None`: 100 %.
    pub charge_target_max: Option<i32>,
    pub minimum_charge_limit: Option<i32>,
    pub charge_deadline_at: Option<NaiveTime>,
    pub is_charge_policy_enabled: Option<bool>,
    /// When a charge-policy field last changed (set by the API).
    pub charge_policy_last_updated_at: Option<DateTime<Utc>>,
    pub is_over_charge_allowed: Option<bool>,
    pub charge_power_max_w: i32,
    pub is_trading_enabled: bool,
    pub is_forecasting_enabled: bool,
    pub boost_for_next_session: bool,
    /// A boost asked for through the API and not yet taken up by the worker (as the EV's).
    pub boost_requested_at: Option<DateTime<Utc>>,
    /// Podero's wallbox `DELETE …/boost` also ends a live boost; the API records the wish here
    /// (it never writes the state) and the worker ends a boost that started before it.
    pub boost_cancelled_at: Option<DateTime<Utc>>,
    /// Voltplan extension: the energy a session must deliver by the deadline when the car's state
    /// of charge is unknown (most chargers do not report it). `None`: learned from the charger's
    /// past sessions.
    pub session_energy_kwh: Option<f64>,
    /// Manufacturer, model and year; a wallbox has no cloud service (it connects over OCPP).
    pub device_model: DeviceModel,
}

impl Default for WallboxSettings {
    fn default() -> Self {
        Self {
            is_smart_optimization_active: false,
            pause_power_until: None,
            external_device_id: Some(String::new()),
            comment: None,
            charge_target_min: Some(50),
            charge_target_max: None,
            minimum_charge_limit: Some(100),
            charge_deadline_at: NaiveTime::from_hms_opt(6, 0, 0),
            is_charge_policy_enabled: Some(false),
            charge_policy_last_updated_at: None,
            is_over_charge_allowed: Some(false),
            charge_power_max_w: DEFAULT_CHARGE_POWER_MAX_W,
            is_trading_enabled: false,
            is_forecasting_enabled: false,
            boost_for_next_session: false,
            boost_requested_at: None,
            boost_cancelled_at: None,
            session_energy_kwh: None,
            device_model: DeviceModel::default(),
        }
    }
}

impl WallboxSettings {
    pub fn is_pause_power_active(&self, now: DateTime<Utc>) -> bool {
        self.pause_power_until.is_some_and(|until| until > now)
    }
}

/// What Voltplan observed and decided about the wallbox. Written only by the worker; the live
/// charger fields (plugged in, charging, power, meter) are the central system's [`Charger`].
///
/// [`Charger`]: crate::charger::Charger
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WallboxState {
    pub connection_status: StatusLevel,
    pub monitoring_status: StatusLevel,
    pub steering_status: StatusLevel,
    pub lifecycle_state: String,
    pub lifecycle_error: Option<String>,
    pub optimization_score: Option<f64>,
    pub current_mode: Option<String>,
    pub current_state_last_updated_at: Option<DateTime<Utc>>,
    pub last_monitoring_executed_at: Option<DateTime<Utc>>,
    pub is_inverter_forced_mode_enabled: bool,
    pub is_inverter_forced_mode_active: bool,
    pub inverter_forced_mode_since: Option<DateTime<Utc>>,
    pub actual_steering_state: String,
    pub action_needed: bool,
    pub boost_state: BoostState,
    pub boost_feature_enabled: bool,
    pub last_boost_triggered_at: Option<DateTime<Utc>>,
    pub last_boost_ended_at: Option<DateTime<Utc>>,
    pub last_boost_end_reason: Option<String>,
}

impl Default for WallboxState {
    fn default() -> Self {
        Self {
            connection_status: StatusLevel::Unknown,
            monitoring_status: StatusLevel::Unknown,
            steering_status: StatusLevel::Unknown,
            lifecycle_state: "authenticated".to_owned(),
            lifecycle_error: None,
            optimization_score: None,
            current_mode: None,
            current_state_last_updated_at: None,
            last_monitoring_executed_at: None,
            is_inverter_forced_mode_enabled: false,
            is_inverter_forced_mode_active: false,
            inverter_forced_mode_since: Some(inverter_forced_mode_epoch()),
            actual_steering_state: "unknown".to_owned(),
            action_needed: false,
            boost_state: BoostState::Unavailable,
            boost_feature_enabled: false,
            last_boost_triggered_at: None,
            last_boost_ended_at: None,
            last_boost_end_reason: None,
        }
    }
}

/// The cross-field rule of the charge targets: `charge_target_min ≤ minimum_charge_limit ≤
/// charge_target_max` where set. The field named is the one whose value breaks the order.
pub fn check_targets(s: &WallboxSettings) -> Result<(), (&'static str, String)> {
    if let (Some(min), Some(limit)) = (s.charge_target_min, s.minimum_charge_limit)
        && min > limit
    {
        return Err((
            "charge_target_min",
            format!("charge_target_min ({min}) must not exceed minimum_charge_limit ({limit})"),
        ));
    }
    if let (Some(limit), Some(max)) = (s.minimum_charge_limit, s.charge_target_max)
        && limit > max
    {
        return Err((
            "minimum_charge_limit",
            format!("minimum_charge_limit ({limit}) must not exceed charge_target_max ({max})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_the_order_of_the_targets() {
        let s = WallboxSettings::default();
        assert_eq!(s.charge_power_max_w, 11_000);
        assert_eq!(check_targets(&s), Ok(()));
        let capped = WallboxSettings {
            charge_target_max: Some(80),
            ..WallboxSettings::default()
        };
        assert_eq!(
            check_targets(&capped).unwrap_err().0,
            "minimum_charge_limit"
        );
        let low = WallboxSettings {
            charge_target_min: Some(90),
            minimum_charge_limit: Some(80),
            ..WallboxSettings::default()
        };
        assert_eq!(check_targets(&low).unwrap_err().0, "charge_target_min");
        // An old document without the newer fields still reads, with their defaults.
        let read: WallboxSettings = serde_json::from_str("{\"comment\": \"garage\"}").unwrap();
        assert_eq!(read.comment.as_deref(), Some("garage"));
        assert_eq!(read.charge_power_max_w, 11_000);
        let state: WallboxState = serde_json::from_str("{}").unwrap();
        assert_eq!(state, WallboxState::default());
    }
}
