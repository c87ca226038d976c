//! What an operator's return value emits, through traits: [`Single`] for one record (a value
//! keeping the input's key, a [`KeyValue`] with a new key, an [`Emit`] that also sets timestamp
//! and headers) and [`Output`] for how many (`T`, `Option`, `Vec`, any iterator, `Result`).
//!
//! Each impl carries a marker type, which the compiler infers, so a type alias such as
//! `type Words = Vec<KeyValue<String, u64>>` or `anyhow::Result<T>` is read as what it is.
//! `KeyValue`, `Emit` and `Record` are not record values (not `Clone`), which keeps the
//! inference unambiguous.

use std::marker::PhantomData;

use super::{Data, Key};
use crate::error::BoxError;
use crate::record::{Headers, KeyValue};

/// Marker: a plain value, keeping the input's key.
#[derive(Debug)]
pub enum Plain {}
/// Marker: a [`KeyValue`], with a new key.
#[derive(Debug)]
pub enum Rekeyed {}
/// Marker: an [`Emit`], with a key, timestamp and headers.
#[derive(Debug)]
pub enum Stamped {}
/// Marker: exactly one record.
#[derive(Debug)]
pub struct One<M>(PhantomData<M>);
/// Marker: an `Option`, zero or one record.
#[derive(Debug)]
pub struct Maybe<M>(PhantomData<M>);
/// Marker: a `Vec` of records.
#[derive(Debug)]
pub struct Many<M>(PhantomData<M>);
/// Marker: any iterator of records.
#[derive(Debug)]
pub struct Each<M>(PhantomData<M>);
/// Marker: a `Result` whose error goes to the error policy.
#[derive(Debug)]
pub struct Fallible<M>(PhantomData<M>);

/// An output record that sets its own key, timestamp and headers (an output made from a value
/// or a [`KeyValue`] carries the input's timestamp and headers).
///
/// ```ignore
/// # use stoat::prelude::*;
/// let out = Emit::new("k".to_string(), 1u64).timestamp(1_700_000_000_000).header("source", b"x".to_vec());
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Emit<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Option<Headers>,
    /// `headers` add to the input's rather than replace them.
    pub(crate) extra: bool,
}

impl<K, V> Emit<K, V> {
    /// A record with this key and value, the input's timestamp and headers.
    pub fn new(key: K, value: V) -> Self {
        Emit { key, value, timestamp: None, headers: None, extra: false }
    }
    /// Sets the timestamp (ms since the Unix epoch).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
    /// Replaces the headers (the input's are dropped).
    pub fn headers(mut self, headers: Headers) -> Self {
        self.headers = Some(headers);
        self.extra = false;
        self
    }
    /// Adds a header to the input's (or to those set with [`Emit::headers`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        if self.headers.is_none() {
            self.extra = true;
        }
        self.headers.get_or_insert_with(Headers::new).push((name.into(), value.into()));
        self
    }
}

/// One output record, before the runtime completes it.
#[derive(Debug)]
pub(crate) struct Emitted<K, V> {
    pub key: K,
    pub value: V,
    pub timestamp: Option<i64>,
    pub headers: Option<Headers>,
    /// Headers were added to the input's, not set in their place.
    pub extend: bool,
}

/// Collects an operator's outputs for one input record.
#[doc(hidden)]
#[derive(Debug)]
pub struct Emitter<K, V> {
    pub(crate) out: Vec<Emitted<K, V>>,
}

impl<K, V> Default for Emitter<K, V> {
    fn default() -> Self {
        Emitter { out: Vec::new() }
    }
}

impl<K, V> Emitter<K, V> {
    /// Emits one record with the input's timestamp and headers.
    pub fn emit(&mut self, key: K, value: V) {
        self.out.push(Emitted { key, value, timestamp: None, headers: None, extend: false });
    }
}

/// One output record, as an operator returns it, in a stream with key `K`.
#[diagnostic::on_unimplemented(
    message = "an operator cannot emit `{Self}`",
    note = "an operator emits values (keeping the key), `KeyValue<K, V>` (re-keying) or `Emit<K, V>` (setting timestamp and headers): one, an `Option`, a `Vec` or an iterator of them, optionally in a `Result`"
)]
pub trait Single<K, M> {
    /// The emitted key.
    type Key: Key;
    /// The emitted value.
    type Value: Data;
    /// Whether it carries a new key.
    const REKEYS: bool;
    /// Adds it to `out`, with the input's key (moved: the last or only output of a record).
    fn emit(self, key: K, out: &mut Emitter<Self::Key, Self::Value>);
    /// Adds it to `out`, copying the input's key only if it keeps it.
    fn emit_ref(self, key: &K, out: &mut Emitter<Self::Key, Self::Value>);
}

impl<K: Key, T: Data> Single<K, Plain> for T {
    type Key = K;
    type Value = T;
    const REKEYS: bool = false;
    fn emit(self, key: K, out: &mut Emitter<K, T>) {
        out.emit(key, self);
    }
    fn emit_ref(self, key: &K, out: &mut Emitter<K, T>) {
        out.emit(key.clone(), self);
    }
}

impl<K, K2: Key, V2: Data> Single<K, Rekeyed> for KeyValue<K2, V2> {
    type Key = K2;
    type Value = V2;
    const REKEYS: bool = true;
    fn emit(self, _: K, out: &mut Emitter<K2, V2>) {
        out.emit(self.key, self.value);
    }
    fn emit_ref(self, _: &K, out: &mut Emitter<K2, V2>) {
        out.emit(self.key, self.value);
    }
}

impl<K, K2: Key, V2: Data> Single<K, Stamped> for Emit<K2, V2> {
    type Key = K2;
    type Value = V2;
    const REKEYS: bool = true;
    fn emit(self, key: K, out: &mut Emitter<K2, V2>) {
        Single::<K, Stamped>::emit_ref(self, &key, out)
    }
    fn emit_ref(self, _: &K, out: &mut Emitter<K2, V2>) {
        let extend = self.extra;
        out.out.push(Emitted {
            key: self.key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
            extend,
        });
    }
}

/// What an operator's return type emits, in a stream with key `K`.
#[diagnostic::on_unimplemented(
    message = "an operator cannot return `{Self}`",
    note = "an operator returns what it emits: `T`, `Option<T>`, `Vec<T>` or `impl Iterator<Item = T>`, optionally in `Result<_, E>` with `E: Into<BoxError>`; `T` is a value (keeping the key), `KeyValue<K, V>` (re-keying) or `Emit<K, V>` (setting timestamp and headers)"
)]
pub trait Output<K, M> {
    /// The emitted key.
    type Key: Key;
    /// The emitted value.
    type Value: Data;
    /// Whether its records may carry new keys.
    const REKEYS: bool;
    /// Adds its records to `out`; an `Err` is the operator's error.
    fn emit(self, key: K, out: &mut Emitter<Self::Key, Self::Value>) -> Result<(), BoxError>;
}

impl<K, T: Single<K, M>, M> Output<K, One<M>> for T {
    type Key = T::Key;
    type Value = T::Value;
    const REKEYS: bool = T::REKEYS;
    fn emit(self, key: K, out: &mut Emitter<T::Key, T::Value>) -> Result<(), BoxError> {
        Single::emit(self, key, out);
        Ok(())
    }
}

impl<K, T: Single<K, M>, M> Output<K, Maybe<M>> for Option<T> {
    type Key = T::Key;
    type Value = T::Value;
    const REKEYS: bool = T::REKEYS;
    fn emit(self, key: K, out: &mut Emitter<T::Key, T::Value>) -> Result<(), BoxError> {
        if let Some(one) = self {
            Single::emit(one, key, out);
        }
        Ok(())
    }
}

impl<K, T: Single<K, M>, M> Output<K, Many<M>> for Vec<T> {
    type Key = T::Key;
    type Value = T::Value;
    const REKEYS: bool = T::REKEYS;
    fn emit(self, key: K, out: &mut Emitter<T::Key, T::Value>) -> Result<(), BoxError> {
        emit_all(self.into_iter(), key, out);
        Ok(())
    }
}

/// Emits every item, moving the key into the last one (a copy per earlier item that keeps it).
#[doc(hidden)]
pub fn emit_all<K, T: Single<K, M>, M>(
    items: impl Iterator<Item = T>,
    key: K,
    out: &mut Emitter<T::Key, T::Value>,
) {
    let mut items = items.peekable();
    while let Some(one) = items.next() {
        if items.peek().is_none() {
            one.emit(key, out);
            return;
        }
        one.emit_ref(&key, out);
    }
}

impl<K, I: Iterator, M> Output<K, Each<M>> for I
where
    I::Item: Single<K, M>,
{
    type Key = <I::Item as Single<K, M>>::Key;
    type Value = <I::Item as Single<K, M>>::Value;
    const REKEYS: bool = <I::Item as Single<K, M>>::REKEYS;
    fn emit(self, key: K, out: &mut Emitter<Self::Key, Self::Value>) -> Result<(), BoxError> {
        emit_all(self, key, out);
        Ok(())
    }
}

impl<K, T: Output<K, M>, E: Into<BoxError>, M> Output<K, Fallible<M>> for Result<T, E> {
    type Key = T::Key;
    type Value = T::Value;
    const REKEYS: bool = T::REKEYS;
    fn emit(self, key: K, out: &mut Emitter<T::Key, T::Value>) -> Result<(), BoxError> {
        match self {
            Ok(t) => t.emit(key, out),
            Err(e) => Err(e.into()),
        }
    }
}

/// What an `#[on_timer]` method returns: an [`Output`] whose records have the key and value
/// `O = (key, value)` of the operator's record method's, so both emit into one stream.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "the `#[on_timer]` method returns `{Self}`, which does not emit what the operator's record method emits: `{O}` (key, value)",
    label = "the operator's outputs are `{O}`",
    note = "both methods of an operator emit into one stream: return the same kind of records from both"
)]
pub trait EmitsLike<K, O, M> {
    /// Adds its records to `out`.
    fn emit_like<OK, OV>(self, key: K, out: &mut Emitter<OK, OV>) -> Result<(), BoxError>
    where
        O: Same<(OK, OV)>;
}

/// `Self` is `T`.
#[doc(hidden)]
pub trait Same<T> {
    fn same(self) -> T;
}
impl<T> Same<T> for T {
    fn same(self) -> T {
        self
    }
}

impl<K, T: Output<K, M>, M> EmitsLike<K, (T::Key, T::Value), M> for T {
    fn emit_like<OK, OV>(self, key: K, out: &mut Emitter<OK, OV>) -> Result<(), BoxError>
    where
        (T::Key, T::Value): Same<(OK, OV)>,
    {
        let mut own: Emitter<T::Key, T::Value> = Emitter::default();
        Output::emit(self, key, &mut own)?;
        for e in own.out {
            let (key, value) = (e.key, e.value).same();
            out.out.push(Emitted {
                key,
                value,
                timestamp: e.timestamp,
                headers: e.headers,
                extend: e.extend,
            });
        }
        Ok(())
    }
}
