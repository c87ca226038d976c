//! `Table<K, V>`: a key-value store in LMDB. Writes go to a per-lane buffer for the current epoch
//! (read-your-writes); reads look in the buffer first, then in LMDB through a short read
//! transaction that lives at most for one batch.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::ops::{Bound, RangeBounds};

use heed::types::Bytes;
use heed::{Database, RoTxn, WithoutTls};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::env::StateEnv;
use super::key::{KeyPrefix, KeyRef, StoreKey};
use super::set::{Store, StoreDecl, StoreSpec};
use super::writer::StoreDelta;
use crate::error::StoreError;

/// A type usable as a state store value: any serde type (stored with postcard).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a state store value",
    note = "store values must be `Serialize + DeserializeOwned + Clone + Send + 'static`"
)]
pub trait StoreValue: Serialize + DeserializeOwned + Clone + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Clone + Send + 'static> StoreValue for T {}

/// A key-value table in the application's LMDB state, declared as a field of a
/// `#[stoat::state]` struct. Keys sort by their [`StoreKey`] encoding, so `range` and `prefix`
/// return entries in key order.
pub struct Table<K, V> {
    name: &'static str,
    state: StateEnv,
    db: Database<Bytes, Bytes>,
    reader: RefCell<Option<RoTxn<'static, WithoutTls>>>,
    dirty: FxHashMap<K, Option<V>>,
    /// Reused buffer for encoding lookup keys.
    scratch: RefCell<Vec<u8>>,
}

impl<K, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("name", &self.name).field("buffered_writes", &self.dirty.len()).finish()
    }
}

type Scan<K, V> = BTreeMap<Vec<u8>, Option<(K, V)>>;

impl<K: StoreKey, V: StoreValue> Table<K, V> {
    /// The store's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value under `key` (or a borrowed form of it, e.g. `&str` for `String` keys),
    /// including writes made earlier in this epoch.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>, StoreError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + KeyRef + ?Sized,
    {
        if let Some(buffered) = self.dirty.get(key) {
            return Ok(buffered.clone());
        }
        let mut raw = self.scratch.take();
        raw.clear();
        key.encode_key_ref(&mut raw);
        if raw.is_empty() {
            // LMDB keys are at least one byte: nothing can be stored under an empty key.
            self.scratch.replace(raw);
            return Ok(None);
        }
        let found = self.with_reader(|db, txn| Ok(db.get(txn, &raw)?.map(|b| self.decode_value(b))));
        self.scratch.replace(raw);
        found?.transpose()
    }

    /// Drops this epoch's buffered writes of the keys `keep` refuses (a global table's copy on
    /// a lane that does not own them).
    pub(crate) fn retain_writes(&mut self, keep: impl Fn(&K) -> bool) {
        self.dirty.retain(|k, _| keep(k));
    }

    /// Sets `key` to `value`. A key that encodes to no bytes (`""`, an empty `Vec<u8>`) cannot
    /// be stored (LMDB keys are at least one byte): the epoch fails when it is sealed, with an
    /// error naming the store.
    pub fn put(&mut self, key: K, value: V) -> Result<(), StoreError> {
        self.dirty.insert(key, Some(value));
        Ok(())
    }

    /// Removes `key` (or a borrowed form of it).
    pub fn delete<Q>(&mut self, key: &Q) -> Result<(), StoreError>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + ?Sized,
    {
        self.dirty.insert(key.to_owned(), None);
        Ok(())
    }

    /// The entries whose keys lie in `range`, in key order.
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> Result<Vec<(K, V)>, StoreError> {
        let encode = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(encoded(k)),
            Bound::Excluded(k) => Bound::Excluded(encoded(k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let (lo, hi) = (encode(range.start_bound()), encode(range.end_bound()));
        let bounds = (lo.as_ref().map(Vec::as_slice), hi.as_ref().map(Vec::as_slice));
        let raw = self.with_reader(|db, txn| {
            db.range(txn, &bounds)?.map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect()
        })?;
        let mut merged = self.decode_all(raw)?;
        self.overlay(&mut merged, |kb| bounds.contains(kb));
        Ok(merged.into_values().flatten().collect())
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn prefix<P: KeyPrefix<K> + ?Sized>(&self, prefix: &P) -> Result<Vec<(K, V)>, StoreError> {
        let mut p = Vec::new();
        prefix.encode_prefix(&mut p);
        let raw = self.with_reader(|db, txn| {
            db.prefix_iter(txn, &p)?.map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect()
        })?;
        let mut merged = self.decode_all(raw)?;
        self.overlay(&mut merged, |kb| kb.starts_with(&p));
        Ok(merged.into_values().flatten().collect())
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> Result<Vec<(K, V)>, StoreError> {
        self.range(..)
    }

    fn decode_all(&self, raw: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Scan<K, V>, StoreError> {
        let mut merged = BTreeMap::new();
        for (kb, vb) in raw {
            let key = K::decode_key(&kb).map_err(|reason| StoreError::Decode {
                store: self.name.to_string(),
                part: "key",
                reason,
            })?;
            let value = self.decode_value(&vb)?;
            merged.insert(kb, Some((key, value)));
        }
        Ok(merged)
    }

    fn overlay(&self, merged: &mut Scan<K, V>, keep: impl Fn(&[u8]) -> bool) {
        for (k, v) in &self.dirty {
            let kb = encoded(k);
            if keep(&kb) {
                merged.insert(kb, v.as_ref().map(|v| (k.clone(), v.clone())));
            }
        }
    }

    fn with_reader<R>(
        &self,
        f: impl FnOnce(&Database<Bytes, Bytes>, &RoTxn<'static, WithoutTls>) -> heed::Result<R>,
    ) -> Result<R, StoreError> {
        let mut slot = self.reader.borrow_mut();
        if slot.is_none() {
            let txn =
                self.state.env().clone().static_read_txn().map_err(|e| self.state.error(self.name, e))?;
            *slot = Some(txn);
        }
        match slot.as_ref() {
            Some(txn) => f(&self.db, txn).map_err(|e| self.state.error(self.name, e)),
            None => Err(StoreError::WriterGone),
        }
    }

    fn decode_value(&self, raw: &[u8]) -> Result<V, StoreError> {
        postcard::from_bytes(raw).map_err(|e| StoreError::Decode {
            store: self.name.to_string(),
            part: "value",
            reason: e.to_string(),
        })
    }
}

use super::key::key_bytes as encoded;

impl<K: StoreKey, V: StoreValue> Store for Table<K, V> {
    fn spec(decl: StoreDecl) -> StoreSpec {
        StoreSpec {
            name: decl.name,
            kind: "table",
            key_type: std::any::type_name::<K>(),
            value_type: std::any::type_name::<V>(),
            owner: decl.owner,
            declared: decl.declared,
            version: decl.version,
        }
    }

    fn open(state: &StateEnv, name: &'static str) -> Result<Self, StoreError> {
        Ok(Table {
            name,
            db: state.database(name)?,
            state: state.clone(),
            reader: RefCell::new(None),
            dirty: FxHashMap::default(),
            scratch: RefCell::new(Vec::new()),
        })
    }

    fn end_batch(&mut self) {
        self.reader.get_mut().take();
    }

    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.end_batch();
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(self.dirty.len());
        for (k, v) in self.dirty.drain() {
            let value = match v {
                Some(v) => Some(postcard::to_allocvec(&v).map_err(|e| StoreError::Encode {
                    store: self.name.to_string(),
                    reason: e.to_string(),
                })?),
                None => None,
            };
            let key = encoded(&k);
            if key.is_empty() {
                return Err(StoreError::Encode {
                    store: self.name.to_string(),
                    reason:
                        "an empty key (\"\" or no bytes) cannot be stored: LMDB keys are at least one byte"
                            .into(),
                });
            }
            entries.push((key, value));
        }
        out.push(StoreDelta { store: self.name, entries });
        Ok(())
    }
}
