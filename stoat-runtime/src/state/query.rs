//! Reads of committed state by raw (encoded) keys, for interactive queries from outside the
//! lanes (the HTTP store endpoints). Each call is one short LMDB read transaction: it sees the
//! last epoch written to LMDB and never blocks the writer.

use std::ops::Bound;

use super::env::StateEnv;
use crate::error::StoreError;

/// What a scan looks for: keys in a range, or keys with a prefix; at most `limit` entries.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The first key (included).
    pub from: Option<Vec<u8>>,
    /// The key the scan stops before.
    pub to: Option<Vec<u8>>,
    /// Only keys starting with these bytes.
    pub prefix: Option<Vec<u8>>,
    /// The most entries returned.
    pub limit: usize,
}

/// Raw entries of a scan, and whether more matched than `limit`.
pub type Scanned = (Vec<(Vec<u8>, Vec<u8>)>, bool);

impl StateEnv {
    /// The committed value under the encoded `key` of `store`.
    pub fn get_raw(&self, store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.database(store)?;
        let txn = self.env().read_txn().map_err(|e| self.error(store, e))?;
        let found = db.get(&txn, key).map_err(|e| self.error(store, e))?;
        Ok(found.map(<[u8]>::to_vec))
    }

    /// The committed entries of `store` that `scan` asks for, in key order.
    pub fn scan_raw(&self, store: &str, scan: &Scan) -> Result<Scanned, StoreError> {
        let db = self.database(store)?;
        let txn = self.env().read_txn().map_err(|e| self.error(store, e))?;
        let err = |e| self.error(store, e);
        let mut out = Vec::new();
        let mut more = false;
        let mut take = |entry: heed::Result<(&[u8], &[u8])>| -> Result<bool, StoreError> {
            let (k, v) = entry.map_err(err)?;
            if out.len() == scan.limit {
                more = true;
                return Ok(false);
            }
            out.push((k.to_vec(), v.to_vec()));
            Ok(true)
        };
        match &scan.prefix {
            Some(prefix) => {
                for entry in db.prefix_iter(&txn, prefix).map_err(err)? {
                    if !take(entry)? {
                        break;
                    }
                }
            }
            None => {
                let lo = scan.from.as_deref().map_or(Bound::Unbounded, Bound::Included);
                let hi = scan.to.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                for entry in db.range(&txn, &(lo, hi)).map_err(err)? {
                    if !take(entry)? {
                        break;
                    }
                }
            }
        }
        Ok((out, more))
    }
}
