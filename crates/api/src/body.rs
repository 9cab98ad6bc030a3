//! Reading write bodies field by field, so that every problem is reported at once with the field it
//! belongs to, unknown keys are refused by name, and "absent" differs from "null" (partial PUT).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use chrono::{DateTime, NaiveTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;
use voltplan_core::validation::{FieldError, LocPart};

use crate::error::ApiError;

/// The largest body accepted anywhere in the API.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Declares a write body once: the struct documented in OpenAPI (`request_body = …`) and
/// `FIELDS`, its keys, which the handler accepts. A field added to the struct is thereby accepted,
/// and a unit test per resource checks that its parser reads every one of them. The struct itself
/// is documentation only: bodies are read field by field ([`Fields`]).
macro_rules! write_body {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, utoipa::ToSchema)]
        #[allow(dead_code)] // documentation only: bodies are read field by field
        pub struct $name {
            $( $(#[$field_meta])* $field: $ty ),*
        }

        impl $name {
            /// The keys of this body, in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
        }
    };
}
pub(crate) use write_body;

/// A field of a partial update.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch<T> {
    Absent,
    Null,
    Set(T),
}

impl<T> Patch<T> {
    /// Applies the patch to a nullable field.
    pub fn apply(self, field: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Null => *field = None,
            Patch::Set(v) => *field = Some(v),
        }
    }
}

/// A JSON object body. It must be declared as JSON (`Content-Type: application/json` or a
/// `+json` type): anything else is a 415, as axum's own `Json` answers. A key given twice (at any
/// depth) is a 422 naming it rather than silently the last value.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !declares_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_object(&body_bytes(req, state).await?).map(JsonObject)
    }
}

/// A body whose every field is optional: no body at all (whatever the headers) reads as `{}`;
/// a body that is there must be JSON like [`JsonObject`]'s.
pub struct OptionalJsonObject(pub JsonObject);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = declares_json(req.headers());
        let bytes = body_bytes(req, state).await?;
        if bytes.is_empty() {
            Ok(OptionalJsonObject(JsonObject(Map::new())))
        } else if !json {
            Err(ApiError::UnsupportedMediaType)
        } else {
            parse_object(&bytes).map(|map| OptionalJsonObject(JsonObject(map)))
        }
    }
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("The request body could not be read".to_owned())
        }
    })
}

/// `application/json`, or any `application/*+json`, with or without parameters.
fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON object body, refusing duplicate keys at any depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut duplicates = Vec::new();
    let parsed = {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        serde::de::DeserializeSeed::deserialize(
            strict::StrictValue {
                path: Vec::new(),
                duplicates: &mut duplicates,
            },
            &mut deserializer,
        )
        .and_then(|value| deserializer.end().map(|()| value))
    };
    match parsed {
        Ok(Value::Object(_)) if !duplicates.is_empty() => Err(ApiError::Invalid(
            duplicates
                .into_iter()
                .map(|path| {
                    let mut loc = vec![LocPart::from("body")];
                    loc.extend(path);
                    FieldError::new(loc, "duplicate_key", "This key is given more than once")
                })
                .collect(),
        )),
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::Invalid(vec![FieldError::at(
            &["body"],
            "model_type",
            "The body must be a JSON object",
        )])),
        Err(e) if e.is_eof() && bytes.iter().all(u8::is_ascii_whitespace) => {
            Err(ApiError::Invalid(vec![FieldError::at(
                &["body"],
                "missing",
                "A JSON object body is required",
            )]))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "Malformed JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            e.classify_kind()
        ))),
    }
}

/// A `serde_json::Value` deserializer that records duplicate object keys (with their path)
/// instead of letting the last one win.
mod strict {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::fmt;
    use voltplan_core::validation::LocPart;

    pub struct StrictValue<'a> {
        pub path: Vec<LocPart>,
        pub duplicates: &'a mut Vec<Vec<LocPart>>,
    }

    impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
        type Value = Value;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for StrictValue<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            loop {
                let mut path = self.path.clone();
                path.push(LocPart::Index(items.len()));
                let seed = StrictValue {
                    path,
                    duplicates: &mut *self.duplicates,
                };
                match seq.next_element_seed(seed)? {
                    Some(item) => items.push(item),
                    None => return Ok(Value::Array(items)),
                }
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
            let mut map = Map::new();
            while let Some(key) = access.next_key::<String>()? {
                let mut path = self.path.clone();
                path.push(LocPart::Field(key.clone()));
                let seed = StrictValue {
                    path: path.clone(),
                    duplicates: &mut *self.duplicates,
                };
                let value = access.next_value_seed(seed)?;
                if map.insert(key, value).is_some() && !self.duplicates.contains(&path) {
                    self.duplicates.push(path);
                }
            }
            Ok(Value::Object(map))
        }
    }
}

trait ClassifyKind {
    fn classify_kind(&self) -> &'static str;
}

impl ClassifyKind for serde_json::Error {
    fn classify_kind(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "invalid data",
            serde_json::error::Category::Io => "read error",
        }
    }
}

/// Reads typed fields out of a body, collecting every error.
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Refuses keys that are neither writable nor documented read-only (read-only keys are
    /// accepted and ignored, so a client may send back an object it read).
    pub fn new(JsonObject(map): JsonObject, writable: &[&str], read_only: &[&str]) -> Self {
        let errors = map
            .keys()
            .filter(|k| !writable.contains(&k.as_str()) && !read_only.contains(&k.as_str()))
            .map(|k| FieldError::body(k, "extra_forbidden", format!("Unknown field {k:?}")))
            .collect();
        Self { map, errors }
    }

    pub fn error(&mut self, field: &str, kind: &str, msg: impl Into<String>) {
        self.errors.push(FieldError::body(field, kind, msg));
    }

    /// Whether the body has this key (before a parser took it).
    pub fn has_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn has_errors_for(&self, field: &str) -> bool {
        self.errors
            .iter()
            .any(|e| e.loc.get(1).is_some_and(|f| *f == *field))
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.errors))
        }
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// The keys of the body no parser has read yet: a writable key still here after parsing is a
    /// field the declaration lists and the parser forgot.
    #[cfg(test)]
    pub fn unread(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }

    fn take(&mut self, key: &str) -> Patch<Value> {
        match self.map.remove(key) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(v) => Patch::Set(v),
        }
    }

    /// A nullable field, converted by `parse`, which explains what it expected on failure.
    fn field<T>(
        &mut self,
        key: &str,
        kind: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Patch<T> {
        match self.take(key) {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Set(value) => match parse(&value) {
                Ok(v) => Patch::Set(v),
                Err(msg) => {
                    self.error(key, kind, msg);
                    Patch::Absent
                }
            },
        }
    }

    /// A required field: absent or `null` is an error (unless the value given was already
    /// refused, which is its error).
    pub fn required<T>(&mut self, key: &str, patch: Patch<T>) -> Option<T> {
        match patch {
            Patch::Set(v) => Some(v),
            _ if self.has_errors_for(key) => None,
            Patch::Null => {
                self.error(key, "null_forbidden", "This field may not be null");
                None
            }
            Patch::Absent => {
                self.error(key, "missing", "Field required");
                None
            }
        }
    }

    /// Turns a nullable patch into a required-when-present one: `null` is an error.
    pub fn not_null<T>(&mut self, key: &str, patch: Patch<T>) -> Option<T> {
        match patch {
            Patch::Absent => None,
            Patch::Null => {
                self.error(key, "null_forbidden", "This field may not be null");
                None
            }
            Patch::Set(v) => Some(v),
        }
    }

    pub fn bool(&mut self, key: &str) -> Patch<bool> {
        self.field(key, "bool_type", |v| {
            v.as_bool()
                .ok_or_else(|| "Input should be a valid boolean".to_owned())
        })
    }

    pub fn int(&mut self, key: &str, min: i64, max: i64) -> Patch<i64> {
        self.field(key, "int_type", |v| {
            let n = v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| "Input should be a valid integer".to_owned())?;
            if n < min || n > max {
                return Err(format!("Input should be between {min} and {max}"));
            }
            Ok(n)
        })
    }

    /// A number; with `accept_string`, also a decimal string such as `"79.5"`.
    pub fn number(&mut self, key: &str, min: f64, max: f64, accept_string: bool) -> Patch<f64> {
        self.field(key, "float_type", |v| {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) if accept_string => {
                    s.trim().parse::<f64>().ok().filter(|f| f.is_finite())
                }
                _ => None,
            }
            .ok_or_else(|| "Input should be a valid number".to_owned())?;
            if n < min || n > max {
                return Err(format!("Input should be between {min} and {max}"));
            }
            Ok(n)
        })
    }

    /// A one-line string of at most `max_len` characters; with `accept_number`, also a number
    /// (zip codes). Control characters are refused: a NUL cannot be stored in PostgreSQL, and
    /// none belongs in a name, an address or an id.
    pub fn string(&mut self, key: &str, max_len: usize, accept_number: bool) -> Patch<String> {
        self.text(key, max_len, accept_number, false)
    }

    /// A free text of at most `max_len` characters that may span lines (tabs and line breaks
    /// allowed, other control characters refused).
    pub fn multiline(&mut self, key: &str, max_len: usize) -> Patch<String> {
        self.text(key, max_len, false, true)
    }

    fn text(
        &mut self,
        key: &str,
        max_len: usize,
        accept_number: bool,
        multiline: bool,
    ) -> Patch<String> {
        let mut control = false;
        let patch = self.field(key, "string_type", |v| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) if accept_number => n.to_string(),
                _ => return Err("Input should be a valid string".to_owned()),
            };
            if s.chars().count() > max_len {
                return Err(format!("String should have at most {max_len} characters"));
            }
            if let Some(c) = s
                .chars()
                .find(|c| c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r')))
            {
                control = true;
                return Err(format!(
                    "String should not contain control characters (found U+{:04X})",
                    u32::from(c)
                ));
            }
            Ok(s)
        });
        if control && let Some(last) = self.errors.last_mut() {
            last.kind = "string_pattern_mismatch".to_owned();
        }
        patch
    }

    pub fn one_of(&mut self, key: &str, allowed: &[&str]) -> Patch<String> {
        self.field(key, "enum", |v| match v.as_str() {
            Some(s) if allowed.contains(&s) => Ok(s.to_owned()),
            _ => Err(format!("Input should be one of: {}", allowed.join(", "))),
        })
    }

    /// A list of at most `max_items` strings, each one of `allowed`; repeats are dropped.
    pub fn list_of(&mut self, key: &str, allowed: &[&str], max_items: usize) -> Patch<Vec<String>> {
        self.field(key, "list_type", |v| {
            let items = bounded_list(v, max_items)?;
            let mut list: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if allowed.contains(&s) => {
                        if !list.iter().any(|known| known == s) {
                            list.push(s.to_owned());
                        }
                    }
                    _ => {
                        return Err(format!("Item {i} should be one of: {}", allowed.join(", ")));
                    }
                }
            }
            Ok(list)
        })
    }

    /// A list of at most `max_items` UUIDs.
    pub fn list_of_uuids(&mut self, key: &str, max_items: usize) -> Patch<Vec<Uuid>> {
        self.field(key, "list_type", |v| {
            let items = bounded_list(v, max_items)?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                        .ok_or_else(|| format!("Item {i} should be a valid UUID"))
                })
                .collect()
        })
    }

    pub fn datetime(&mut self, key: &str) -> Patch<DateTime<Utc>> {
        self.field(key, "datetime_parsing", |v| {
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc))
                .ok_or_else(|| {
                    "Input should be an RFC 3339 date-time with offset, e.g. 2025-01-31T22:00:00Z"
                        .to_owned()
                })
        })
    }

    /// `"HH:MM"` or `"HH:MM:SS"`.
    pub fn time_of_day(&mut self, key: &str) -> Patch<NaiveTime> {
        self.field(key, "time_parsing", |v| {
            v.as_str()
                .and_then(parse_time_of_day)
                .ok_or_else(|| "Input should be a time of day \"HH:MM\" or \"HH:MM:SS\"".to_owned())
        })
    }

    pub fn uuid(&mut self, key: &str) -> Patch<Uuid> {
        self.field(key, "uuid_parsing", |v| {
            v.as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| "Input should be a valid UUID".to_owned())
        })
    }

    pub fn object(&mut self, key: &str) -> Patch<Map<String, Value>> {
        self.field(key, "model_type", |v| {
            v.as_object()
                .cloned()
                .ok_or_else(|| "Input should be an object".to_owned())
        })
    }

    /// Collects a nested object's errors under `key`.
    pub fn nested_errors(&mut self, key: &str, errors: Vec<FieldError>) {
        self.nested_errors_at(&[key.into()], errors);
    }

    /// Collects a nested object's errors under `at`: `["body", inner]` becomes
    /// `["body", at…, inner]` (e.g. `at` = `["windows", 3]` for a list's item).
    fn nested_errors_at(&mut self, at: &[LocPart], errors: Vec<FieldError>) {
        for mut e in errors {
            let tail = e.loc.split_off(1.min(e.loc.len()));
            e.loc.extend_from_slice(at);
            e.loc.extend(tail);
            self.errors.push(e);
        }
    }

    /// A list of at most `max` objects, each read by `item` from a body of the `writable` keys;
    /// an item's errors are located under `[key, index]`. `null` reads as an empty list.
    pub fn list_of_objects<T>(
        &mut self,
        key: &str,
        max: usize,
        writable: &[&str],
        mut item: impl FnMut(&mut Fields) -> Option<T>,
    ) -> Patch<Vec<T>> {
        let items = match self.map.remove(key) {
            None => return Patch::Absent,
            Some(Value::Null) => return Patch::Set(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.error(key, "list_type", "Input should be a valid list");
                return Patch::Absent;
            }
        };
        if items.len() > max {
            self.error(
                key,
                "too_long",
                format!("List should have at most {max} items"),
            );
            return Patch::Absent;
        }
        let errors_before = self.errors.len();
        let mut out = Vec::with_capacity(items.len());
        for (i, value) in items.into_iter().enumerate() {
            let Value::Object(map) = value else {
                self.errors.push(FieldError::new(
                    vec!["body".into(), key.into(), i.into()],
                    "model_type",
                    "Input should be an object",
                ));
                continue;
            };
            let mut fields = Fields::new(JsonObject(map), writable, &[]);
            let parsed = item(&mut fields);
            let item_errors = fields.into_errors();
            if item_errors.is_empty()
                && let Some(parsed) = parsed
            {
                out.push(parsed);
            }
            self.nested_errors_at(&[key.into(), i.into()], item_errors);
        }
        if self.errors.len() == errors_before {
            Patch::Set(out)
        } else {
            Patch::Absent
        }
    }
}

/// A JSON list of at most `max_items` items, or what a client should have sent.
fn bounded_list(v: &Value, max_items: usize) -> Result<&Vec<Value>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| "Input should be a valid list".to_owned())?;
    if items.len() > max_items {
        return Err(format!("List should have at most {max_items} items"));
    }
    Ok(items)
}

/// `"HH:MM"` or `"HH:MM:SS"`. chrono reads a seconds field of `60` as a leap second, which no
/// deadline can be: refused.
pub fn parse_time_of_day(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
        .filter(|t| chrono::Timelike::nanosecond(t) < 1_000_000_000)
}

/// Decimal fields are JSON strings on output ("79.5", "0"), as Podero sends them.
pub fn decimal_string(value: f64) -> String {
    let s = format!("{:.3}", value);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Checks that tie a write body's declaration to its documentation, its parser and the object
/// the API shows.
#[cfg(test)]
pub(crate) mod declaration {
    use serde_json::Value;
    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};

    use super::JsonObject;

    /// The property names of `T`'s OpenAPI schema, in order.
    pub fn properties<T: PartialSchema>() -> Vec<String> {
        match T::schema() {
            RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
            _ => panic!("not an object schema"),
        }
    }

    /// A body that sends every one of `fields`, as `null`.
    pub fn all_null(fields: &[&str]) -> JsonObject {
        JsonObject(
            fields
                .iter()
                .map(|field| ((*field).to_owned(), Value::Null))
                .collect(),
        )
    }

    /// Every property of the object `T` is accepted in a body (written or ignored), so a client
    /// may send back what it read.
    pub fn accepts_what_it_shows<T: PartialSchema>(writable: &[&str], read_only: &[&str]) {
        let refused: Vec<String> = properties::<T>()
            .into_iter()
            .filter(|p| !writable.contains(&p.as_str()) && !read_only.contains(&p.as_str()))
            .collect();
        assert!(
            refused.is_empty(),
            "shown but refused in a body: {refused:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_like_podero() {
        assert_eq!(decimal_string(0.0), "0");
        assert_eq!(decimal_string(79.5), "79.5");
        assert_eq!(decimal_string(80.0), "80");
        assert_eq!(decimal_string(12.3456), "12.346");
    }

    #[test]
    fn time_of_day_accepts_minutes_and_seconds() {
        assert_eq!(parse_time_of_day("07:00"), NaiveTime::from_hms_opt(7, 0, 0));
        assert_eq!(
            parse_time_of_day("06:30:15"),
            NaiveTime::from_hms_opt(6, 30, 15)
        );
        assert_eq!(parse_time_of_day("25:00"), None);
        assert_eq!(parse_time_of_day("07:00:60"), None);
        assert_eq!(
            parse_time_of_day("23:59:59"),
            NaiveTime::from_hms_opt(23, 59, 59)
        );
    }
}
