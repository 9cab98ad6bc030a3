//! Field-level validation failures, shaped like the Podero/Django-Ninja 422 body
//! (`{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`) so partners' parsers keep working.
//! This is the one 422 shape of Voltplan: the API, the store and the price upload all report with it.

use std::fmt;

use serde::Serialize;

/// One element of an error location: a field name or a list index. Indexes are JSON numbers, as
/// in pydantic's 422 bodies: `["body", "data", 3, "timestamp"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LocPart {
    Field(String),
    Index(usize),
}

impl From<&str> for LocPart {
    fn from(field: &str) -> Self {
        LocPart::Field(field.to_owned())
    }
}

impl From<String> for LocPart {
    fn from(field: String) -> Self {
        LocPart::Field(field)
    }
}

impl From<usize> for LocPart {
    fn from(index: usize) -> Self {
        LocPart::Index(index)
    }
}

impl PartialEq<str> for LocPart {
    fn eq(&self, other: &str) -> bool {
        matches!(self, LocPart::Field(field) if field == other)
    }
}

impl fmt::Display for LocPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocPart::Field(field) => f.write_str(field),
            LocPart::Index(index) => write!(f, "{index}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub loc: Vec<LocPart>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// A failure at any location, indexes included.
    pub fn new(loc: Vec<LocPart>, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }

    /// A failure of one field of the request body.
    pub fn body(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self::at(&["body", field], kind, msg)
    }

    /// A failure of one query parameter.
    pub fn query(name: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self::at(&["query", name], kind, msg)
    }

    /// A failure at a location made of names only.
    pub fn at(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self::new(loc.iter().map(|s| LocPart::from(*s)).collect(), kind, msg)
    }

    /// `loc` joined with dots (`body.data.3.price`), for logs and tests.
    pub fn path(&self) -> String {
        self.loc
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_serialise_names_as_strings_and_indexes_as_numbers() {
        let e = FieldError::new(
            vec!["body".into(), "prices".into(), 3.into(), "price".into()],
            "float_type",
            "Input should be a valid number",
        );
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "loc": ["body", "prices", 3, "price"],
                "msg": "Input should be a valid number",
                "type": "float_type",
            })
        );
        assert_eq!(e.path(), "body.prices.3.price");
        assert_eq!(
            FieldError::query("limit", "int_parsing", "x").loc,
            FieldError::at(&["query", "limit"], "int_parsing", "x").loc
        );
        assert!(FieldError::body("email", "missing", "x").loc[1] == *"email");
    }
}
