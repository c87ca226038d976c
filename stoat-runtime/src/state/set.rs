//! The traits `#[stoat::state]` implements: [`StateSet`] for the user's struct, [`Store`] for each
//! of its fields. The runtime opens one instance of each state struct per lane; the instance
//! buffers the lane's writes for the current epoch and hands them over at the barrier.

use super::env::StateEnv;
use super::key::StoreKey;
use super::table::StoreValue;
use super::writer::StoreDelta;
use crate::error::StoreError;

/// How a state struct declares one store (what `#[stoat::state]` passes to [`Store::spec`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreDecl {
    /// The store's name.
    pub name: &'static str,
    /// The state struct that declares it.
    pub owner: &'static str,
    /// The field's type as written in the source (e.g. `Table<String, u64>`).
    pub declared: &'static str,
    /// The store's schema version (`#[store(version = N)]`, default 1).
    pub version: u32,
}

/// The declaration of one store: its name and the types it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store's name, unique in the application.
    pub name: &'static str,
    /// The kind of store (`"table"`).
    pub kind: &'static str,
    /// The key type (`std::any::type_name`, for messages).
    pub key_type: &'static str,
    /// The value type (`std::any::type_name`, for messages).
    pub value_type: &'static str,
    /// The state struct that declares it.
    pub owner: &'static str,
    /// The field's type as written in the source.
    pub declared: &'static str,
    /// The schema version the user declared.
    pub version: u32,
    /// How its raw entries read as JSON (the HTTP store endpoints).
    pub json: JsonCodec,
}

/// How a store's raw entries convert from and to JSON, its key and value types erased: the HTTP
/// store endpoints read every store through it.
#[derive(Clone, Copy)]
pub struct JsonCodec {
    key_from_json: fn(&serde_json::Value) -> Result<Vec<u8>, String>,
    prefix_from_json: fn(&serde_json::Value) -> Result<Vec<u8>, String>,
    key_to_json: fn(&[u8]) -> Result<serde_json::Value, String>,
    value_to_json: fn(&[u8]) -> Result<serde_json::Value, String>,
}

impl JsonCodec {
    /// The codec of a table of `K` to `V`.
    pub fn of<K: StoreKey, V: StoreValue>() -> JsonCodec {
        JsonCodec {
            key_from_json: |json| {
                let key: K = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
                Ok(super::key::key_bytes(&key))
            },
            prefix_from_json: K::prefix_from_json,
            key_to_json: |raw| serde_json::to_value(K::decode_key(raw)?).map_err(|e| e.to_string()),
            value_to_json: |raw| {
                let value: V = postcard::from_bytes(raw).map_err(|e| e.to_string())?;
                serde_json::to_value(value).map_err(|e| e.to_string())
            },
        }
    }

    /// A key given as JSON, in the store's encoding.
    pub fn key_from_json(&self, key: &serde_json::Value) -> Result<Vec<u8>, String> {
        (self.key_from_json)(key)
    }

    /// A prefix given as JSON, in the store's key encoding.
    pub fn prefix_from_json(&self, prefix: &serde_json::Value) -> Result<Vec<u8>, String> {
        (self.prefix_from_json)(prefix)
    }

    /// A stored key as JSON.
    pub fn key_to_json(&self, raw: &[u8]) -> Result<serde_json::Value, String> {
        (self.key_to_json)(raw)
    }

    /// A stored value as JSON.
    pub fn value_to_json(&self, raw: &[u8]) -> Result<serde_json::Value, String> {
        (self.value_to_json)(raw)
    }
}

impl std::fmt::Debug for JsonCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonCodec")
    }
}

/// Codecs do not take part in comparing declarations (a store's schema is its declared type).
impl PartialEq for JsonCodec {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for JsonCodec {}

impl StoreSpec {
    /// The schema recorded in the state directory: the store's kind, its field type as written
    /// (without whitespace) and its version. Unlike `std::any::type_name`, whose output may
    /// change from one compiler to the next, it changes only when the source does: edit the type,
    /// or bump `#[store(version = N)]` when a value type's fields change.
    pub fn schema(&self) -> String {
        let declared: String = self.declared.chars().filter(|c| !c.is_whitespace()).collect();
        format!("{} {declared} v{}", self.kind, self.version)
    }

    /// The schema as stoat recorded it before versions (from `type_name`): a directory holding
    /// it is taken as matching and upgraded.
    pub(crate) fn legacy_schema(&self) -> String {
        format!("{}<{}, {}>", self.kind, self.key_type, self.value_type)
    }
}

/// A struct of stores, made with `#[stoat::state]`. An operator takes it as `&mut S` (or `&S`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a state struct",
    label = "not a `#[stoat::state]` struct",
    note = "annotate the struct with `#[stoat::state]`; its fields are stores such as `Table<K, V>`"
)]
pub trait StateSet: Send + Sized + 'static {
    /// The stores it declares.
    fn stores() -> Vec<StoreSpec>;
    /// Opens an instance over `state`.
    fn open(state: &StateEnv) -> Result<Self, StoreError>;
    /// Ends a batch: releases read transactions.
    fn end_batch(&mut self);
    /// Ends an epoch: moves the buffered writes into `out` (they stay readable while the epoch
    /// commits, until the next seal).
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError>;
    /// Forgets every write not committed (an aborted epoch, and the one sealed before it when
    /// its commit failed too): reads see LMDB again.
    fn discard(&mut self);
}

/// One typed store: a field of a `#[stoat::state]` struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a state store",
    label = "not a store",
    note = "fields of a `#[stoat::state]` struct must be stores, such as `Table<K, V>`"
)]
pub trait Store: Send + Sized + 'static {
    /// The store's declaration.
    fn spec(decl: StoreDecl) -> StoreSpec;
    /// Opens the store `name`.
    fn open(state: &StateEnv, name: &'static str) -> Result<Self, StoreError>;
    /// Ends a batch.
    fn end_batch(&mut self);
    /// Ends an epoch: moves the buffered writes into `out` (they stay readable while the epoch
    /// commits, until the next seal).
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError>;
    /// Forgets every write not committed.
    fn discard(&mut self);
}
