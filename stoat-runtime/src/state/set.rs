//! The traits `#[stoat::state]` implements: [`StateSet`] for the user's struct, [`Store`] for each
//! of its fields. The runtime opens one instance of each state struct per lane; the instance
//! buffers the lane's writes for the current epoch and hands them over at the barrier.

use super::env::StateEnv;
use super::writer::StoreDelta;
use crate::error::StoreError;

/// The declaration of one store: its name and the types it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store's name, unique in the application.
    pub name: &'static str,
    /// The kind of store (`"table"`).
    pub kind: &'static str,
    /// The key type.
    pub key_type: &'static str,
    /// The value type.
    pub value_type: &'static str,
    /// The state struct that declares it.
    pub owner: &'static str,
}

impl StoreSpec {
    /// The store's kind and types as one string, recorded in the state directory.
    pub fn schema(&self) -> String {
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
    /// Ends an epoch: moves the buffered writes into `out`.
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError>;
}

impl StateSet for () {
    fn stores() -> Vec<StoreSpec> {
        Vec::new()
    }
    fn open(_: &StateEnv) -> Result<Self, StoreError> {
        Ok(())
    }
    fn end_batch(&mut self) {}
    fn seal(&mut self, _: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        Ok(())
    }
}

/// One typed store: a field of a `#[stoat::state]` struct.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a state store",
    label = "not a store",
    note = "fields of a `#[stoat::state]` struct must be stores, such as `Table<K, V>`"
)]
pub trait Store: Send + Sized + 'static {
    /// The store's declaration under `name`, declared by `owner`.
    fn spec(name: &'static str, owner: &'static str) -> StoreSpec;
    /// Opens the store `name`.
    fn open(state: &StateEnv, name: &'static str) -> Result<Self, StoreError>;
    /// Ends a batch.
    fn end_batch(&mut self);
    /// Ends an epoch: moves the buffered writes into `out`.
    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError>;
}
