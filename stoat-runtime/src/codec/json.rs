//! JSON through serde_json, for any `Serialize + DeserializeOwned` type.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{null_error, Codec};
use crate::error::{DecodeError, EncodeError};

/// JSON text, for any serde type.
#[derive(Debug)]
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json(PhantomData)
    }
}

impl<T> Json<T> {
    /// The codec.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Codec<T> for Json<T> {
    fn name(&self) -> &'static str {
        "json"
    }
    fn encode(&self, value: &T) -> Result<Option<Vec<u8>>, EncodeError> {
        serde_json::to_vec(value).map(Some).map_err(|e| EncodeError { codec: "json", reason: e.to_string() })
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<T, DecodeError> {
        let bytes = bytes.ok_or_else(|| null_error("json"))?;
        serde_json::from_slice(bytes).map_err(|e| DecodeError { codec: "json", reason: e.to_string() })
    }
}
