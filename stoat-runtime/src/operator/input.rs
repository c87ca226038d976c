//! How an operator takes its record: [`Input`] for a parameter taken by value, [`InputRef`]
//! for one taken by reference. Either the record's value (`Order`, `&Order`, `&str` for a
//! `String`) or the whole [`Record`] (`Record<K, V>`, `&Record<K, V>`): the compiler tells them
//! apart (a `Record` is not a record value), so a user type that happens to be called `Record`
//! is just a value.

use std::borrow::Borrow;

use super::{Data, Key};
use crate::record::Record;

/// Marker: the parameter is the record's value.
#[derive(Debug)]
pub enum Value {}
/// Marker: the parameter is the whole record.
#[derive(Debug)]
pub enum Whole {}

/// A type an operator takes its record as, by value, in a stream with key `K`.
#[diagnostic::on_unimplemented(
    message = "an operator cannot take its record as `{Self}`",
    note = "take the record's value (`V` or `&V`), or the whole record (`Record<K, V>` or `&Record<K, V>`)"
)]
pub trait Input<K, M>: Sized {
    /// The stream's value type.
    type Value: Data;
    /// Splits the record into this parameter and the key (for outputs that keep it).
    fn take(record: Record<K, Self::Value>) -> (Self, K);
}

impl<K, T: Data> Input<K, Value> for T {
    type Value = T;
    fn take(record: Record<K, T>) -> (T, K) {
        (record.value, record.key)
    }
}

impl<K: Key, V: Data> Input<K, Whole> for Record<K, V> {
    type Value = V;
    fn take(record: Record<K, V>) -> (Self, K) {
        let key = record.key.clone();
        (record, key)
    }
}

/// A type an operator borrows its record as (`&Self`), in a stream with key `K`.
#[diagnostic::on_unimplemented(
    message = "an operator cannot borrow its record as `&{Self}`",
    note = "borrow the record's value (`&V`, `&str` for `String`, `&[u8]` for `Vec<u8>`), or the whole record (`&Record<K, V>`)"
)]
pub trait InputRef<K, M> {
    /// The stream's value type.
    type Value: Data;
    /// Borrows this parameter from the record.
    fn get(record: &Record<K, Self::Value>) -> &Self;
}

impl<K, T: ?Sized + ToOwned> InputRef<K, Value> for T
where
    T::Owned: Data,
{
    type Value = T::Owned;
    fn get(record: &Record<K, T::Owned>) -> &T {
        record.value.borrow()
    }
}

impl<K, V: Data> InputRef<K, Whole> for Record<K, V> {
    type Value = V;
    fn get(record: &Record<K, V>) -> &Self {
        record
    }
}
