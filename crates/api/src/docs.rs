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
        (name = "Users"), (name = "User Buildings"),
        (name = "User Energy Contracts", description = "What a user pays per kWh: the contract (Podero) and Voltplan's tariff extension (grid fees by time window, VAT, spot markup); devices are planned on this price"),
        (name = "User Electric Vehicles"),
        (name = "Grid Groups", description = "Shared power limits: sites and feeders whose vehicles are planned together so their total draw stays under a limit that may vary in time (§14a EnWG); not part of the Podero API"),
        (name = "Device Onboarding Sessions", description = "Drivers connect their own cars: a session, and the Connect pages it opens"),
        (name = "Cues", description = "Pending actions of devices (re-authentication), started and reported by their signed links"),
        (name = "Webhooks", description = "Subscriptions to signed events (Standard Webhooks), their secrets and delivery logs; not part of the Podero API"),
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

/// The statuses every operation of a kind answers, whether or not its handler mentions them:
/// they come from the extractors and layers in front of every handler (bearer check, body
/// reading, path and query parsing, the database). Added here once so that the document says what
/// the server does (generated clients and fuzzers rely on it) without repeating it per handler.
pub fn complete(openapi: &utoipa::openapi::OpenApi) -> serde_json::Value {
    use serde_json::{Value, json};

    let mut doc = match serde_json::to_value(openapi) {
        Ok(doc) => doc,
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document could not be serialised");
            return Value::Null;
        }
    };
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert(
            "ErrorOut".to_owned(),
            json!({"type": "object", "required": ["detail"],
                   "properties": {"detail": {"type": "string"}}}),
        );
        schemas.insert(
            "ValidationErrorOut".to_owned(),
            json!({"type": "object", "required": ["detail"],
                   "description": "Every invalid field at once, Podero/Django-Ninja style.",
                   "properties": {"detail": {"type": "array", "items": {
                       "type": "object", "required": ["loc", "msg", "type"],
                       "properties": {
                           "loc": {"type": "array", "items": {"type": ["string", "integer"]},
                                   "description": "Where: `body`, `query` or `path`, then the field (list items by index)."},
                           "msg": {"type": "string"},
                           "type": {"type": "string"}}}}}}),
        );
    }
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}})
    };
    let retry_after = json!({"Retry-After": {"description": "Seconds to wait before retrying",
                                             "schema": {"type": "integer", "minimum": 0}}});
    add_links(&mut doc);
    tighten_write_schemas(&mut doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let bearer = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            let json_body = operation
                .get("requestBody")
                .and_then(|b| b.pointer("/content/application~1json"))
                .is_some();
            let parameters = operation
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let in_path = parameters.iter().any(|p| p["in"] == "path");
            let in_query = parameters.iter().any(|p| p["in"] == "query");
            let responses = operation
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            let Some(responses) = responses else { continue };
            // A handler's own description stays; what it left out (content, headers) is added.
            let mut add = |status: &str, response: Value| {
                let entry = responses.entry(status.to_owned()).or_insert(json!({}));
                let (Some(entry), Value::Object(response)) = (entry.as_object_mut(), response)
                else {
                    return;
                };
                for (key, value) in response {
                    let blank = entry
                        .get(&key)
                        .is_none_or(|v| v.as_str().is_some_and(str::is_empty));
                    if blank {
                        entry.insert(key, value);
                    }
                }
            };
            if bearer {
                let mut unauthorized = error(
                    "No, a malformed, an expired or a revoked access token (`WWW-Authenticate: Bearer`)",
                );
                unauthorized["headers"] =
                    json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
                add("401", unauthorized);
            }
            if json_body {
                add("400", error("The body is not well-formed JSON"));
                add("413", error("The body is larger than 1 MiB"));
                add(
                    "415",
                    error("The body is not declared as JSON (`Content-Type: application/json`)"),
                );
            }
            if json_body || in_path || in_query {
                let mut invalid = json!({
                    "description": "Invalid field(s) or parameter(s), each named in `detail[].loc`",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorOut"}}}});
                if !json_body && !in_query {
                    invalid["description"] = json!("A path id is not a UUID");
                }
                add("422", invalid);
            }
            if in_path && path.contains("{org_id}") {
                add(
                    "404",
                    error(
                        "No such object in the token's organisation (another organisation's id included)",
                    ),
                );
            }
            if path != "/metrics" {
                let mut unavailable = error(
                    "The database is unavailable or too slow right now; retry after `Retry-After` seconds",
                );
                unavailable["headers"] = retry_after.clone();
                add("503", unavailable);
            }
        }
    }
    doc
}

/// OpenAPI links from each create to every operation on what it created (and below it), so that
/// clients and stateful fuzzers can follow `POST …/users` → `GET …/users/{user_id}` → `POST
/// …/electric-vehicles` → `…/{electric_vehicle_id}/plan`. Derived from the paths: a create on
/// `P` answers the object whose `id` fills the `{…_id}` right after `P`.
fn add_links(doc: &mut serde_json::Value) {
    use serde_json::{Map, Value, json};

    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return;
    };
    // (path of the collection, parameter the new id fills)
    let creates: Vec<(String, String)> = paths
        .iter()
        .filter(|(_, ops)| ops.get("post").is_some())
        .filter_map(|(path, _)| {
            let child = paths.keys().find_map(|other| {
                let rest = other.strip_prefix(path.as_str())?.strip_prefix("/{")?;
                let (name, tail) = rest.split_once('}')?;
                (tail.is_empty() && name.ends_with("_id")).then(|| name.to_owned())
            })?;
            Some((path.clone(), child))
        })
        .collect();
    let mut links_by_create: Vec<(String, Map<String, Value>)> = Vec::new();
    for (collection, id_param) in &creates {
        let prefix = format!("{collection}/{{{id_param}}}");
        let mut links = Map::new();
        for (path, ops) in paths {
            if !(path == &prefix || path.starts_with(&format!("{prefix}/"))) {
                continue;
            }
            let Some(ops) = ops.as_object() else { continue };
            for op in ops.values() {
                let Some(operation_id) = op.get("operationId").and_then(Value::as_str) else {
                    continue;
                };
                let mut parameters = Map::new();
                for parameter in op
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let Some(name) = parameter["name"].as_str() else {
                        continue;
                    };
                    if parameter["in"] != "path" {
                        continue;
                    }
                    let source = if name == id_param {
                        "$response.body#/id".to_owned()
                    } else {
                        format!("$request.path.{name}")
                    };
                    // Only parameters the create's own path (or its answer) can supply.
                    if name == id_param || collection.contains(&format!("{{{name}}}")) {
                        parameters.insert(name.to_owned(), Value::String(source));
                    }
                }
                if parameters.len()
                    == op["parameters"]
                        .as_array()
                        .map_or(0, |p| p.iter().filter(|p| p["in"] == "path").count())
                {
                    links.insert(
                        operation_id.to_owned(),
                        json!({"operationId": operation_id, "parameters": parameters}),
                    );
                }
            }
        }
        links_by_create.push((collection.clone(), links));
    }
    for (collection, links) in links_by_create {
        if links.is_empty() {
            continue;
        }
        // Podero's creates answer 200; the wallbox's (ours) answers 201.
        let Some(post) = doc
            .get_mut("paths")
            .and_then(|p| p.get_mut(&collection))
            .and_then(|ops| ops.get_mut("post"))
        else {
            continue;
        };
        let created = if post.pointer("/responses/200").is_some() {
            "/responses/200"
        } else {
            "/responses/201"
        };
        if let Some(ok) = post.pointer_mut(created).and_then(Value::as_object_mut) {
            ok.insert("links".to_owned(), Value::Object(links));
        }
    }
}

/// Request bodies read field by field ([`crate::body::Fields`]): unknown keys are refused
/// (`additionalProperties: false`), the read-only keys of the object are accepted and ignored
/// (listed as `readOnly`), and text never holds control characters.
const WRITE_SCHEMAS: &[(&str, &[&str])] = &[
    ("UserWrite", crate::users::READ_ONLY),
    ("BuildingWrite", crate::buildings::READ_ONLY),
    ("ElectricVehicleWrite", crate::vehicles::write::READ_ONLY),
    (
        "DeviceModelWrite",
        crate::vehicles::write::DEVICE_MODEL_READ_ONLY,
    ),
    ("WallboxWrite", crate::wallboxes::write::READ_ONLY),
    (
        "WallboxModelWrite",
        crate::wallboxes::write::DEVICE_MODEL_READ_ONLY,
    ),
    ("ChargeWeeklyPolicySchema", &[]),
    ("ChargeDailyPolicySchema", &[]),
    ("PriceUploadWrite", &[]),
    ("PriceUploadMetadata", &[]),
    ("PricePointWrite", &[]),
    ("AuthSessionIn", &[]),
    ("DriveIn", &[]),
    ("SetLevelIn", &[]),
    ("WebhookWrite", crate::webhooks::READ_ONLY),
    ("EnergyContractWrite", crate::energy_contracts::READ_ONLY),
    ("GridGroupWrite", crate::grid_groups::READ_ONLY),
    ("GridLimitsWrite", &[]),
    ("LimitWindowWrite", &[]),
    ("EnergyPriceWrite", &[]),
    ("TariffComponentWrite", &[]),
    ("TimeWindowWrite", &[]),
    ("RotateSecretWrite", &[]),
];

/// Bodies that ignore unknown keys (OAuth2, RFC 6749 §3.2) but refuse control characters in
/// the ones they read.
const OPEN_SCHEMAS: &[&str] = &["TokenRequest", "RevokeRequest"];

/// Creates need fields a partial update does not: (operation, body schema, its create copy, required).
const CREATE_SCHEMAS: &[(&str, &str, &str, &[&str])] = &[
    ("create_user", "UserWrite", "UserCreate", &["role", "email"]),
    (
        "create_building",
        "BuildingWrite",
        "BuildingCreate",
        &["name"],
    ),
    ("create_webhook", "WebhookWrite", "WebhookCreate", &["url"]),
];

/// One line of text: no control character (what [`crate::body::Fields::string`] refuses).
const ONE_LINE: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]*$";
/// Free text: tabs and line breaks allowed ([`crate::body::Fields::multiline`]).
const MULTILINE: &str = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$";
/// Fields read as free text rather than one line.
const MULTILINE_FIELDS: &[&str] = &["comment"];

fn tighten_write_schemas(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};

    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let closed = WRITE_SCHEMAS
        .iter()
        .map(|(name, read_only)| (*name, Some(*read_only)));
    let open = OPEN_SCHEMAS.iter().map(|name| (*name, None));
    for (name, read_only) in closed.chain(open) {
        let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) else {
            continue;
        };
        if read_only.is_some() {
            schema.insert("additionalProperties".to_owned(), Value::Bool(false));
        }
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            let is_text = property["type"] == "string"
                || property["type"]
                    .as_array()
                    .is_some_and(|types| types.contains(&json!("string")));
            let free_form = property.get("pattern").is_none()
                && property.get("format").is_none()
                && property.get("enum").is_none();
            // A zip code may also be sent as a number (stored as its digits).
            if field == "zip_code" {
                property["type"] = json!(["string", "number", "null"]);
            }
            if is_text && free_form {
                let pattern = if MULTILINE_FIELDS.contains(&field.as_str()) {
                    MULTILINE
                } else {
                    ONE_LINE
                };
                property["pattern"] = Value::String(pattern.to_owned());
            }
        }
        for field in read_only.unwrap_or_default() {
            properties.entry((*field).to_owned()).or_insert_with(|| {
                json!({"readOnly": true, "description": "Read-only: accepted and ignored, so that an object read can be sent back."})
            });
        }
    }
    for (_, body, create, required) in CREATE_SCHEMAS {
        if let Some(mut schema) = schemas.get(*body).cloned() {
            schema["required"] = json!(required);
            schemas.insert((*create).to_owned(), schema);
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|ops| ops.values_mut())
    {
        let Some((_, body, create, _)) = CREATE_SCHEMAS
            .iter()
            .find(|(id, ..)| operation["operationId"] == *id)
        else {
            continue;
        };
        if let Some(reference) =
            operation.pointer_mut("/requestBody/content/application~1json/schema/$ref")
            && reference == &json!(format!("#/components/schemas/{body}"))
        {
            *reference = json!(format!("#/components/schemas/{create}"));
        }
    }
}
