//! The OpenAPI 3.1 document, generated from the handlers, and a docs page that needs no internet
//! (Redoc is vendored into the binary).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use utoipa::Modify;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

const DESCRIPTION: &str = include_str!("openapi_description.md");

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Voltplan Partner API", version = "2.0", description = DESCRIPTION,
         license(name = "Apache-2.0")),
    modifiers(&Security),
    tags(
        (name = "Authentication", description = "OAuth2 client credentials"),
        (name = "Users"), (name = "User Buildings"), (name = "User Electric Vehicles"),
        (name = "Devices", description = "Organisation-wide device figures"),
        (name = "Sandbox", description = "Drive the simulated EVs of the built-in sandbox; not part of the Podero API"),
        (name = "Trading", description = "Day-ahead price uploads (Podero-compatible)"),
        (name = "Prices", description = "Day-ahead prices per zone; not part of the Podero API"),
        (name = "Operations", description = "Health and metrics; not part of the Podero API")
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Access token from POST /oauth2/token/"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

const REDOC_JS: &str = include_str!("../assets/vendor/redoc.standalone.js");

pub async fn docs_page() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Voltplan Partner API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/api/partners/v2.0/openapi.json"></redoc>
<script src="/api/partners/v2.0/docs/redoc.standalone.js"></script></body></html>"#,
    )
}

pub async fn redoc_js() -> Response {
    (
        [
            (CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
        .into_response()
}
