//! Wallboxes: the partner's CRUD (every method scoped by an [`OrgScope`]), the OCPP password
//! (stored as an Argon2id PHC string, never returned), and the one unscoped lookup the OCPP
//! handshake needs. The SQL is in `shared/wallboxes.rs`, compiled once per backend.
//!
//! A wallbox's sessions and readings are read through [`crate::FleetStore`]'s per-table queries
//! (`list_device_sessions` / `list_device_readings` with [`crate::fleet::DeviceTable::Wallboxes`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::charger::Charger;
use voltplan_core::wallbox::{WallboxSettings, WallboxState};

use crate::json_text::JsonText;
use crate::{Mutation, OrgScope, Result, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct WallboxRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub building_id: Option<Uuid>,
    pub price_zone: PriceZone,
    /// The OCPP identity (`/ocpp/{charge_point_id}`), unique among live wallboxes of the
    /// installation.
    pub charge_point_id: String,
    pub settings: WallboxSettings,
    pub state: WallboxState,
    /// The central system's document, read only here (`NULL` reads as the default).
    pub charger: Charger,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What the OCPP handshake needs to check a charger's Basic-auth password.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargerLogin {
    pub org_id: Uuid,
    pub wallbox_id: Uuid,
    pub password_hash: String,
}

/// A wallbox as first created: the defaults the API applies before validation.
pub fn new_wallbox(
    org: OrgScope,
    user_id: Uuid,
    charge_point_id: String,
    now: DateTime<Utc>,
) -> WallboxRecord {
    WallboxRecord {
        id: Uuid::now_v7(),
        org_id: org.id(),
        user_id,
        building_id: None,
        price_zone: PriceZone::At,
        charge_point_id,
        settings: WallboxSettings::default(),
        state: WallboxState::default(),
        charger: Charger::default(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    }
}

#[async_trait]
pub trait WallboxStore: Send + Sync {
    async fn list_wallboxes(
        &self,
        org: OrgScope,
        user_id: Uuid,
        include_deleted: bool,
    ) -> Result<Vec<WallboxRecord>>;
    async fn get_wallbox(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<WallboxRecord>;
    /// `NotFound` when the user is not a live user of the organisation; `Conflict` naming
    /// `ocpp_charge_point_id` when a live wallbox has that charge-point id already.
    async fn create_wallbox(
        &self,
        org: OrgScope,
        wallbox: &WallboxRecord,
        password_hash: &str,
    ) -> Result<WallboxRecord>;
    /// A partial update in one transaction (the row locked on PostgreSQL); a refused change
    /// writes nothing. Writes the partner's columns only (never the state or the charger).
    async fn update_wallbox(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        change: Mutation<'_, WallboxRecord>,
    ) -> Result<WallboxRecord>;
    async fn delete_wallbox(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Replaces the OCPP password's hash (rotation): the old password no longer logs in.
    async fn set_wallbox_password(
        &self,
        org: OrgScope,
        user_id: Uuid,
        id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<WallboxRecord>;
    /// The live wallbox with this charge-point id, unscoped: the OCPP handshake knows only the
    /// id in its URL, and the password (checked against the hash) is the secret.
    async fn charger_login(&self, charge_point_id: &str) -> Result<Option<ChargerLogin>>;
}

/// The columns of a [`WallboxRow`], in its order.
pub(crate) const WALLBOX_COLUMNS: &str = "id, org_id, user_id, building_id, price_zone, charge_point_id, \
     settings, state, charger, created_at, updated_at, deleted_at";

#[derive(sqlx::FromRow)]
pub(crate) struct WallboxRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    building_id: Option<Uuid>,
    price_zone: String,
    charge_point_id: String,
    settings: Json<WallboxSettings>,
    state: JsonText<WallboxState>,
    charger: Option<JsonText<Charger>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<WallboxRow> for WallboxRecord {
    type Error = StoreError;
    fn try_from(row: WallboxRow) -> Result<Self, StoreError> {
        let price_zone = row
            .price_zone
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("wallbox {}: {e}", row.id)))?;
        Ok(WallboxRecord {
            id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            building_id: row.building_id,
            price_zone,
            charge_point_id: row.charge_point_id,
            settings: row.settings.0,
            state: row.state.0,
            charger: row.charger.map(|c| c.0).unwrap_or_default(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}
