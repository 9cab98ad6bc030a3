//! OCPP-J framing (OCPP-J 1.6 §4, OCPP 2.0.1 Part 4 §4): every WebSocket text message is a JSON
//! array — `[2, id, action, payload]` (CALL), `[3, id, payload]` (CALLRESULT) or
//! `[4, id, code, description, details]` (CALLERROR).

use serde_json::{Map, Value};

use crate::Version;

/// The longest message id OCPP allows (1.6 and 2.0.1: 36 characters, a UUID's length).
pub const MAX_MESSAGE_ID_LEN: usize = 36;

/// The id answered when a frame's own id cannot be read (OCPP 2.0.1 Part 4 §4.2.3 uses "-1";
/// OCPP-J 1.6 does not say, and we use the same).
pub const UNKNOWN_MESSAGE_ID: &str = "-1";

/// One OCPP-J message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Call {
        id: String,
        action: String,
        payload: Map<String, Value>,
    },
    CallResult {
        id: String,
        payload: Value,
    },
    CallError {
        id: String,
        code: String,
        description: String,
        details: Value,
    },
}

/// The error codes of a CALLERROR. Two were renamed between versions; [`ErrorCode::name`] gives
/// each version's spelling (1.6 writes "OccurenceConstraintViolation", with its typo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The action is not known to the receiver.
    NotImplemented,
    /// The action is known but not supported by the receiver.
    NotSupported,
    InternalError,
    /// The payload is incomplete.
    ProtocolError,
    SecurityError,
    /// The payload (or the frame) is not syntactically correct or does not have the action's
    /// structure. 1.6: FormationViolation; 2.0.1: FormatViolation.
    FormationViolation,
    /// A field has an invalid value.
    PropertyConstraintViolation,
    /// A required field is missing (or too many occur).
    OccurrenceConstraintViolation,
    /// A field has the wrong data type (or is too long).
    TypeConstraintViolation,
    GenericError,
    /// 2.0.1 only: the frame itself is broken; 1.6 uses FormationViolation.
    RpcFrameworkError,
    /// 2.0.1 only: an unknown message type id; 1.6 uses ProtocolError.
    MessageTypeNotSupported,
}

impl ErrorCode {
    pub fn name(self, version: Version) -> &'static str {
        let v16 = version == Version::V16;
        match self {
            Self::NotImplemented => "NotImplemented",
            Self::NotSupported => "NotSupported",
            Self::InternalError => "InternalError",
            Self::ProtocolError => "ProtocolError",
            Self::SecurityError => "SecurityError",
            Self::FormationViolation if v16 => "FormationViolation",
            Self::FormationViolation => "FormatViolation",
            Self::PropertyConstraintViolation => "PropertyConstraintViolation",
            Self::OccurrenceConstraintViolation if v16 => "OccurenceConstraintViolation",
            Self::OccurrenceConstraintViolation => "OccurrenceConstraintViolation",
            Self::TypeConstraintViolation => "TypeConstraintViolation",
            Self::GenericError => "GenericError",
            Self::RpcFrameworkError if v16 => "FormationViolation",
            Self::RpcFrameworkError => "RpcFrameworkError",
            Self::MessageTypeNotSupported if v16 => "ProtocolError",
            Self::MessageTypeNotSupported => "MessageTypeNotSupported",
        }
    }
}

/// Why a frame could not be taken: what to answer (a CALLERROR with this id, code and
/// description), or nothing when the peer's CALLRESULT/CALLERROR was broken (one never answers
/// an answer).
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// The id to answer with; `None` when the broken frame was itself an answer.
    pub answer_to: Option<String>,
    pub code: ErrorCode,
    pub description: String,
}

impl FrameError {
    fn call(id: Option<&str>, code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            answer_to: Some(id.unwrap_or(UNKNOWN_MESSAGE_ID).to_owned()),
            code,
            description: description.into(),
        }
    }
}

impl Frame {
    /// Reads one WebSocket text message.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let value: Value = serde_json::from_str(text).map_err(|_| {
            FrameError::call(
                None,
                ErrorCode::RpcFrameworkError,
                "the message is not JSON",
            )
        })?;
        let Value::Array(mut items) = value else {
            return Err(FrameError::call(
                None,
                ErrorCode::RpcFrameworkError,
                "the message is not a JSON array",
            ));
        };
        let type_id = items.first().and_then(Value::as_u64);
        let id = match items.get(1) {
            Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN => {
                id.clone()
            }
            _ => {
                return Err(FrameError::call(
                    None,
                    ErrorCode::RpcFrameworkError,
                    "the message id must be a string of 1 to 36 characters",
                ));
            }
        };
        let is_answer = matches!(type_id, Some(3 | 4));
        let broken = |description: &str| FrameError {
            answer_to: (!is_answer).then(|| id.clone()),
            code: ErrorCode::RpcFrameworkError,
            description: description.to_owned(),
        };
        match type_id {
            Some(2) => {
                if items.len() != 4 {
                    return Err(broken("a CALL has four elements"));
                }
                let payload = items.pop();
                let action = items.pop();
                let Some(Value::String(action)) = action else {
                    return Err(broken("a CALL's action must be a string"));
                };
                let Some(Value::Object(payload)) = payload else {
                    return Err(FrameError::call(
                        Some(&id),
                        ErrorCode::FormationViolation,
                        "a CALL's payload must be a JSON object",
                    ));
                };
                Ok(Self::Call {
                    id,
                    action,
                    payload,
                })
            }
            Some(3) => {
                if items.len() != 3 {
                    return Err(broken("a CALLRESULT has three elements"));
                }
                let payload = items.pop().unwrap_or(Value::Null);
                Ok(Self::CallResult { id, payload })
            }
            Some(4) => {
                if items.len() != 5 {
                    return Err(broken("a CALLERROR has five elements"));
                }
                let details = items.pop().unwrap_or(Value::Null);
                let description = items.pop();
                let code = items.pop();
                match (code, description) {
                    (Some(Value::String(code)), Some(Value::String(description))) => {
                        Ok(Self::CallError {
                            id,
                            code,
                            description,
                            details,
                        })
                    }
                    _ => Err(broken("a CALLERROR's code and description must be strings")),
                }
            }
            _ => Err(FrameError::call(
                Some(&id),
                ErrorCode::MessageTypeNotSupported,
                "the message type id must be 2, 3 or 4",
            )),
        }
    }

    /// The frame as the WebSocket text message to send.
    pub fn to_text(&self) -> String {
        let value = match self {
            Self::Call {
                id,
                action,
                payload,
            } => Value::Array(vec![
                2.into(),
                id.as_str().into(),
                action.as_str().into(),
                Value::Object(payload.clone()),
            ]),
            Self::CallResult { id, payload } => {
                Value::Array(vec![3.into(), id.as_str().into(), payload.clone()])
            }
            Self::CallError {
                id,
                code,
                description,
                details,
            } => Value::Array(vec![
                4.into(),
                id.as_str().into(),
                code.as_str().into(),
                description.as_str().into(),
                details.clone(),
            ]),
        };
        value.to_string()
    }

    /// A CALLERROR answering `id`.
    pub fn error(id: &str, code: ErrorCode, version: Version, description: &str) -> Self {
        Self::CallError {
            id: id.to_owned(),
            code: code.name(version).to_owned(),
            description: description.to_owned(),
            details: Value::Object(Map::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_frames_read_and_write_back() {
        for text in [
            r#"[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"SingleSocketCharger"}]"#,
            r#"[3,"19223201",{"status":"Accepted","currentTime":"2013-02-01T20:53:32.486Z","interval":300}]"#,
            r#"[4,"162376037","NotSupported","SetDisplayMessage not supported",{}]"#,
        ] {
            let frame = Frame::parse(text).expect(text);
            assert_eq!(Frame::parse(&frame.to_text()), Ok(frame));
        }
    }

    #[test]
    fn broken_frames_are_answered_with_the_right_code() {
        let answer = |text: &str| Frame::parse(text).expect_err(text);
        let e = answer("not json");
        assert_eq!(e.answer_to.as_deref(), Some(UNKNOWN_MESSAGE_ID));
        assert_eq!(e.code.name(Version::V16), "FormationViolation");
        assert_eq!(e.code.name(Version::V201), "RpcFrameworkError");
        assert_eq!(answer(r#"{"a":1}"#).code, ErrorCode::RpcFrameworkError);
        let e = answer(r#"[9,"7","Heartbeat",{}]"#);
        assert_eq!(e.answer_to.as_deref(), Some("7"));
        assert_eq!(e.code.name(Version::V16), "ProtocolError");
        let e = answer(r#"[2,"7","Heartbeat",[]]"#);
        assert_eq!(e.code.name(Version::V16), "FormationViolation");
        assert_eq!(e.code.name(Version::V201), "FormatViolation");
        let e = answer(r#"[2,"7","Heartbeat"]"#);
        assert_eq!(e.answer_to.as_deref(), Some("7"));
        let long = format!(r#"[2,"{}","Heartbeat",{{}}]"#, "x".repeat(37));
        assert_eq!(answer(&long).answer_to.as_deref(), Some(UNKNOWN_MESSAGE_ID));
        // A broken answer is never answered.
        assert_eq!(answer(r#"[3,"7"]"#).answer_to, None);
        assert_eq!(answer(r#"[4,"7",1,2,{}]"#).answer_to, None);
    }
}
