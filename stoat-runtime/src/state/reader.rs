//! Typed reads of any store's committed state from outside the lanes (an interactive query in
//! the app's own code): [`StoreReader`], from `AppHandle::store`. It reads both `#[stoat::state]`
//! tables and the DSL's stores (aggregations, tables), whose values carry the timestamp of the
//! update that set them.

use std::marker::PhantomData;

use super::env::StateEnv;
use super::key::{key_bytes, StoreKey};
use super::query::Scan;
use super::table::StoreValue;
use crate::error::{Error, Result, StoreError};
use crate::topology::Entry;

/// Reads a store's committed entries as `K` to `V`.
pub struct StoreReader<K, V> {
    state: StateEnv,
    name: &'static str,
    /// Whether values are stored with their update's timestamp (a DSL store).
    stamped: bool,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> std::fmt::Debug for StoreReader<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader").field("store", &self.name).finish()
    }
}

impl<K: StoreKey, V: StoreValue> StoreReader<K, V> {
    /// A reader of store `name`, if it holds `K` to `V`: an unknown store or other types are
    /// errors naming the store's types.
    pub(crate) fn open(state: &StateEnv, specs: &[super::StoreSpec], name: &str) -> Result<Self> {
        let spec =
            specs.iter().find(|s| s.name == name).ok_or_else(|| StoreError::Unknown(name.to_string()))?;
        let (key, plain, stamped) =
            (std::any::type_name::<K>(), std::any::type_name::<V>(), std::any::type_name::<Entry<V>>());
        if spec.key_type != key || (spec.value_type != plain && spec.value_type != stamped) {
            return Err(Error::Config(format!(
                "store `{name}` holds `{}` to `{}`, not `{key}` to `{plain}`",
                spec.key_type, spec.value_type
            )));
        }
        Ok(StoreReader {
            state: state.clone(),
            name: spec.name,
            stamped: spec.value_type == stamped,
            _types: PhantomData,
        })
    }

    /// The key's committed value.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        Ok(self.get_with_timestamp(key)?.map(|(v, _)| v))
    }

    /// The key's committed value and, for a DSL store, the timestamp of the update that set it.
    pub fn get_with_timestamp(&self, key: &K) -> Result<Option<(V, Option<i64>)>> {
        match self.state.get_raw(self.name, &key_bytes(key))? {
            Some(raw) => Ok(Some(self.value(&raw)?)),
            None => Ok(None),
        }
    }

    /// Committed entries from `from` (included) to `to` (excluded), in key order, at most `limit`.
    pub fn range(&self, from: Option<&K>, to: Option<&K>, limit: usize) -> Result<Vec<(K, V)>> {
        let scan = Scan { from: from.map(key_bytes), to: to.map(key_bytes), prefix: None, limit };
        self.scan(&scan)
    }

    /// Every committed entry, in key order, at most `limit`.
    pub fn all(&self, limit: usize) -> Result<Vec<(K, V)>> {
        self.range(None, None, limit)
    }

    fn scan(&self, scan: &Scan) -> Result<Vec<(K, V)>> {
        let (raw, _) = self.state.scan_raw(self.name, scan)?;
        raw.iter()
            .map(|(k, v)| {
                let key = K::decode_key(k).map_err(|reason| StoreError::Decode {
                    store: self.name.to_string(),
                    part: "key",
                    reason,
                })?;
                Ok((key, self.value(v)?.0))
            })
            .collect()
    }

    fn value(&self, raw: &[u8]) -> Result<(V, Option<i64>)> {
        let decode = |e: postcard::Error| StoreError::Decode {
            store: self.name.to_string(),
            part: "value",
            reason: e.to_string(),
        };
        if self.stamped {
            let entry: Entry<V> = postcard::from_bytes(raw).map_err(decode)?;
            Ok((entry.value, Some(entry.timestamp)))
        } else {
            Ok((postcard::from_bytes(raw).map_err(decode)?, None))
        }
    }
}
