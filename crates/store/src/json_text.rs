//! JSON documents the worker rewrites every cycle (a vehicle's state, runtime and plan) are stored
//! as text on both backends. On PostgreSQL, `jsonb` parsing on write and rendering on read cost
//! more than the rest of a cycle's update (measured: 512 rows, 50 ms with `jsonb`, 10 ms
//! without); only the organisation-wide vehicle list looks inside the state (`org_vehicles.rs`,
//! parsing it per row), so they gain nothing from `jsonb`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// A value stored as its JSON text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct JsonText<T>(pub T);

impl<T, DB: Database> Type<DB> for JsonText<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'r, T: DeserializeOwned, DB: Database> Decode<'r, DB> for JsonText<T>
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<DB>>::decode(value)?;
        Ok(JsonText(serde_json::from_str(text)?))
    }
}

impl<'q, T: Serialize, DB: Database> Encode<'q, DB> for JsonText<T>
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, DB>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}
