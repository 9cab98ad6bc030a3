//! `/org/{org_id}/users/{user_id}/energy-contracts` (Podero §3.3) with Voltplan's tariff
//! extension: grid fees and levies by time window, VAT and a spot markup, so that plans and costs
//! are on the customer's price (`voltplan_core::tariff`, `docs/tariffs.md`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;

use utoipa::ToSchema;
use uuid::Uuid;
use voltplan_core::tariff::{
    ContractPrice, ContractType, EnergyContract, MAX_COMPONENTS, MAX_ENERGY_PRICES,
    MAX_PRICE_PER_KWH, MAX_WINDOWS, TariffComponent, TimeWindow,
};
use voltplan_core::time::WEEKDAYS;
use voltplan_core::validation::FieldError;
use voltplan_store::EnergyContractRecord;

use crate::auth::OrgAccess;
use crate::body::{Fields, JsonObject, Patch, write_body};
use crate::error::{ApiError, ApiResult};
use crate::params::{EnergyContractPath, Ids, IncludeDeleted, Q, UserPath};
use crate::state::AppState;
use crate::vehicles::check_building;

pub(crate) const READ_ONLY: &[&str] = &[
    "id",
    "user",
    "building",
    "created_at",
    "updated_at",
    "deleted_at",
];

/// `{price, timestamp}`: a price per kWh from `timestamp` on.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnergyPriceOut {
    /// Per kWh in `currency_energy_price`.
    #[schema(minimum = -5.0, maximum = 5.0)]
    pub price: f64,
    pub timestamp: DateTime<Utc>,
}

/// A stretch of the week with another price; `to` at or before `from` runs past midnight.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeWindowOut {
    /// Days on which the window starts.
    #[schema(min_items = 1, max_items = 7)]
    pub days: Vec<WeekdayOut>,
    /// Local time, on a quarter-hour (`HH:MM:SS`).
    #[schema(value_type = String, example = "00:00:00")]
    pub from: NaiveTime,
    #[schema(value_type = String, example = "06:00:00")]
    pub to: NaiveTime,
    #[schema(minimum = -5.0, maximum = 5.0)]
    pub price_per_kwh: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WeekdayOut {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A grid fee, levy or other charge per kWh (Voltplan extension).
#[derive(Debug, Serialize, ToSchema)]
pub struct TariffComponentOut {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Outside every window, per kWh.
    #[schema(minimum = -5.0, maximum = 5.0)]
    pub price_per_kwh: f64,
    #[schema(max_items = 48)]
    pub windows: Vec<TimeWindowOut>,
    /// First local date it applies.
    pub valid_from: Option<NaiveDate>,
    /// Last local date it applies (inclusive).
    pub valid_until: Option<NaiveDate>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractTypeOut {
    SpotHourly,
    Monthly,
    Yearly,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnergyContractOut {
    pub id: Uuid,
    /// The owning user's id.
    pub user: Uuid,
    /// The building the contract is for; null: all the user's buildings.
    pub building: Option<Uuid>,
    pub energy_contract_type: Option<ContractTypeOut>,
    pub energy_prices: Vec<EnergyPriceOut>,
    pub meter_id: Option<String>,
    pub supplier: Option<String>,
    pub currency_energy_price: Option<String>,
    pub energy_price_includes_external_components: Option<bool>,
    pub tariff_components: Vec<TariffComponentOut>,
    pub vat_percentage: Option<f64>,
    pub spot_markup_per_kwh: Option<f64>,
    pub timezone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

fn weekday_out(day: &str) -> Option<WeekdayOut> {
    Some(match day {
        "mon" => WeekdayOut::Mon,
        "tue" => WeekdayOut::Tue,
        "wed" => WeekdayOut::Wed,
        "thu" => WeekdayOut::Thu,
        "fri" => WeekdayOut::Fri,
        "sat" => WeekdayOut::Sat,
        "sun" => WeekdayOut::Sun,
        _ => return None,
    })
}

impl From<EnergyContractRecord> for EnergyContractOut {
    fn from(r: EnergyContractRecord) -> Self {
        let c = r.contract;
        EnergyContractOut {
            id: r.id,
            user: r.user_id,
            building: r.building_id,
            energy_contract_type: c.energy_contract_type.map(|t| match t {
                ContractType::SpotHourly => ContractTypeOut::SpotHourly,
                ContractType::Monthly => ContractTypeOut::Monthly,
                ContractType::Yearly => ContractTypeOut::Yearly,
            }),
            energy_prices: c
                .energy_prices
                .iter()
                .map(|p| EnergyPriceOut {
                    price: p.price,
                    timestamp: p.timestamp,
                })
                .collect(),
            meter_id: c.meter_id,
            supplier: c.supplier,
            currency_energy_price: c.currency_energy_price,
            energy_price_includes_external_components: c.energy_price_includes_external_components,
            tariff_components: c
                .tariff_components
                .into_iter()
                .map(|t| TariffComponentOut {
                    name: t.name,
                    price_per_kwh: t.price_per_kwh,
                    windows: t
                        .windows
                        .into_iter()
                        .map(|w| TimeWindowOut {
                            days: w.days.iter().filter_map(|d| weekday_out(d)).collect(),
                            from: w.from,
                            to: w.to,
                            price_per_kwh: w.price_per_kwh,
                        })
                        .collect(),
                    valid_from: t.valid_from,
                    valid_until: t.valid_until,
                })
                .collect(),
            vat_percentage: c.vat_percentage,
            spot_markup_per_kwh: c.spot_markup_per_kwh,
            timezone: c.timezone,
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
        }
    }
}

/// One `energy_prices` entry as written.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct EnergyPriceWrite {
    #[schema(minimum = -5.0, maximum = 5.0)]
    price: f64,
    timestamp: DateTime<Utc>,
}

/// One window as written.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct TimeWindowWrite {
    #[schema(min_items = 1, max_items = 7)]
    days: Vec<WeekdayOut>,
    /// `HH:MM` or `HH:MM:SS` on a quarter-hour.
    #[schema(value_type = String, example = "00:00")]
    from: String,
    #[schema(value_type = String, example = "06:00")]
    to: String,
    #[schema(minimum = -5.0, maximum = 5.0)]
    price_per_kwh: f64,
}

/// One tariff component as written; `name` and `price_per_kwh` are required.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct TariffComponentWrite {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[schema(minimum = -5.0, maximum = 5.0)]
    price_per_kwh: f64,
    #[schema(max_items = 48)]
    windows: Option<Vec<TimeWindowWrite>>,
    valid_from: Option<NaiveDate>,
    valid_until: Option<NaiveDate>,
}

write_body! {
    /// Writable contract fields (Podero §3.3) and Voltplan's tariff extension
    /// (`tariff_components`, `vat_percentage`, `spot_markup_per_kwh`, `timezone`). Nothing is
    /// required; PUT changes only the fields sent. The customer's price per quarter-hour is
    /// `energy + Σ components`, times `1 + vat_percentage/100`, or the energy price alone when
    /// `energy_price_includes_external_components` is true; the energy price is the contract's
    /// (`monthly`, `yearly`: a step function of `energy_prices`; `spot_hourly` with prices: each
    /// covers its hour) or else the zone's day-ahead price plus `spot_markup_per_kwh`. A contract
    /// that follows the day-ahead market is in the market's currency (EUR; GBP in the UK zone).
    /// Prices are per kWh.
    pub struct EnergyContractWrite {
        energy_contract_type: Option<ContractTypeOut>,
        /// Sorted by timestamp when stored; default `[]`.
        #[schema(max_items = 10_000)]
        energy_prices: Option<Vec<EnergyPriceWrite>>,
        /// A live building of the same user; none: all the user's buildings.
        building_id: Option<Uuid>,
        #[schema(max_length = 19)]
        meter_id: Option<String>,
        #[schema(max_length = 100)]
        supplier: Option<String>,
        /// ISO 4217, e.g. `EUR`; required when `energy_prices` are given.
        #[schema(min_length = 3, max_length = 3, pattern = "^[A-Z]{3}$")]
        currency_energy_price: Option<String>,
        energy_price_includes_external_components: Option<bool>,
        #[schema(max_items = 20)]
        tariff_components: Option<Vec<TariffComponentWrite>>,
        #[schema(minimum = 0.0, maximum = 100.0)]
        vat_percentage: Option<f64>,
        #[schema(minimum = -5.0, maximum = 5.0)]
        spot_markup_per_kwh: Option<f64>,
        /// IANA name of the windows' and dates' time zone; none: the price zone's.
        #[schema(max_length = 64)]
        timezone: Option<String>,
    }
}

const PRICE_FIELDS: &[&str] = &["price", "timestamp"];
const COMPONENT_FIELDS: &[&str] = &[
    "name",
    "price_per_kwh",
    "windows",
    "valid_from",
    "valid_until",
];
const WINDOW_FIELDS: &[&str] = &["days", "from", "to", "price_per_kwh"];

struct ContractPatch {
    energy_contract_type: Patch<String>,
    energy_prices: Patch<Vec<ContractPrice>>,
    building_id: Patch<Uuid>,
    meter_id: Patch<String>,
    supplier: Patch<String>,
    currency_energy_price: Patch<String>,
    energy_price_includes_external_components: Patch<bool>,
    tariff_components: Patch<Vec<TariffComponent>>,
    vat_percentage: Patch<f64>,
    spot_markup_per_kwh: Patch<f64>,
    timezone: Patch<String>,
}

fn price_per_kwh(f: &mut Fields, key: &str) -> Patch<f64> {
    f.number(key, -MAX_PRICE_PER_KWH, MAX_PRICE_PER_KWH, false)
}

fn date(f: &mut Fields, key: &str) -> Patch<NaiveDate> {
    match f.string(key, 10, false) {
        Patch::Set(s) => match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
            Ok(d) => Patch::Set(d),
            Err(_) => {
                f.error(key, "date_parsing", "Input should be a date YYYY-MM-DD");
                Patch::Absent
            }
        },
        Patch::Null => Patch::Null,
        Patch::Absent => Patch::Absent,
    }
}

fn parse_price(f: &mut Fields) -> Option<ContractPrice> {
    let price = price_per_kwh(f, "price");
    let price = f.required("price", price);
    let timestamp = f.datetime("timestamp");
    let timestamp = f.required("timestamp", timestamp);
    Some(ContractPrice {
        price: price?,
        timestamp: timestamp?,
    })
}

fn parse_window(f: &mut Fields) -> Option<TimeWindow> {
    let days = f.list_of("days", &WEEKDAYS, 7);
    let days = f.required("days", days);
    if days.as_ref().is_some_and(Vec::is_empty) {
        f.error("days", "too_short", "List should have at least 1 item");
    }
    let from = f.time_of_day("from");
    let from = f.required("from", from);
    let to = f.time_of_day("to");
    let to = f.required("to", to);
    let price = price_per_kwh(f, "price_per_kwh");
    let price = f.required("price_per_kwh", price);
    Some(TimeWindow {
        days: days?,
        from: from?,
        to: to?,
        price_per_kwh: price?,
    })
}

fn parse_component(f: &mut Fields) -> Option<TariffComponent> {
    let name = f.string("name", 100, false);
    let name = f.required("name", name);
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        f.error(
            "name",
            "string_too_short",
            "String should have at least 1 character",
        );
    }
    let price = price_per_kwh(f, "price_per_kwh");
    let price = f.required("price_per_kwh", price);
    let windows = f.list_of_objects("windows", MAX_WINDOWS, WINDOW_FIELDS, parse_window);
    let mut component = TariffComponent {
        name: name?,
        price_per_kwh: price?,
        windows: Vec::new(),
        valid_from: None,
        valid_until: None,
    };
    if let Patch::Set(windows) = windows {
        component.windows = windows;
    }
    date(f, "valid_from").apply(&mut component.valid_from);
    date(f, "valid_until").apply(&mut component.valid_until);
    Some(component)
}

fn parse_patch(f: &mut Fields) -> ContractPatch {
    let types: Vec<&str> = ContractType::ALL.iter().map(|t| t.as_str()).collect();
    ContractPatch {
        energy_contract_type: f.one_of("energy_contract_type", &types),
        energy_prices: f.list_of_objects(
            "energy_prices",
            MAX_ENERGY_PRICES,
            PRICE_FIELDS,
            parse_price,
        ),
        building_id: f.uuid("building_id"),
        meter_id: f.string("meter_id", 19, true),
        supplier: f.string("supplier", 100, false),
        currency_energy_price: f.string("currency_energy_price", 3, false),
        energy_price_includes_external_components: f
            .bool("energy_price_includes_external_components"),
        tariff_components: f.list_of_objects(
            "tariff_components",
            MAX_COMPONENTS,
            COMPONENT_FIELDS,
            parse_component,
        ),
        vat_percentage: f.number("vat_percentage", 0.0, 100.0, false),
        spot_markup_per_kwh: price_per_kwh(f, "spot_markup_per_kwh"),
        timezone: f.string("timezone", 64, false),
    }
}

fn apply_patch(
    patch: ContractPatch,
    r: &mut EnergyContractRecord,
    now: DateTime<Utc>,
) -> Result<(), Vec<FieldError>> {
    let c = &mut r.contract;
    match patch.energy_contract_type {
        Patch::Absent => {}
        Patch::Null => c.energy_contract_type = None,
        Patch::Set(t) => c.energy_contract_type = ContractType::parse(&t),
    }
    match patch.energy_prices {
        Patch::Absent => {}
        Patch::Null => c.energy_prices.clear(),
        Patch::Set(mut prices) => {
            prices.sort_by_key(|p| p.timestamp);
            c.energy_prices = prices;
        }
    }
    patch.building_id.apply(&mut r.building_id);
    patch.meter_id.apply(&mut c.meter_id);
    patch.supplier.apply(&mut c.supplier);
    patch
        .currency_energy_price
        .apply(&mut c.currency_energy_price);
    patch
        .energy_price_includes_external_components
        .apply(&mut c.energy_price_includes_external_components);
    match patch.tariff_components {
        Patch::Absent => {}
        Patch::Null => c.tariff_components.clear(),
        Patch::Set(components) => c.tariff_components = components,
    }
    patch.vat_percentage.apply(&mut c.vat_percentage);
    patch.spot_markup_per_kwh.apply(&mut c.spot_markup_per_kwh);
    patch.timezone.apply(&mut c.timezone);
    let errors = c.validate();
    if !errors.is_empty() {
        return Err(errors);
    }
    r.updated_at = now;
    Ok(())
}

/// List a user's energy contracts.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts", tag = "User Energy Contracts",
    params(UserPath, IncludeDeleted),
    responses((status = 200, body = [EnergyContractOut])),
    security(("bearer" = [])))]
pub async fn list_energy_contracts(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<Vec<EnergyContractOut>>> {
    // A user of another organisation, or none, is a 404 rather than an empty list.
    state
        .store()
        .get_user(access.org, path.user_id, query.include_deleted)
        .await?;
    let contracts = state
        .store()
        .list_energy_contracts(access.org, path.user_id, query.include_deleted)
        .await?;
    Ok(Json(
        contracts.into_iter().map(EnergyContractOut::from).collect(),
    ))
}

/// Register a user's energy contract. The user's devices are re-planned on it within one worker
/// cycle; a contract for a building wins over one for all the user's buildings, and among equals
/// the newest applies.
#[utoipa::path(post, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts", tag = "User Energy Contracts",
    params(UserPath), request_body = EnergyContractWrite,
    responses((status = 200, body = EnergyContractOut)),
    security(("bearer" = [])))]
pub async fn create_energy_contract(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<UserPath>,
    body: JsonObject,
) -> ApiResult<Json<EnergyContractOut>> {
    let now = state.now();
    state
        .store()
        .get_user(access.org, path.user_id, false)
        .await?;
    let mut f = Fields::new(body, EnergyContractWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    f.finish()?;
    check_building(
        &state,
        &access,
        path.user_id,
        ("building_id", &patch.building_id),
    )
    .await?;
    let mut record = EnergyContractRecord {
        id: Uuid::now_v7(),
        org_id: access.org.id(),
        user_id: path.user_id,
        building_id: None,
        contract: EnergyContract::default(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    apply_patch(patch, &mut record, now).map_err(ApiError::Invalid)?;
    let created = state
        .store()
        .create_energy_contract(access.org, &record)
        .await?;
    Ok(Json(created.into()))
}

/// Get one energy contract.
#[utoipa::path(get, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts/{energy_contract_id}", tag = "User Energy Contracts",
    params(EnergyContractPath, IncludeDeleted),
    responses((status = 200, body = EnergyContractOut)),
    security(("bearer" = [])))]
pub async fn get_energy_contract(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<EnergyContractPath>,
    Q(query): Q<IncludeDeleted>,
) -> ApiResult<Json<EnergyContractOut>> {
    let contract = state
        .store()
        .get_energy_contract(
            access.org,
            path.user_id,
            path.energy_contract_id,
            query.include_deleted,
        )
        .await?;
    Ok(Json(contract.into()))
}

/// Update an energy contract (partial: send only the fields to change; a list sent replaces the
/// stored one).
#[utoipa::path(put, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts/{energy_contract_id}", tag = "User Energy Contracts",
    params(EnergyContractPath), request_body = EnergyContractWrite,
    responses((status = 200, body = EnergyContractOut)),
    security(("bearer" = [])))]
pub async fn update_energy_contract(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<EnergyContractPath>,
    body: JsonObject,
) -> ApiResult<Json<EnergyContractOut>> {
    let now = state.now();
    let mut f = Fields::new(body, EnergyContractWrite::FIELDS, READ_ONLY);
    let patch = parse_patch(&mut f);
    f.finish()?;
    // The contract first: another organisation's id is a 404, not a complaint about the body.
    state
        .store()
        .get_energy_contract(access.org, path.user_id, path.energy_contract_id, false)
        .await?;
    check_building(
        &state,
        &access,
        path.user_id,
        ("building_id", &patch.building_id),
    )
    .await?;
    let updated = state
        .store()
        .update_energy_contract(
            access.org,
            path.user_id,
            path.energy_contract_id,
            Box::new(move |r| apply_patch(patch, r, now)),
        )
        .await?;
    Ok(Json(updated.into()))
}

/// Delete an energy contract (soft): the user's devices go back to the next contract that
/// applies, or to the day-ahead price.
#[utoipa::path(delete, path = "/api/partners/v2.0/org/{org_id}/users/{user_id}/energy-contracts/{energy_contract_id}", tag = "User Energy Contracts",
    params(EnergyContractPath),
    responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete_energy_contract(
    State(state): State<AppState>,
    access: OrgAccess,
    Ids(path): Ids<EnergyContractPath>,
) -> ApiResult<StatusCode> {
    state
        .store()
        .delete_energy_contract(
            access.org,
            path.user_id,
            path.energy_contract_id,
            state.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::declaration::{accepts_what_it_shows, all_null, properties};

    #[test]
    fn the_declared_fields_are_documented_accepted_and_read() {
        assert_eq!(
            properties::<EnergyContractWrite>(),
            EnergyContractWrite::FIELDS
        );
        let mut f = Fields::new(
            all_null(EnergyContractWrite::FIELDS),
            EnergyContractWrite::FIELDS,
            READ_ONLY,
        );
        parse_patch(&mut f);
        assert_eq!(f.unread(), Vec::<&str>::new());
        accepts_what_it_shows::<EnergyContractOut>(EnergyContractWrite::FIELDS, READ_ONLY);
    }
}
