//! `GET /org/{org_id}/electric-vehicles` (a Voltplan extension): the organisation's electric
//! vehicles across all users, as the same objects the per-user list returns, filtered and paged.
//!
//! Paging follows the one paged list Podero documents (EV sessions): `limit` (1–200, default 50)
//! and `offset`, answering `{total, items}`; the order is the vehicle `id`, which is stable, and
//! `after` (keyset) is offered besides `offset` for clients that page through a fleet whose state
//! changes while they read. Query parameters are read by hand so that every failure is a 422
//! naming its parameter, and an unknown parameter (a misspelt filter) is a 422 rather than a
//! silently unfiltered list.

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::validation::FieldError;
use voltplan_core::vehicle::StatusLevel;
use voltplan_store::{OrgVehicleFilter, OrgVehiclePaging};

use crate::auth::OrgAccess;
use crate::error::{ApiError, ApiResult};
use crate::params::{Ids, OrgPath, query_int};
use crate::state::AppState;
use crate::vehicles::{ElectricVehicleOut, vehicle_out};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// The query parameters, as given (validated by [`filter_and_paging`]). Also their documentation.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgVehiclesQuery {
    /// Page size, 1–200, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// Vehicles to skip, ≥ 0, default 0. Not together with `after`.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub offset: Option<String>,
    /// Keyset paging: only vehicles whose `id` sorts after this one; pass the last `id` of the
    /// previous page. A page is then unaffected by vehicles that enter or leave the filter on
    /// earlier pages. Not together with `offset`.
    #[param(value_type = Option<Uuid>)]
    pub after: Option<String>,
    /// Only this user's vehicles (a user of another organisation has none here).
    #[param(value_type = Option<Uuid>)]
    pub user_id: Option<String>,
    /// One or more price zones, comma-separated (`AT,DE_LU`): vehicles in any of them.
    pub price_zone: Option<String>,
    /// The vehicle's overall status, the worst of `connection_status`, `monitoring_status` and
    /// `steering_status` in the order `ok` < `unknown` < `warning` < `error`; one or more,
    /// comma-separated. `status=warning,error` lists the vehicles with a problem; `status=ok` those
    /// whose three statuses are all `ok`.
    pub status: Option<String>,
    /// One or more of `ok`, `warning`, `error`, `unknown`, comma-separated.
    pub connection_status: Option<String>,
    /// One or more of `ok`, `warning`, `error`, `unknown`, comma-separated.
    pub monitoring_status: Option<String>,
    /// One or more of `ok`, `warning`, `error`, `unknown`, comma-separated.
    pub steering_status: Option<String>,
    /// `true`: vehicles with a pending action (see a vehicle's `actions`); `false`: without.
    #[param(value_type = Option<bool>)]
    pub action_needed: Option<String>,
    /// `true` or `false`; a vehicle whose plug state is unknown (`null`) matches neither.
    #[param(value_type = Option<bool>)]
    pub is_plugged_in: Option<String>,
    /// `true` or `false`; a vehicle whose charging state is unknown (`null`) matches neither.
    #[param(value_type = Option<bool>)]
    pub is_charging: Option<String>,
    /// Also list deleted vehicles and the vehicles of deleted users.
    #[param(value_type = Option<bool>)]
    pub include_deleted: Option<String>,
}

/// Parameters that take a comma-separated list; repeating them adds to the list.
const LISTS: [&str; 5] = [
    "price_zone",
    "status",
    "connection_status",
    "monitoring_status",
    "steering_status",
];

impl OrgVehiclesQuery {
    /// Reads a raw query string; an unknown parameter, or a single-valued one given twice, is an
    /// error naming it.
    fn parse(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Self {
        let mut q = OrgVehiclesQuery::default();
        for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let slot = match key.as_ref() {
                "limit" => &mut q.limit,
                "offset" => &mut q.offset,
                "after" => &mut q.after,
                "user_id" => &mut q.user_id,
                "price_zone" => &mut q.price_zone,
                "status" => &mut q.status,
                "connection_status" => &mut q.connection_status,
                "monitoring_status" => &mut q.monitoring_status,
                "steering_status" => &mut q.steering_status,
                "action_needed" => &mut q.action_needed,
                "is_plugged_in" => &mut q.is_plugged_in,
                "is_charging" => &mut q.is_charging,
                "include_deleted" => &mut q.include_deleted,
                other => {
                    errors.push(FieldError::query(
                        other,
                        "extra_forbidden",
                        "Unknown query parameter; see the operation's parameters",
                    ));
                    continue;
                }
            };
            match slot {
                None => *slot = Some(value.into_owned()),
                Some(list) if LISTS.contains(&key.as_ref()) => {
                    list.push(',');
                    list.push_str(&value);
                }
                Some(_) => errors.push(FieldError::query(
                    &key,
                    "value_error",
                    "Give this parameter at most once",
                )),
            }
        }
        q
    }
}

/// `true`/`false` (any case), or `1`/`0`.
fn parse_bool(value: Option<&str>, name: &str, errors: &mut Vec<FieldError>) -> Option<bool> {
    let value = value?.trim();
    if value.eq_ignore_ascii_case("true") || value == "1" {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") || value == "0" {
        Some(false)
    } else {
        errors.push(FieldError::query(
            name,
            "bool_parsing",
            "Input should be a valid boolean: true or false",
        ));
        None
    }
}

fn parse_uuid(value: Option<&str>, name: &str, errors: &mut Vec<FieldError>) -> Option<Uuid> {
    let value = value?;
    let parsed = Uuid::parse_str(value.trim()).ok();
    if parsed.is_none() {
        errors.push(FieldError::query(
            name,
            "uuid_parsing",
            "Input should be a valid UUID",
        ));
    }
    parsed
}

/// A comma-separated list of names from `allowed`, each kept once; any other entry (an empty
/// one too) is an error listing what is allowed.
fn parse_list<T: Copy + PartialEq>(
    value: Option<&str>,
    name: &str,
    allowed: &[(&str, T)],
    errors: &mut Vec<FieldError>,
) -> Vec<T> {
    let Some(value) = value else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim) {
        match allowed.iter().find(|(n, _)| *n == entry) {
            Some((_, v)) => {
                if !out.contains(v) {
                    out.push(*v);
                }
            }
            None => {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                errors.push(FieldError::query(
                    name,
                    "enum",
                    format!(
                        "Input should be one or more of {}, comma-separated; got {entry:?}",
                        names.join(", ")
                    ),
                ));
                return Vec::new();
            }
        }
    }
    out
}

const LEVELS: [(&str, StatusLevel); 4] = [
    ("ok", StatusLevel::Ok),
    ("warning", StatusLevel::Warning),
    ("error", StatusLevel::Error),
    ("unknown", StatusLevel::Unknown),
];

/// The store's filter and page for a query, or every invalid parameter.
fn filter_and_paging(
    q: &OrgVehiclesQuery,
    errors: &mut Vec<FieldError>,
) -> (OrgVehicleFilter, OrgVehiclePaging) {
    let limit = query_int(
        q.limit.as_deref(),
        "limit",
        (1, MAX_LIMIT, DEFAULT_LIMIT),
        errors,
    );
    let offset = query_int(q.offset.as_deref(), "offset", (0, i64::MAX, 0), errors);
    let after = parse_uuid(q.after.as_deref(), "after", errors);
    if q.after.is_some() && q.offset.is_some() {
        errors.push(FieldError::query(
            "after",
            "value_error",
            "Page with either offset or after, not both",
        ));
    }
    let zones: Vec<(&str, PriceZone)> = PriceZone::ALL.iter().map(|z| (z.as_str(), *z)).collect();
    let filter = OrgVehicleFilter {
        user_id: parse_uuid(q.user_id.as_deref(), "user_id", errors),
        price_zones: parse_list(q.price_zone.as_deref(), "price_zone", &zones, errors),
        status: parse_list(q.status.as_deref(), "status", &LEVELS, errors),
        connection_status: parse_list(
            q.connection_status.as_deref(),
            "connection_status",
            &LEVELS,
            errors,
        ),
        monitoring_status: parse_list(
            q.monitoring_status.as_deref(),
            "monitoring_status",
            &LEVELS,
            errors,
        ),
        steering_status: parse_list(
            q.steering_status.as_deref(),
            "steering_status",
            &LEVELS,
            errors,
        ),
        action_needed: parse_bool(q.action_needed.as_deref(), "action_needed", errors),
        is_plugged_in: parse_bool(q.is_plugged_in.as_deref(), "is_plugged_in", errors),
        is_charging: parse_bool(q.is_charging.as_deref(), "is_charging", errors),
        include_deleted: parse_bool(q.include_deleted.as_deref(), "include_deleted", errors)
            .unwrap_or(false),
    };
    (
        filter,
        OrgVehiclePaging {
            limit,
            offset,
            after,
        },
    )
}

/// A page of the organisation's electric vehicles.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgVehiclePageOut {
    /// Vehicles matching the filters, over all pages (`limit`, `offset` and `after` do not count).
    pub total: i64,
    /// Ordered by `id`; each exactly as `GET …/users/{user_id}/electric-vehicles` returns it, its
    /// user in `owner`.
    pub items: Vec<ElectricVehicleOut>,
}

/// List the organisation's electric vehicles, across users (Voltplan extension)
///
/// Not part of the Podero API. Finds the vehicles that need attention without a call per user.
/// Each item is the object of `GET …/users/{user_id}/electric-vehicles`, unchanged; its user is
/// `owner.id`.
///
/// **Paging**, as EV sessions page: `limit` (1–200, default 50) and `offset` (default 0), in
/// ascending `id` order, which is stable; `total` counts the matching vehicles over all pages.
/// Instead of `offset`, `after=<id>` (the last `id` of the previous page) pages by key: a vehicle
/// that enters or leaves the filters (a car plugged in meanwhile) then does not shift the
/// following pages. A page shorter than `limit` is the last.
///
/// **Filters** are all optional and combine with AND: `user_id`, `price_zone`, `status` (the
/// worst of the three statuses, `ok` < `unknown` < `warning` < `error`), `connection_status`,
/// `monitoring_status`, `steering_status`, `action_needed`, `is_plugged_in`, `is_charging`.
/// List filters take comma-separated values (or the parameter repeated) and match any of them;
/// booleans take `true` or `false`. They test what the object shows: a vehicle whose
/// `is_plugged_in` is `null` (unknown) matches neither `true` nor `false`. Deleted vehicles, and
/// the vehicles of deleted users, are left out unless `include_deleted=true`.
///
/// A malformed value, `offset` together with `after`, or an unknown parameter is a 422 naming the
/// parameter.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/electric-vehicles", tag = "Devices",
    params(OrgPath, OrgVehiclesQuery),
    responses((status = 200, body = OrgVehiclePageOut)),
    security(("bearer" = [])))]
pub async fn list_org_vehicles(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(_path): Ids<OrgPath>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<OrgVehiclePageOut>> {
    let mut errors = Vec::new();
    let query = OrgVehiclesQuery::parse(raw.as_deref(), &mut errors);
    let (filter, paging) = filter_and_paging(&query, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let page = state
        .store()
        .list_org_vehicles(access.org, &filter, paging)
        .await?;
    let now = state.now();
    Ok(Json(OrgVehiclePageOut {
        total: page.total,
        items: page
            .items
            .into_iter()
            .map(|item| vehicle_out(item.vehicle, &item.owner, now))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> Result<(OrgVehicleFilter, OrgVehiclePaging), Vec<String>> {
        let mut errors = Vec::new();
        let q = OrgVehiclesQuery::parse(Some(raw), &mut errors);
        let out = filter_and_paging(&q, &mut errors);
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors.iter().map(FieldError::path).collect())
        }
    }

    #[test]
    fn defaults_and_lists() {
        let (filter, paging) = read("").unwrap();
        assert_eq!(filter, OrgVehicleFilter::default());
        assert_eq!(
            paging,
            OrgVehiclePaging {
                limit: 50,
                offset: 0,
                after: None
            }
        );
        let (filter, _) =
            read("status=error&status=warning,error&price_zone=AT%2CDE_LU&is_charging=TRUE")
                .unwrap();
        assert_eq!(
            filter.status,
            vec![StatusLevel::Error, StatusLevel::Warning]
        );
        assert_eq!(filter.price_zones, vec![PriceZone::At, PriceZone::DeLu]);
        assert_eq!(filter.is_charging, Some(true));
    }

    #[test]
    fn every_bad_parameter_is_named() {
        assert_eq!(
            read("limit=0&status=fine&is_plugged_in=yes&colour=red&user_id=1").unwrap_err(),
            vec![
                "query.colour",
                "query.limit",
                "query.user_id",
                "query.status",
                "query.is_plugged_in"
            ]
        );
        assert_eq!(
            read(&format!("offset=1&after={}", Uuid::nil())).unwrap_err(),
            vec!["query.after"]
        );
        assert_eq!(read("status=ok,").unwrap_err(), vec!["query.status"]);
        assert_eq!(
            read("is_charging=true&is_charging=false").unwrap_err(),
            vec!["query.is_charging"]
        );
    }
}
