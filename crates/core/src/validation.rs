//! Field-level validation failures, shaped like the Podero/Django-Ninja 422 body
//! (`{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`) so partners' parsers keep working.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    /// A failure of one field of the request body.
    pub fn body(field: &str, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec!["body".to_owned(), field.to_owned()],
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }

    pub fn at(loc: &[&str], kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}
