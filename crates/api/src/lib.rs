//! Voltplan's HTTP API: the Podero-compatible partner API, OAuth2, OpenAPI and operations
//! endpoints. Handlers translate HTTP to store calls; the domain lives in `voltplan-core`.

pub mod auth;
mod auth_session;
mod body;
mod boost;
mod buildings;
mod connect;
mod cues;
mod docs;
mod energy_contracts;
mod error;
mod grid_groups;
pub mod ocpp;
mod onboarding;
mod ops;
mod org_vehicles;
mod params;
mod plan;
mod prices;
mod public_url;
mod sandbox;
mod schemas;
mod sessions;
mod state;
mod users;
mod vehicles;
mod wallboxes;
mod webhooks;
mod webhooks_in;

pub use auth::secret::{generate_client_id, generate_client_secret, hash_secret};
pub use docs::ApiDoc;
pub use error::ApiError;
pub use public_url::{InvalidPublicUrl, PublicUrl};
pub use state::{ApiConfig, AppState};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The router and the OpenAPI document it was built with (they cannot drift: each route is
/// registered together with its documentation).
pub fn router_and_openapi(state: AppState) -> (Router, serde_json::Value) {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::oauth::token))
        .routes(routes!(auth::oauth::revoke))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(
            buildings::list_buildings,
            buildings::create_building
        ))
        .routes(routes!(
            buildings::get_building,
            buildings::update_building,
            buildings::delete_building
        ))
        .routes(routes!(
            energy_contracts::list_energy_contracts,
            energy_contracts::create_energy_contract
        ))
        .routes(routes!(
            energy_contracts::get_energy_contract,
            energy_contracts::update_energy_contract,
            energy_contracts::delete_energy_contract
        ))
        .routes(routes!(
            grid_groups::list_grid_groups,
            grid_groups::create_grid_group
        ))
        .routes(routes!(
            grid_groups::get_grid_group,
            grid_groups::update_grid_group,
            grid_groups::delete_grid_group
        ))
        .routes(routes!(
            grid_groups::get_grid_limits,
            grid_groups::update_grid_limits
        ))
        .routes(routes!(grid_groups::get_joint_plan))
        .routes(routes!(vehicles::list_vehicles, vehicles::create_vehicle))
        .routes(routes!(
            vehicles::get_vehicle,
            vehicles::update_vehicle,
            vehicles::delete_vehicle
        ))
        .routes(routes!(
            vehicles::policy::get_charge_policy,
            vehicles::policy::update_charge_policy
        ))
        .routes(routes!(org_vehicles::list_org_vehicles))
        .routes(routes!(boost::start_boost, boost::cancel_boost))
        .routes(routes!(auth_session::create_auth_session))
        .routes(routes!(onboarding::create_onboarding))
        .routes(routes!(onboarding::get_onboarding))
        .routes(routes!(cues::resolve_cue))
        .routes(routes!(cues::report_cue_state))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::update_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::retry_delivery))
        .routes(routes!(plan::get_plan))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::vehicle_savings))
        .routes(routes!(sessions::vehicle_data))
        .routes(routes!(sessions::org_savings))
        .routes(routes!(
            wallboxes::list_wallboxes,
            wallboxes::create_wallbox
        ))
        .routes(routes!(
            wallboxes::get_wallbox,
            wallboxes::update_wallbox,
            wallboxes::delete_wallbox
        ))
        .routes(routes!(
            wallboxes::start_wallbox_boost,
            wallboxes::cancel_wallbox_boost
        ))
        .routes(routes!(wallboxes::rotate_ocpp_password))
        .routes(routes!(wallboxes::list_wallbox_sessions))
        .routes(routes!(wallboxes::wallbox_savings))
        .routes(routes!(wallboxes::wallbox_data))
        .routes(routes!(sandbox::sandbox_vehicle))
        .routes(routes!(sandbox::plug_in))
        .routes(routes!(sandbox::unplug))
        .routes(routes!(sandbox::drive))
        .routes(routes!(sandbox::set_level))
        .routes(routes!(sandbox::revoke_authorization))
        .routes(routes!(sandbox::restore_authorization))
        .routes(routes!(prices::upload::upload_prices))
        .routes(routes!(prices::read::read_prices))
        .routes(routes!(prices::read::fetch_status))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .with_state(state.clone())
        .split_for_parts();
    let openapi = docs::complete(&openapi);
    let spec = openapi.clone();
    let router = api
        // Clients that drop the trailing slash still reach the token endpoints.
        .route("/oauth2/token", axum::routing::post(auth::oauth::token))
        .route(
            "/oauth2/revoke_token",
            axum::routing::post(auth::oauth::revoke),
        )
        .route(
            "/api/partners/v2.0/openapi.json",
            get(move || async move { axum::Json(spec) }),
        )
        .route("/api/partners/v2.0/docs", get(docs::docs_page))
        // The driver's consent page of an auth_session: a browser page, not partner API, so it
        // stays out of the OpenAPI document.
        .route(
            "/connect/{session_id}",
            get(connect::consent::consent_page).post(connect::consent::decide),
        )
        // Device onboarding and cue re-links (`connect/onboarding.rs`).
        .route(
            "/connect/onboarding/{session_id}",
            get(connect::onboarding::start_page),
        )
        .route(
            "/connect/onboarding/{session_id}/brand",
            axum::routing::post(connect::onboarding::choose_brand),
        )
        .route(
            "/connect/onboarding/{session_id}/vehicles",
            get(connect::onboarding::vehicles_page).post(connect::onboarding::choose_vehicles),
        )
        .route(
            "/connect/callback/{cloud}",
            get(connect::onboarding::callback),
        )
        .route(
            "/connect/sandbox/login",
            get(connect::sandbox_login::login_page).post(connect::sandbox_login::login),
        )
        // Vehicle clouds' webhooks (their own signatures; not partner API).
        .route(
            "/webhooks/smartcar",
            axum::routing::post(webhooks_in::smartcar),
        )
        // The OCPP central system: chargers' WebSockets (not partner API: outside the document).
        .route("/ocpp/{charge_point_id}", get(ocpp::handshake::connect))
        .route(
            "/api/partners/v2.0/docs/redoc.standalone.js",
            get(docs::redoc_js),
        )
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state,
            ops::limit_request_time,
        ))
        .layer(axum::middleware::from_fn(ops::record_metrics))
        .layer(CatchPanicLayer::custom(ops::panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(ops::request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]));
    (router, openapi)
}

pub fn router(state: AppState) -> Router {
    router_and_openapi(state).0
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    ops::install_metrics_recorder();
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
