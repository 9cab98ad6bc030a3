//! Path and query extractors whose failures are JSON 422s naming the parameter.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, RawPathParams};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use uuid::Uuid;
use voltplan_core::validation::FieldError;

use crate::error::ApiError;

/// Path parameters; a malformed id is a 422 naming it.
pub struct Ids<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Ids<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Ids(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                // Every path parameter is a UUID: name the first that is not one.
                let key = RawPathParams::from_request_parts(parts, state)
                    .await
                    .ok()
                    .and_then(|params| {
                        params
                            .iter()
                            .find(|(_, value)| Uuid::parse_str(value).is_err())
                            .map(|(key, _)| key.to_owned())
                    })
                    .unwrap_or_else(|| "id".to_owned());
                Err(ApiError::Invalid(vec![FieldError::at(
                    &["path", &key],
                    "uuid_parsing",
                    "Input should be a valid UUID",
                )]))
            }
            Err(other) => Err(ApiError::internal(other)),
        }
    }
}

/// Query parameters; a malformed one is a 422.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e: QueryRejection| {
                ApiError::Invalid(vec![FieldError::at(
                    &["query"],
                    "value_error",
                    e.body_text(),
                )])
            })
    }
}

/// An integer query parameter in `min..=max`, `default` when absent. A bad value is reported in
/// `errors`, naming the parameter, and stands in as `default` so the other parameters are still read.
pub fn query_int(
    value: Option<&str>,
    name: &str,
    (min, max, default): (i64, i64, i64),
    errors: &mut Vec<FieldError>,
) -> i64 {
    let Some(value) = value else {
        return default;
    };
    match value.trim().parse::<i64>() {
        Ok(n) if n < min => {
            errors.push(FieldError::query(
                name,
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
            ));
            default
        }
        Ok(n) if n > max => {
            errors.push(FieldError::query(
                name,
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
            ));
            default
        }
        Ok(n) => n,
        Err(_) => {
            errors.push(FieldError::query(
                name,
                "int_parsing",
                "Input should be a valid integer",
            ));
            default
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeDeleted {
    /// Also return soft-deleted objects.
    #[serde(default)]
    pub include_deleted: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgPath {
    /// The organisation's id; any other than the token's answers 404.
    #[allow(dead_code)] // checked by `OrgAccess` before any handler runs
    pub org_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GridGroupPath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub grid_group_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub user_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BuildingPath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub building_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EnergyContractPath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub energy_contract_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VehiclePath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub electric_vehicle_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WallboxPath {
    #[allow(dead_code)] // checked by `OrgAccess`
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub wallbox_id: Uuid,
}
