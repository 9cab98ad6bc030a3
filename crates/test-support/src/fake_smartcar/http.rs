//! The fake's HTTP side: Connect's login page, the token endpoint and the Vehicles API v2.0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{
    AuthorizationCode, CODE_LIFETIME, FakeAction, FakeCommand, FakeConfig, Grant, KNOWN_SCOPES,
    REFRESH_GRACE, World, error_body, iso,
};

pub(crate) struct Shared {
    pub config: FakeConfig,
    pub world: Mutex<World>,
}

impl Shared {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        // A panicked handler leaves a usable world; the test sees its own failure.
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type AppState = Arc<Shared>;

pub(crate) fn router(shared: AppState) -> Router {
    let config = &shared.config;
    let connect = config.connect_prefix.trim_end_matches('/');
    let auth = config.auth_prefix.trim_end_matches('/');
    let api = config.api_prefix.trim_end_matches('/');
    Router::new()
        .route(
            &format!("{connect}/oauth/authorize"),
            get(authorize_page).post(authorize_submit),
        )
        .route(&format!("{auth}/oauth/token"), post(token))
        .route(&format!("{api}/user"), get(user))
        .route(&format!("{api}/vehicles"), get(vehicle_list))
        .route(&format!("{api}/vehicles/{{id}}"), get(vehicle_attributes))
        .route(
            &format!("{api}/vehicles/{{id}}/{{*rest}}"),
            get(vehicle_get).post(vehicle_post),
        )
        .with_state(shared)
}

// ---------------------------------------------------------------- Connect

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn bad_request_page(what: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><title>Smartcar Connect</title><h1>Invalid request</h1><p>{}</p>",
            html_escape(what)
        )),
    )
        .into_response()
}

/// Checks Connect's parameters ("Redirect to Connect"); the message names the first problem.
fn check_connect_params(
    config: &FakeConfig,
    registered_later: &[String],
    params: &HashMap<String, String>,
) -> Result<(), String> {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    if get("client_id") != config.client_id {
        return Err("unknown client_id".into());
    }
    if !config
        .redirect_uris
        .iter()
        .chain(registered_later)
        .any(|uri| uri == get("redirect_uri"))
    {
        return Err("redirect_uri is not registered for this application".into());
    }
    if get("response_type") != "code" {
        return Err("response_type must be code".into());
    }
    let scopes: Vec<&str> = get("scope").split_whitespace().collect();
    if scopes.is_empty() {
        return Err("scope is missing".into());
    }
    if let Some(unknown) = scopes
        .iter()
        .map(|s| s.trim_start_matches("required:"))
        .find(|s| !KNOWN_SCOPES.contains(s))
    {
        return Err(format!("unknown permission {unknown}"));
    }
    if get("state").is_empty() {
        return Err("state is missing".into());
    }
    if !matches!(get("mode"), "" | "live" | "test" | "simulated") {
        return Err("mode must be live, test or simulated".into());
    }
    Ok(())
}

fn login_form(
    config: &FakeConfig,
    params: &HashMap<String, String>,
    error: Option<&str>,
) -> String {
    let hidden: String = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "mode",
        "make",
        "flags",
        "approval_prompt",
    ]
    .iter()
    .filter_map(|name| {
        params.get(*name).map(|value| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                html_escape(value)
            )
        })
    })
    .collect();
    let error = error
        .map(|e| format!("<p class=\"error\">{}</p>", html_escape(e)))
        .unwrap_or_default();
    let action = format!(
        "{}/oauth/authorize",
        config.connect_prefix.trim_end_matches('/')
    );
    format!(
        "<!doctype html><html><head><title>Smartcar Connect (fake)</title></head><body>\
         <h1>Log in to your car's connected services account</h1>{error}\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <label>E-mail <input type=\"email\" name=\"email\"></label>\
         <label>Password <input type=\"password\" name=\"password\"></label>\
         <p>Permissions: {}</p>\
         <button type=\"submit\" name=\"action\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\
         </form></body></html>",
        html_escape(params.get("scope").map(String::as_str).unwrap_or(""))
    )
}

async fn authorize_page(
    State(shared): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let registered_later = shared.world().redirect_uris.clone();
    if let Err(problem) = check_connect_params(&shared.config, &registered_later, &params) {
        return bad_request_page(&problem);
    }
    Html(login_form(&shared.config, &params, None)).into_response()
}

fn redirect_to(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return bad_request_page("redirect_uri is not a URL");
    };
    {
        let mut query = target.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
    }
    match HeaderValue::from_str(target.as_str()) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => bad_request_page("redirect_uri cannot be used"),
    }
}

async fn authorize_submit(
    State(shared): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let registered_later = shared.world().redirect_uris.clone();
    if let Err(problem) = check_connect_params(&shared.config, &registered_later, &form) {
        return bad_request_page(&problem);
    }
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let redirect_uri = get("redirect_uri");
    let state = get("state");
    if get("action") == "deny" {
        return redirect_to(
            redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "User denied access to application."),
                ("state", state),
            ],
        );
    }
    let mut world = shared.world();
    let user_id = match world.accounts.get(get("email")) {
        Some(account) if account.password == get("password") && !account.revoked => {
            account.user_id.clone()
        }
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                Html(login_form(
                    &shared.config,
                    &form,
                    Some("Invalid e-mail or password."),
                )),
            )
                .into_response();
        }
    };
    let code = Uuid::new_v4().to_string();
    let scopes = get("scope")
        .split_whitespace()
        .map(|s| s.trim_start_matches("required:").to_owned())
        .collect();
    let expires_at = world.now + CODE_LIFETIME;
    world.codes.insert(
        code.clone(),
        AuthorizationCode {
            grant: Grant { user_id, scopes },
            redirect_uri: redirect_uri.to_owned(),
            expires_at,
            used: false,
        },
    );
    drop(world);
    redirect_to(redirect_uri, &[("code", &code), ("state", state)])
}

// ---------------------------------------------------------------- tokens

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn client_authenticated(config: &FakeConfig, headers: &HeaderMap) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", config.client_id, config.client_secret);
    decoded == expected.as_bytes()
}

/// `POST /oauth/token` ("Auth code exchange", "Token refresh").
async fn token(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut world = shared.world();
    world.token_requests += 1;
    if !client_authenticated(&shared.config, &headers) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Invalid client credentials.",
        );
    }
    if headers
        .get(header::USER_AGENT)
        .is_none_or(|ua| ua.as_bytes().is_empty())
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "A User-Agent header is required.",
        );
    }
    let get = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let now = world.now;
    let grant = match get("grant_type") {
        "authorization_code" => {
            let redirect_uri = get("redirect_uri").to_owned();
            let Some(code) = world.codes.get_mut(get("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid code.");
            };
            if code.used || now >= code.expires_at || code.redirect_uri != redirect_uri {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid, expired or already used code, or redirect_uri mismatch.",
                );
            }
            code.used = true;
            code.grant.clone()
        }
        "refresh_token" => {
            let Some(refresh) = world.refresh_tokens.get_mut(get("refresh_token")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid refresh token.",
                );
            };
            let spent = refresh
                .used_at
                .is_some_and(|used_at| now > used_at + REFRESH_GRACE);
            if spent || now >= refresh.expires_at {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Expired or already used refresh token.",
                );
            }
            refresh.used_at.get_or_insert(now);
            refresh.grant.clone()
        }
        "" => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required.",
            );
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant_type.",
            );
        }
    };
    if world.user_revoked(&grant.user_id) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The user revoked access.",
        );
    }
    let body = world.issue_tokens(grant);
    (StatusCode::OK, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------- API

fn api_response(status: StatusCode, body: Value, extra: &[(&'static str, String)]) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&Uuid::new_v4().to_string()) {
        headers.insert("sc-request-id", id);
    }
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(*name, value);
        }
    }
    response
}

fn api_error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    description: &str,
    resolution: Option<&str>,
) -> Response {
    api_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        error_body(kind, code, status, description, resolution),
        &[],
    )
}

fn unauthenticated() -> Response {
    api_error(
        401,
        "AUTHENTICATION",
        None,
        "The authorization header is missing or malformed, or it contains invalid or expired \
         authentication credentials.",
        Some("REAUTHENTICATE"),
    )
}

/// The grant behind a bearer token, if the token is known, unexpired and its user not revoked.
fn bearer_grant(world: &World, headers: &HeaderMap) -> Option<Grant> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let access = world.access_tokens.get(token.trim())?;
    if world.now >= access.expires_at || world.user_revoked(&access.grant.user_id) {
        return None;
    }
    Some(access.grant.clone())
}

async fn user(State(shared): State<AppState>, headers: HeaderMap) -> Response {
    let world = shared.world();
    match bearer_grant(&world, &headers) {
        Some(grant) => api_response(StatusCode::OK, json!({ "id": grant.user_id }), &[]),
        None => unauthenticated(),
    }
}

async fn vehicle_list(
    State(shared): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let world = shared.world();
    let Some(grant) = bearer_grant(&world, &headers) else {
        return unauthenticated();
    };
    let ids: Vec<String> = world
        .account_by_user(&grant.user_id)
        .map(|a| a.vehicle_ids.clone())
        .unwrap_or_default();
    let number = |name: &str, default: usize| {
        params
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let (limit, offset) = (number("limit", 10).clamp(1, 50), number("offset", 0));
    let page: Vec<&String> = ids.iter().skip(offset).take(limit).collect();
    api_response(
        StatusCode::OK,
        json!({ "vehicles": page, "paging": { "count": ids.len(), "offset": offset } }),
        &[],
    )
}

async fn vehicle_attributes(
    state: State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    vehicle_endpoint(state, headers, id, Method::GET, String::new(), None).await
}

async fn vehicle_get(
    state: State<AppState>,
    headers: HeaderMap,
    Path((id, rest)): Path<(String, String)>,
) -> Response {
    vehicle_endpoint(state, headers, id, Method::GET, format!("/{rest}"), None).await
}

async fn vehicle_post(
    state: State<AppState>,
    headers: HeaderMap,
    Path((id, rest)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let body = serde_json::from_slice::<Value>(&body).ok();
    vehicle_endpoint(state, headers, id, Method::POST, format!("/{rest}"), body).await
}

/// The permission an endpoint needs ("Permissions" per endpoint in the API reference).
fn permission(method: &Method, path: &str) -> Option<&'static str> {
    match (method.as_str(), path) {
        ("GET", "") => Some("read_vehicle_info"),
        ("GET", "/vin") => Some("read_vin"),
        ("GET", "/battery" | "/battery/capacity") => Some("read_battery"),
        ("GET", "/charge" | "/charge/limit") => Some("read_charge"),
        ("POST", "/charge" | "/charge/limit") => Some("control_charge"),
        ("GET", "/location") => Some("read_location"),
        _ => None,
    }
}

/// One answer: status, body, and the `sc-*` data headers.
type Answer = (u16, Value, Vec<(&'static str, String)>);

fn error_answer(
    status: u16,
    kind: &str,
    code: Option<&str>,
    description: &str,
    resolution: Option<&str>,
) -> Answer {
    (
        status,
        error_body(kind, code, status, description, resolution),
        Vec::new(),
    )
}

fn not_capable() -> Answer {
    error_answer(
        501,
        "COMPATIBILITY",
        Some("VEHICLE_NOT_CAPABLE"),
        "The vehicle is not capable of performing your request.",
        None,
    )
}

/// A read of one vehicle endpoint (also a batch part).
fn read(world: &World, grant: &Grant, id: &str, path: &str) -> Answer {
    let Some(record) = world.vehicles.get(id) else {
        return error_answer(
            404,
            "RESOURCE_NOT_FOUND",
            Some("PATH"),
            "Unknown vehicle.",
            None,
        );
    };
    if let Some(needed) = permission(&Method::GET, path)
        && !grant.scopes.iter().any(|s| s == needed)
    {
        return error_answer(
            403,
            "PERMISSION",
            None,
            "Your application has insufficient permissions to access the requested resource.",
            Some("REAUTHENTICATE"),
        );
    }
    let car = &record.car;
    let data_headers = vec![
        ("sc-data-age", iso(record.updated_at)),
        ("sc-fetched-at", iso(world.now)),
        ("sc-unit-system", "metric".to_owned()),
    ];
    let body = match path {
        "" => json!({ "id": id, "make": car.make, "model": car.model, "year": car.year }),
        "/vin" => json!({ "vin": car.vin }),
        "/battery" => json!({
            "percentRemaining": car.level_percent / 100.0,
            "range": car.full_range_km * car.level_percent / 100.0,
        }),
        "/battery/capacity" if car.has_capacity => json!({ "capacity": car.capacity_kwh }),
        "/charge" => json!({ "isPluggedIn": car.plugged_in, "state": car.charge_state() }),
        "/charge/limit" if car.has_charge_limit => json!({ "limit": car.charge_limit }),
        "/location" if car.has_location => {
            json!({ "latitude": car.latitude, "longitude": car.longitude })
        }
        "/battery/capacity" | "/charge/limit" | "/location" => return not_capable(),
        _ => {
            return error_answer(
                404,
                "RESOURCE_NOT_FOUND",
                Some("PATH"),
                "The requested resource does not exist.",
                None,
            );
        }
    };
    (200, body, data_headers)
}

fn success(message: &str) -> Answer {
    (
        200,
        json!({ "status": "success", "message": message }),
        Vec::new(),
    )
}

fn validation(description: &str) -> Answer {
    error_answer(400, "VALIDATION", Some("PARAMETER"), description, None)
}

/// A command or a batch.
fn write(world: &mut World, grant: &Grant, id: &str, path: &str, body: Option<Value>) -> Answer {
    let now = world.now;
    if path == "/batch" {
        let Some(requests) = body
            .as_ref()
            .and_then(|b| b.get("requests"))
            .and_then(Value::as_array)
        else {
            return validation("requests must be an array of {path}.");
        };
        let mut responses = Vec::new();
        for request in requests {
            let Some(path) = request.get("path").and_then(Value::as_str) else {
                return validation("every request needs a path.");
            };
            let (code, body, headers) = read(world, grant, id, path);
            let headers: serde_json::Map<String, Value> = headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), Value::from(value)))
                .collect();
            responses.push(json!({ "path": path, "code": code, "body": body, "headers": headers }));
        }
        return (200, json!({ "responses": responses }), Vec::new());
    }
    if let Some(needed) = permission(&Method::POST, path)
        && !grant.scopes.iter().any(|s| s == needed)
    {
        return error_answer(
            403,
            "PERMISSION",
            None,
            "Your application has insufficient permissions to access the requested resource.",
            Some("REAUTHENTICATE"),
        );
    }
    let Some(record) = world.vehicles.get_mut(id) else {
        return error_answer(
            404,
            "RESOURCE_NOT_FOUND",
            Some("PATH"),
            "Unknown vehicle.",
            None,
        );
    };
    match path {
        "/charge" => {
            let action = body
                .as_ref()
                .and_then(|b| b.get("action"))
                .and_then(Value::as_str);
            match action {
                Some("START") => {
                    if !record.car.plugged_in {
                        return error_answer(
                            409,
                            "VEHICLE_STATE",
                            Some("CHARGING_PLUG_NOT_CONNECTED"),
                            "The vehicle's charging plug is not connected.",
                            None,
                        );
                    }
                    if record.car.charging {
                        return error_answer(
                            409,
                            "VEHICLE_STATE",
                            Some("CHARGING_IN_PROGRESS"),
                            "The vehicle is currently charging and unable to perform your request.",
                            None,
                        );
                    }
                    // A car at its limit accepts the command and stays put.
                    record.car.charging = !record.car.at_limit();
                    record.commands.push(FakeCommand {
                        at: now,
                        action: FakeAction::StartCharging,
                    });
                }
                Some("STOP") => {
                    record.car.charging = false;
                    record.commands.push(FakeCommand {
                        at: now,
                        action: FakeAction::StopCharging,
                    });
                }
                _ => return validation("action must be START or STOP."),
            }
            record.updated_at = now;
            success("Successfully sent request to vehicle")
        }
        "/charge/limit" => {
            if !record.car.has_charge_limit {
                return not_capable();
            }
            let Some(limit) = body
                .as_ref()
                .and_then(|b| b.get("limit"))
                .and_then(Value::as_f64)
                .filter(|limit| (0.5..=1.0).contains(limit))
            else {
                return validation("limit must be a number between 0.5 and 1.");
            };
            record.car.charge_limit = limit;
            if record.car.charging && record.car.at_limit() {
                record.car.charging = false;
            }
            record.commands.push(FakeCommand {
                at: now,
                action: FakeAction::SetChargeLimit(limit),
            });
            record.updated_at = now;
            success("Successfully sent request to vehicle")
        }
        _ => error_answer(
            404,
            "RESOURCE_NOT_FOUND",
            Some("PATH"),
            "The requested resource does not exist.",
            None,
        ),
    }
}

/// Every request about one car: counted, authenticated, throttled, then answered.
async fn vehicle_endpoint(
    State(shared): State<AppState>,
    headers: HeaderMap,
    id: String,
    method: Method,
    path: String,
    body: Option<Value>,
) -> Response {
    let mut world = shared.world();
    let now = world.now;
    if let Some(record) = world.vehicles.get_mut(&id) {
        record.api_calls += 1;
    }
    let Some(grant) = bearer_grant(&world, &headers) else {
        return unauthenticated();
    };
    let Some(record) = world.vehicles.get(&id) else {
        return api_error(
            404,
            "RESOURCE_NOT_FOUND",
            Some("PATH"),
            "Unknown vehicle.",
            None,
        );
    };
    if record.user_id != grant.user_id {
        return api_error(
            404,
            "RESOURCE_NOT_FOUND",
            Some("PATH"),
            "Unknown vehicle.",
            None,
        );
    }
    if let Some(until) = record.throttled_until.filter(|until| *until > now) {
        let seconds = ((until - now).num_milliseconds() + 999) / 1000;
        let mut response = api_error(
            429,
            "RATE_LIMIT",
            Some("VEHICLE"),
            "You have reached the throttling rate limit for this vehicle. Please see the \
             retry-after header (seconds) for when to retry the request.",
            Some("RETRY_LATER"),
        );
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let (status, body, extra) = if method == Method::GET {
        read(&world, &grant, &id, &path)
    } else {
        write(&mut world, &grant, &id, &path, body)
    };
    api_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
        &extra,
    )
}
