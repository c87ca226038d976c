//! `Table<K, V>`: a key-value store in LMDB. Writes go to a per-lane buffer for the current epoch
//! (read-your-writes). The previous epoch's buffer is kept as a read overlay until the next seal,
//! because lanes process an epoch while the previous one is still being committed (its changes
//! may not be in LMDB yet). Reads look in the current buffer, then the sealed one, then in LMDB
//! through a short read transaction that lives at most for one batch.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;
use std::ops::{Bound, RangeBounds};

use heed::types::Bytes;
use heed::{RoTxn, WithoutTls};
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::env::StateEnv;
use super::key::{KeyPrefix, KeyRef, StoreKey};
use super::set::{JsonCodec, Store, StoreDecl, StoreSpec};
use super::tagged::{tag_into, StoreDb};
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
    db: StoreDb,
    reader: RefCell<Option<RoTxn<'static, WithoutTls>>>,
    dirty: FxHashMap<K, Option<V>>,
    /// The writes of the epoch sealed last: what LMDB holds once that epoch's commit is done.
    sealed: FxHashMap<K, Option<V>>,
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
        if !self.sealed.is_empty() {
            if let Some(sealed) = self.sealed.get(key) {
                return Ok(sealed.clone());
            }
        }
        let mut raw = self.scratch.take();
        // Tagged here, in the reused buffer, rather than by the database's key codec.
        tag_into(&mut raw, |out| key.encode_key_ref(out));
        let found = self.with_reader(|db, txn| {
            Ok(db.remap_key_type::<Bytes>().get(txn, &raw)?.map(|b| self.decode_value(b)))
        });
        self.scratch.replace(raw);
        found?.transpose()
    }

    /// Sets `key` to `value`.
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
        self.overlay(&mut merged, |kb| RangeBounds::<[u8]>::contains(&bounds, kb));
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
        for (k, v) in self.sealed.iter().chain(&self.dirty) {
            let kb = encoded(k);
            if keep(&kb) {
                merged.insert(kb, v.as_ref().map(|v| (k.clone(), v.clone())));
            }
        }
    }

    /// Ends the epoch: the buffered writes of the keys `keep` accepts go to `out` (the others
    /// are a global table's copy on a lane that does not own them: the owner writes them), and
    /// every buffered write stays readable until the next seal, while the epoch commits.
    pub(crate) fn seal_where(
        &mut self,
        out: &mut Vec<StoreDelta>,
        keep: impl Fn(&K) -> bool,
    ) -> Result<(), StoreError> {
        self.end_batch();
        self.sealed.clear();
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::with_capacity(self.dirty.len());
        for (k, v) in self.dirty.iter().filter(|(k, _)| keep(k)) {
            let value = match v {
                Some(v) => Some(postcard::to_allocvec(v).map_err(|e| StoreError::Encode {
                    store: self.name.to_string(),
                    reason: e.to_string(),
                })?),
                None => None,
            };
            entries.push((encoded(k), value));
        }
        // The buffer becomes the overlay; the old overlay's allocation is the next buffer.
        std::mem::swap(&mut self.dirty, &mut self.sealed);
        if !entries.is_empty() {
            out.push(StoreDelta { store: self.name, entries });
        }
        Ok(())
    }

    fn with_reader<R>(
        &self,
        f: impl FnOnce(&StoreDb, &RoTxn<'static, WithoutTls>) -> heed::Result<R>,
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
            json: JsonCodec::of::<K, V>(),
        }
    }

    fn open(state: &StateEnv, name: &'static str) -> Result<Self, StoreError> {
        Ok(Table {
            name,
            db: state.database(name)?,
            state: state.clone(),
            reader: RefCell::new(None),
            dirty: FxHashMap::default(),
            sealed: FxHashMap::default(),
            scratch: RefCell::new(Vec::new()),
        })
    }

    fn end_batch(&mut self) {
        self.reader.get_mut().take();
    }

    fn seal(&mut self, out: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
        self.seal_where(out, |_| true)
    }

    fn discard(&mut self) {
        self.end_batch();
        self.dirty.clear();
        self.sealed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateWriter;

    fn env(dir: &std::path::Path) -> Result<StateEnv, StoreError> {
        let spec = StoreSpec {
            name: "t",
            kind: "table",
            key_type: "u64",
            value_type: "u64",
            owner: "T",
            declared: "Table<u64, u64>",
            version: 1,
            json: JsonCodec::of::<u64, u64>(),
        };
        StateEnv::open(dir, "test", &[spec], 1 << 24, StateEnv::readers_for(1, 1), false)
    }

    /// An epoch sealed but not yet in LMDB (its commit runs while the next epoch is processed)
    /// stays readable, by key and by scan; a discard forgets it.
    #[test]
    fn a_sealed_epoch_is_read_until_the_next_seal_and_forgotten_by_a_discard() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|cause| StoreError::Open { path: "tmp".into(), cause })?;
        let state = env(dir.path())?;
        let writer = StateWriter::start(state.clone(), None)?;
        let mut table = <Table<u64, u64> as Store>::open(&state, "t")?;
        table.put(1, 10)?;
        table.put(2, 20)?;
        let mut first = Vec::new();
        // Key 2 is not this lane's to write (a global table's copy): kept for reads only.
        table.seal_where(&mut first, |k| *k == 1)?;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].entries.len(), 1, "only the kept key is written");
        // Not in LMDB yet: read from the sealed epoch.
        assert_eq!(table.get(&1)?, Some(10));
        assert_eq!(table.get(&2)?, Some(20));
        table.put(1, 11)?;
        assert_eq!(table.get(&1)?, Some(11), "the open epoch's writes come first");
        assert_eq!(table.range(0..10)?, vec![(1, 11), (2, 20)]);
        table.delete(&2)?;
        assert_eq!(table.iter()?, vec![(1, 11)]);
        // The first epoch's commit finishes; the second is sealed after it.
        writer.commit_blocking(1, first, Vec::new())?;
        let mut second = Vec::new();
        Store::seal(&mut table, &mut second)?;
        assert_eq!(table.get(&1)?, Some(11));
        assert_eq!(table.get(&2)?, None);
        // The second epoch's commit fails: its writes are forgotten, LMDB's state shows again.
        Store::discard(&mut table);
        assert_eq!(table.get(&1)?, Some(10));
        assert_eq!(table.iter()?, vec![(1, 10)]);
        Ok(())
    }
}
