//! The wallbox as the API shows it: the common device fields as the EV shows them, Podero's
//! wallbox fields (§3.8), what the central system knows of the charger, and the OCPP connection
//! details an installer types into the charger.

use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::charger::{Connection, Mode};
use voltplan_core::vehicle::{BoostState, StatusLevel};
use voltplan_store::{UserRecord, WallboxRecord};

use crate::PublicUrl;
use crate::cues::ActionOut;
use crate::vehicles::{DeviceModelOut, DeviceTypeOut, OwnerOut};

/// Where chargers open their WebSocket: the public URL's `ws://`/`wss://` form and this path (the
/// charger appends `/{charge_point_id}`).
const OCPP_PATH: &str = "/ocpp";

/// What the installer configures in the charger (OCPP 1.6-J, HTTP Basic auth).
#[derive(Debug, Serialize, ToSchema)]
pub struct OcppOut {
    /// The central system's URL; the charger appends `/{charge_point_id}`.
    pub url: String,
    /// The charger's identity (Basic-auth user name).
    pub charge_point_id: String,
    /// The Basic-auth password, 40 hex characters. Shown only in the answer to the wallbox's
    /// creation and to `POST …/ocpp-password` (rotation); `null` everywhere else: it is stored
    /// only as a hash.
    pub password: Option<String>,
    /// OCPP Security Profile: 2 (Basic auth over TLS) when the URL is `wss://`, else 1.
    #[schema(minimum = 1, maximum = 2)]
    pub security_profile: u8,
}

/// A wallbox: the common device fields, Podero's wallbox fields and the charger's live status.
#[derive(Debug, Serialize, ToSchema)]
pub struct WallboxOut {
    pub id: Uuid,
    #[schema(value_type = crate::schemas::StatusLevel)]
    pub connection_status: StatusLevel,
    #[schema(value_type = crate::schemas::StatusLevel)]
    pub monitoring_status: StatusLevel,
    #[schema(value_type = crate::schemas::StatusLevel)]
    pub steering_status: StatusLevel,
    pub device_model: DeviceModelOut,
    pub owner: OwnerOut,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = crate::schemas::PriceZone, default = "AT")]
    pub price_zone: PriceZone,
    /// When set, the device is considered deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    #[schema(default = "authenticated", max_length = 20)]
    pub lifecycle_state: String,
    /// Error metadata when lifecycle_state is 'error'.
    pub lifecycle_error: Option<String>,
    pub building: Option<Uuid>,
    pub pause_power_until: Option<DateTime<Utc>>,
    #[schema(default = false)]
    pub is_pause_power_active: bool,
    #[schema(default = "", max_length = 255)]
    pub external_device_id: Option<String>,
    /// The charger has logged in with its OCPP credentials at least once.
    #[schema(default = false)]
    pub is_authenticated: bool,
    #[schema(default = false)]
    pub is_smart_optimization_active: bool,
    pub optimization_score: Option<f64>,
    pub current_mode: Option<String>,
    #[schema(max_length = 300)]
    pub comment: Option<String>,
    pub current_state_last_updated_at: Option<DateTime<Utc>>,
    pub last_monitoring_executed_at: Option<DateTime<Utc>>,
    #[schema(default = false)]
    pub is_inverter_forced_mode_enabled: bool,
    #[schema(default = false)]
    pub is_inverter_forced_mode_active: bool,
    #[schema(default = "0001-01-01T00:00:00Z")]
    pub inverter_forced_mode_since: Option<DateTime<Utc>>,
    #[schema(default = false)]
    pub is_trading_enabled: bool,
    #[schema(default = false)]
    pub is_forecasting_enabled: bool,
    #[schema(default = "unknown", max_length = 20)]
    pub actual_steering_state: String,
    #[schema(default = false)]
    pub action_needed: bool,
    #[schema(default = 50)]
    pub charge_target_min: Option<i32>,
    /// The car's charge cap in percent, as the partner set it; `null`: 100.
    pub charge_target_max: Option<i32>,
    #[schema(default = 11000)]
    pub charge_power_max_w: i32,
    #[schema(default = false)]
    pub is_charge_policy_enabled: Option<bool>,
    pub charge_policy_last_updated_at: Option<DateTime<Utc>>,
    #[schema(default = 100)]
    pub minimum_charge_limit: Option<i32>,
    /// `HH:MM:SS`, local time of the wallbox's price zone.
    #[schema(value_type = Option<String>, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
        default = "06:00:00")]
    pub charge_deadline_at: Option<NaiveTime>,
    #[schema(default = false)]
    pub is_over_charge_allowed: Option<bool>,
    /// Voltplan extension: the energy in kWh a session must deliver by the deadline when the
    /// car's state of charge is unknown; `null`: learned from the charger's past sessions.
    pub session_energy_kwh: Option<f64>,
    #[schema(value_type = crate::schemas::WallboxMode)]
    pub mode: Mode,
    #[schema(value_type = crate::schemas::WallboxConnection)]
    pub connection: Connection,
    /// A WebSocket from the charger to the central system is open now.
    pub is_ocpp_connected: bool,
    /// A car is connected (OCPP connector status Preparing to Finishing).
    pub is_plugged_in: bool,
    /// Energy flows (connector status Charging).
    pub is_charging: bool,
    /// Active power at the last meter reading, W.
    pub charging_power_w: Option<f64>,
    /// The charger's energy register at the last meter reading, Wh.
    pub meter_wh: Option<f64>,
    #[schema(default = false)]
    pub boost_for_next_session: bool,
    #[schema(value_type = crate::schemas::BoostState, default = "unavailable")]
    pub boost_state: BoostState,
    #[schema(default = false)]
    pub boost_feature_enabled: bool,
    pub last_boost_triggered_at: Option<DateTime<Utc>>,
    pub last_boost_ended_at: Option<DateTime<Utc>>,
    pub last_boost_end_reason: Option<String>,
    pub ocpp: OcppOut,
}

/// The detail view: the object plus its pending `actions` (none for wallboxes so far).
#[derive(Debug, Serialize, ToSchema)]
pub struct WallboxDetailOut {
    #[serde(flatten)]
    pub wallbox: WallboxOut,
    pub actions: Vec<ActionOut>,
}

/// The detail view of `w`; `password` only right after it was generated.
pub fn wallbox_detail(
    w: WallboxRecord,
    owner: &UserRecord,
    public_url: &PublicUrl,
    now: DateTime<Utc>,
    password: Option<String>,
) -> WallboxDetailOut {
    WallboxDetailOut {
        wallbox: wallbox_out(w, owner, public_url, now, password),
        actions: Vec::new(),
    }
}

pub fn wallbox_out(
    w: WallboxRecord,
    owner: &UserRecord,
    public_url: &PublicUrl,
    now: DateTime<Utc>,
    password: Option<String>,
) -> WallboxOut {
    let boost_state = crate::boost::shown_boost_state(
        w.settings.boost_requested_at.is_some(),
        w.state.boost_state,
    );
    let url = public_url.websocket(OCPP_PATH);
    let security_profile = if url.starts_with("wss://") { 2 } else { 1 };
    let is_pause_power_active = w.settings.is_pause_power_active(now);
    let (s, st, charger) = (w.settings, w.state, w.charger);
    WallboxOut {
        id: w.id,
        connection_status: st.connection_status,
        monitoring_status: st.monitoring_status,
        steering_status: st.steering_status,
        device_model: DeviceModelOut {
            device_type: DeviceTypeOut {
                short_name: "wb".to_owned(),
                long_name: "Wallbox".to_owned(),
            },
            manufacturer: s.device_model.manufacturer,
            model: s.device_model.model,
            cloud_service_instructions: None,
            cloud_service_signup_link: None,
            year: s.device_model.year,
            cloud_service: None,
            vin: None,
        },
        owner: OwnerOut::from(owner),
        created_at: w.created_at,
        updated_at: w.updated_at,
        price_zone: w.price_zone,
        deleted_at: w.deleted_at,
        lifecycle_state: st.lifecycle_state,
        lifecycle_error: st.lifecycle_error,
        building: w.building_id,
        pause_power_until: s.pause_power_until,
        is_pause_power_active,
        external_device_id: s.external_device_id,
        is_authenticated: charger.connected_at.is_some(),
        is_smart_optimization_active: s.is_smart_optimization_active,
        optimization_score: st.optimization_score,
        current_mode: st.current_mode,
        comment: s.comment,
        current_state_last_updated_at: st.current_state_last_updated_at,
        last_monitoring_executed_at: st.last_monitoring_executed_at,
        is_inverter_forced_mode_enabled: st.is_inverter_forced_mode_enabled,
        is_inverter_forced_mode_active: st.is_inverter_forced_mode_active,
        inverter_forced_mode_since: st.inverter_forced_mode_since,
        is_trading_enabled: s.is_trading_enabled,
        is_forecasting_enabled: s.is_forecasting_enabled,
        actual_steering_state: st.actual_steering_state,
        action_needed: st.action_needed,
        charge_target_min: s.charge_target_min,
        charge_target_max: s.charge_target_max,
        charge_power_max_w: s.charge_power_max_w,
        is_charge_policy_enabled: s.is_charge_policy_enabled,
        charge_policy_last_updated_at: s.charge_policy_last_updated_at,
        minimum_charge_limit: s.minimum_charge_limit,
        charge_deadline_at: s.charge_deadline_at,
        is_over_charge_allowed: s.is_over_charge_allowed,
        session_energy_kwh: s.session_energy_kwh,
        mode: charger.mode(),
        connection: charger.connection(),
        is_ocpp_connected: charger.connected,
        is_plugged_in: charger.is_plugged_in(),
        is_charging: charger.is_charging(),
        charging_power_w: charger.power_w,
        meter_wh: charger.meter_wh,
        boost_for_next_session: s.boost_for_next_session,
        boost_state,
        boost_feature_enabled: st.boost_feature_enabled,
        last_boost_triggered_at: st.last_boost_triggered_at,
        last_boost_ended_at: st.last_boost_ended_at,
        last_boost_end_reason: st.last_boost_end_reason,
        ocpp: OcppOut {
            url,
            charge_point_id: w.charge_point_id,
            password,
            security_profile,
        },
    }
}
