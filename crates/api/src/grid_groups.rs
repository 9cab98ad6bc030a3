//! `/org/{org_id}/grid-groups` (issue 15, not part of the Podero API): sets of an organisation's
//! electric vehicles that share a power limit — a house connection, a car park, a feeder — nested
//! by `parent_id`, with a default limit and a schedule of windows (a §14a EnWG dimming signal).
//! The worker plans every outermost group's vehicles together (`docs/grid-limits.md`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::grid::{
    GridGroup, LimitWindow, MAX_MEMBERS, MAX_POWER_LIMIT_W, MAX_SCHEDULE_WINDOWS,
};
use voltplan_core::validation::FieldError;
use voltplan_store::{GridGroupRecord, StoreError};

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::{ApiError, ApiResult};
use crate::params::{GridGroupPath, Ids, OrgPath};
use crate::state::AppState;

pub(crate) const READ_ONLY: &[&str] = &["id", "created_at", "updated_at"];

/// `[start, end)` at most `power_limit_w`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitWindowOut {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub power_limit_w: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GridGroupOut {
    pub id: Uuid,
    pub name: String,
    /// The group this one sits inside (a site inside a feeder); null for an outermost group.
    pub parent_id: Option<Uuid>,
    /// Every live electric vehicle linked to one of these buildings is a member.
    pub building_ids: Vec<Uuid>,
    /// Vehicles listed one by one (a vehicle listed here belongs to this group even when its
    /// building is listed by another).
    pub electric_vehicle_ids: Vec<Uuid>,
    /// The limit outside every schedule window, W; null: no limit of its own.
    pub power_limit_w: Option<i64>,
    /// Windows with another limit; where they overlap the default, the lower holds.
    pub schedule: Vec<LimitWindowOut>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn windows_out(schedule: &[LimitWindow]) -> Vec<LimitWindowOut> {
    schedule
        .iter()
        .map(|w| LimitWindowOut {
            start: w.start,
            end: w.end,
            power_limit_w: w.power_limit_w,
        })
        .collect()
}

impl From<GridGroupRecord> for GridGroupOut {
    fn from(r: GridGroupRecord) -> Self {
        let g = r.group;
        GridGroupOut {
            id: r.id,
            schedule: windows_out(&g.schedule),
            name: g.name,
            parent_id: g.parent_id,
            building_ids: g.building_ids,
            electric_vehicle_ids: g.electric_vehicle_ids,
            power_limit_w: g.power_limit_w,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct LimitWindowWrite {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    power_limit_w: i64,
}

write_body! {
    /// Create: `name` is required. Update: send only what changes; a list sent replaces the
    /// stored one.
    pub struct GridGroupWrite {
        #[schema(min_length = 1, max_length = 100)]
        name: Option<String>,
        parent_id: Option<Uuid>,
        #[schema(max_items = 10_000)]
        building_ids: Option<Vec<Uuid>>,
        #[schema(max_items = 10_000)]
        electric_vehicle_ids: Option<Vec<Uuid>>,
        #[schema(minimum = 0, maximum = 1_000_000_000)]
        power_limit_w: Option<i64>,
        #[schema(max_items = 1000)]
        schedule: Option<Vec<LimitWindowWrite>>,
    }
}

write_body! {
    /// The group's limits alone: the default and the whole schedule (replaced).
    pub struct GridLimitsWrite {
        #[schema(minimum = 0, maximum = 1_000_000_000)]
        power_limit_w: Option<i64>,
        #[schema(max_items = 1000)]
        schedule: Option<Vec<LimitWindowWrite>>,
    }
}

/// The group's limits as `GET …/limits` shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct GridLimitsOut {
    pub power_limit_w: Option<i64>,
    pub schedule: Vec<LimitWindowOut>,
}

impl From<&GridGroup> for GridLimitsOut {
    fn from(g: &GridGroup) -> Self {
        GridLimitsOut {
            power_limit_w: g.power_limit_w,
            schedule: windows_out(&g.schedule),
        }
    }
}

const WINDOW_FIELDS: &[&str] = &["start", "end", "power_limit_w"];

struct GroupPatch {
    name: Patch<String>,
    parent_id: Patch<Uuid>,
    building_ids: Patch<Vec<Uuid>>,
    electric_vehicle_ids: Patch<Vec<Uuid>>,
    limits: LimitsPatch,
}

struct LimitsPatch {
    power_limit_w: Patch<i64>,
    schedule: Patch<Vec<LimitWindow>>,
}

fn parse_window(f: &mut Fields) -> Option<LimitWindow> {
    let start = f.datetime("start");
    let start = f.required("start", start);
    let end = f.datetime("end");
    let end = f.required("end", end);
    let limit = f.int("power_limit_w", 0, MAX_POWER_LIMIT_W);
    let limit = f.required("power_limit_w", limit);
    Some(LimitWindow {
        start: start?,
        end: end?,
        power_limit_w: limit?,
    })
}

fn parse_limits(f: &mut Fields) -> LimitsPatch {
    LimitsPatch {
        power_limit_w: f.int("power_limit_w", 0, MAX_POWER_LIMIT_W),
        schedule: f.list_of_objects(
            "schedule",
            MAX_SCHEDULE_WINDOWS,
            WINDOW_FIELDS,
            parse_window,
        ),
    }
}

fn parse_patch(f: &mut Fields) -> GroupPatch {
    GroupPatch {
        name: f.string("name", 100, false),
        parent_id: f.uuid("parent_id"),
        building_ids: f.list_of_uuids("building_ids", MAX_MEMBERS),
        electric_vehicle_ids: f.list_of_uuids("electric_vehicle_ids", MAX_MEMBERS),
        limits: parse_limits(f),
    }
}

fn apply_limits(patch: LimitsPatch, g: &mut GridGroup) {
    patch.power_limit_w.apply(&mut g.power_limit_w);
    match patch.schedule {
        Patch::Absent => {}
        Patch::Null => g.schedule.clear(),
        Patch::Set(mut windows) => {
            windows.sort_by_key(|w| w.start);
            g.schedule = windows;
        }
    }
}

fn apply_patch(
    patch: GroupPatch,
    r: &mut GridGroupRecord,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    let g = &mut r.group;
    match patch.name {
        Patch::Set(name) => g.name = name,
        Patch::Null => {
            return Err(vec![FieldError::body("name", "missing", "Field required")]);
        }
        Patch::Absent => {}
    }
    patch.parent_id.apply(&mut g.parent_id);
    for (patch, list) in [
        (patch.building_ids, &mut g.building_ids),
        (patch.electric_vehicle_ids, &mut g.electric_vehicle_ids),
    ] {
        match patch {
            Patch::Absent => {}
            Patch::Null => list.clear(),
            Patch::Set(ids) => *list = ids,
        }
    }
    apply_limits(patch.limits, g);
    validated(r, now)
}

/// The group's own rules, with `updated_at` set when they hold (the tree's — a parent that is the
/// group itself or one inside it — are the store's, `voltplan_core::grid::check_tree`).
fn validated(r: &mut GridGroupRecord, now: DateTime<Utc>) -> Result<(), Vec<FieldError>> {
    let errors = r.group.validate();
    if !errors.is_empty() {
        return Err(errors);
    }
    r.updated_at = now;
    Ok(())
}

/// List the organisation's grid groups.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/grid-groups", tag = "Grid Groups",
    params(OrgPath),
    responses((status = 200, body = [GridGroupOut])),
    security(("bearer" = [])))]
pub async fn list_grid_groups(
    State(state): State<AppState>,
    access: OrgAccess,
) -> ApiResult<Json<Vec<GridGroupOut>>> {
    let groups = state.store().list_grid_groups(access.org).await?;
    Ok(Json(groups.into_iter().map(GridGroupOut::from).collect()))
}

/// Create a grid group. Its vehicles (and those of every group it sits in) are planned together
/// within one worker cycle. A building or a vehicle may be listed by one group only.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/grid-groups", tag = "Grid Groups",
    params(OrgPath), request_body = GridGroupWrite,
    responses((status = 200, body = GridGroupOut)),
    security(("bearer" = [])))]
pub async fn create_grid_group(
    State(state): State<AppState>,
    access: OrgAccess,
    body: JsonObject,
) -> ApiResult<Json<GridGroupOut>> {
    let now = state.now();
    let mut f = Fields::new(body, GridGroupWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    if matches!(patch.name, Patch::Absent) && !f.has_errors_for("name") {
        f.error("name", "missing", "Field required");
    }
    f.finish()?;
    let mut record = GridGroupRecord {
        id: Uuid::now_v7(),
        org_id: access.org.id(),
        group: GridGroup {
            name: String::new(),
            parent_id: None,
            building_ids: Vec::new(),
            electric_vehicle_ids: Vec::new(),
            power_limit_w: None,
            schedule: Vec::new(),
        },
        created_at: now,
        updated_at: now,
        deleted_at: None,
        joint_plan: None,
    };
    apply_patch(patch, &mut record, now).map_err(ApiError::Invalid)?;
    let created = state.store().create_grid_group(access.org, &record).await?;
    Ok(Json(created.into()))
}

/// Get one grid group.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}", tag = "Grid Groups",
    params(GridGroupPath),
    responses((status = 200, body = GridGroupOut)),
    security(("bearer" = [])))]
pub async fn get_grid_group(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<GridGroupPath>,
) -> ApiResult<Json<GridGroupOut>> {
    let group = state
        .store()
        .get_grid_group(access.org, path.grid_group_id)
        .await?;
    Ok(Json(group.into()))
}

/// Update a grid group (partial).
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}", tag = "Grid Groups",
    params(GridGroupPath), request_body = GridGroupWrite,
    responses((status = 200, body = GridGroupOut)),
    security(("bearer" = [])))]
pub async fn update_grid_group(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<GridGroupPath>,
    body: JsonObject,
) -> ApiResult<Json<GridGroupOut>> {
    let now = state.now();
    let mut f = Fields::new(body, GridGroupWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    f.finish()?;
    let updated = state
        .store()
        .update_grid_group(
            access.org,
            path.grid_group_id,
            Box::new(move |r| apply_patch(patch, r, now)),
        )
        .await?;
    Ok(Json(updated.into()))
}

/// Delete a grid group (its vehicles go back to being planned alone, or within the groups it sat
/// in). Refused with 409 while other groups sit inside it.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}", tag = "Grid Groups",
    params(GridGroupPath),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Groups sit inside it")),
    security(("bearer" = [])))]
pub async fn delete_grid_group(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<GridGroupPath>,
) -> ApiResult<StatusCode> {
    match state
        .store()
        .delete_grid_group(access.org, path.grid_group_id, state.now())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::Conflict { .. }) => Err(ApiError::Conflict(serde_json::json!({
            "detail": "other grid groups sit inside this one: delete them or change their parent_id first"
        }))),
        Err(e) => Err(e.into()),
    }
}

/// A grid group's limits: the default and the schedule of windows.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}/limits", tag = "Grid Groups",
    params(GridGroupPath),
    responses((status = 200, body = GridLimitsOut)),
    security(("bearer" = [])))]
pub async fn get_grid_limits(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<GridGroupPath>,
) -> ApiResult<Json<GridLimitsOut>> {
    let group = state
        .store()
        .get_grid_group(access.org, path.grid_group_id)
        .await?;
    Ok(Json((&group.group).into()))
}

/// Set a grid group's limits — e.g. a distribution operator's §14a dimming window — taking effect
/// within one worker cycle: the outermost group is planned again at once. `schedule` replaces the
/// stored windows; `power_limit_w` absent keeps the default, null removes it.
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}/limits", tag = "Grid Groups",
    params(GridGroupPath), request_body = GridLimitsWrite,
    responses((status = 200, body = GridLimitsOut)),
    security(("bearer" = [])))]
pub async fn update_grid_limits(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<GridGroupPath>,
    body: JsonObject,
) -> ApiResult<Json<GridLimitsOut>> {
    let now = state.now();
    let mut f = Fields::new(body, GridLimitsWrite::FIELDS, &[]);
    let patch = parse_limits(&mut f);
    f.finish()?;
    let updated = state
        .store()
        .update_grid_group(
            access.org,
            path.grid_group_id,
            Box::new(move |r| {
                apply_limits(patch, &mut r.group);
                validated(r, now)
            }),
        )
        .await?;
    Ok(Json((&updated.group).into()))
}

/// The outermost group's last joint plan: per vehicle, the energy it was given, the windows it may
/// charge in and what the limits left undelivered; per slot, the group's limit and planned draw.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/grid-groups/{grid_group_id}/joint-plan", tag = "Grid Groups",
    params(GridGroupPath),
    responses((status = 200, description = "The joint plan (JSON)", body = Object), (status = 404, description = "No such group, or not planned yet")),
    security(("bearer" = [])))]
pub async fn get_joint_plan(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<GridGroupPath>,
) -> ApiResult<Json<serde_json::Value>> {
    let group = state
        .store()
        .get_grid_group(access.org, path.grid_group_id)
        .await?;
    let plan = group.joint_plan.ok_or(ApiError::NotFound)?;
    let value = serde_json::from_str(&plan)
        .map_err(|e| ApiError::Internal(format!("stored joint plan: {e}")))?;
    Ok(Json(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{accepts_what_it_shows, properties};

    #[test]
    fn the_declared_fields_are_documented_accepted_and_read() {
        assert_eq!(properties::<GridGroupWrite>(), GridGroupWrite::FIELDS);
        assert_eq!(properties::<GridLimitsWrite>(), GridLimitsWrite::FIELDS);
        accepts_what_it_shows::<GridGroupOut>(GridGroupWrite::FIELDS, READ_ONLY);
    }
}
