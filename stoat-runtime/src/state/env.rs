//! The LMDB environment of an application: one directory, one environment, one named database per
//! store plus `__stoat`, the metadata database (the owning app id, store schemas, the last
//! committed epoch and when it committed, each store's changelog position).
//!
//! A directory belongs to one application: its app id is recorded at first use and checked at
//! every start, and the directory is locked exclusively (`stoat.lock`) while an app uses it, so
//! a second instance, or a zombie of the first, can never write to it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, WithoutTls};

use super::tagged::{StoreDb, LAYOUT, LAYOUT_KEY};

use super::set::StoreSpec;
use crate::error::StoreError;

const META_DB: &str = "__stoat";
const EPOCH_KEY: &[u8] = b"epoch";
const APP_KEY: &[u8] = b"app";
const COMMITTED_AT_KEY: &[u8] = b"committed_at";
const LOCK_FILE: &str = "stoat.lock";

/// The opened state of an application, shared by its lanes, its writer thread and readers.
#[derive(Clone)]
pub struct StateEnv {
    inner: Arc<Inner>,
}

struct Inner {
    env: Env<WithoutTls>,
    /// Holds the directory's exclusive lock while open.
    _lock: std::fs::File,
    path: PathBuf,
    map_size: usize,
    meta: Database<Bytes, Bytes>,
    stores: HashMap<&'static str, StoreDb>,
}

impl std::fmt::Debug for StateEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateEnv").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

pub(crate) fn lmdb_error(store: &str, path: &Path, map_size: usize, e: heed::Error) -> StoreError {
    match e {
        heed::Error::Mdb(heed::MdbError::MapFull) => {
            StoreError::Full { path: path.display().to_string(), map_size }
        }
        heed::Error::Io(cause) => StoreError::Disk {
            path: path.display().to_string(),
            cause: cause.to_string(),
            space: disk_space(path),
        },
        other => StoreError::Lmdb { store: store.to_string(), reason: other.to_string() },
    }
}

/// What an I/O error writing the state may come from, told from the file system's free space:
/// LMDB reports a write cut short by a full disk as a plain I/O error.
fn disk_space(path: &Path) -> String {
    #[cfg(unix)]
    if let Ok(fs) = rustix::fs::statvfs(path) {
        let (free, total) = (fs.f_bavail * fs.f_frsize, fs.f_blocks * fs.f_frsize);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        if free < (1 << 20) || free.saturating_mul(100) < total {
            return format!(
                "No space left on device ({:.1} MiB free of {:.1} MiB): free some and restart; the state resumes from its last commit, and on Kafka the changelogs bring it up to date",
                mib(free),
                mib(total)
            );
        }
        return format!("{:.1} MiB free of {:.1} MiB on its file system", mib(free), mib(total));
    }
    "the free space on its file system is unknown".into()
}

impl StateEnv {
    /// Stops LMDB from flushing each commit to disk (`NOSYNC`); [`StateEnv::sync`] flushes.
    pub(crate) fn defer_syncs(&self) -> Result<(), StoreError> {
        // SAFETY: NOSYNC trades durability of the last commits for speed; the writer thread
        // flushes periodically and at its end, and the log (changelogs) restores what an OS
        // crash takes back. The environment is not opened with WRITEMAP, so LMDB keeps its
        // integrity when the file system keeps the order of writes.
        unsafe { self.env().set_flags(heed::EnvFlags::NO_SYNC, heed::FlagSetMode::Enable) }
            .map_err(|e| self.error("<environment>", e))
    }

    /// Flushes every commit so far to disk.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.env().force_sync().map_err(|e| self.error("<environment>", e))
    }

    /// Opens (or creates) the state in `dir` of application `app` for the given stores, checking
    /// that the directory is not in use, that it belongs to `app` and that stores already there
    /// were written with the same key and value types. A directory of another app is an error,
    /// or, with `rebuild_foreign`, emptied (its stores are rebuilt from their changelogs).
    /// `max_readers` bounds the read transactions open at once (LMDB's reader table).
    pub fn open(
        dir: &Path,
        app: &str,
        specs: &[StoreSpec],
        map_size: usize,
        max_readers: usize,
        rebuild_foreign: bool,
    ) -> Result<StateEnv, StoreError> {
        create_private_dir(dir)
            .map_err(|cause| StoreError::Open { path: dir.display().to_string(), cause })?;
        let lock = lock(dir)?;
        let err = |e| lmdb_error("<environment>", dir, map_size, e);
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options
            .map_size(map_size)
            .max_dbs(specs.len() as u32 + 4)
            .max_readers(u32::try_from(max_readers).unwrap_or(u32::MAX));
        // SAFETY: the environment is opened once per directory by this process (the App owns it)
        // and stoat never opens the same directory twice concurrently.
        let env = unsafe { options.open(dir) }.map_err(err)?;
        let map_size = grow_map(&env, dir, map_size).map_err(err)?;
        let mut wtxn = env.write_txn().map_err(err)?;
        let meta: Database<Bytes, Bytes> = env.create_database(&mut wtxn, Some(META_DB)).map_err(err)?;
        match meta.get(&wtxn, APP_KEY).map_err(err)? {
            Some(found) if found != app.as_bytes() => {
                let found = String::from_utf8_lossy(found).into_owned();
                if !rebuild_foreign {
                    return Err(StoreError::ForeignState {
                        path: dir.display().to_string(),
                        found,
                        app: app.into(),
                    });
                }
                tracing::warn!(path = %dir.display(), found, app, "state directory of another app: emptied, rebuilding from the changelogs");
                meta.clear(&mut wtxn).map_err(err)?;
                for spec in specs {
                    let db: StoreDb = env.create_database(&mut wtxn, Some(spec.name)).map_err(err)?;
                    db.clear(&mut wtxn).map_err(err)?;
                }
                meta.put(&mut wtxn, APP_KEY, app.as_bytes()).map_err(err)?;
            }
            Some(_) => {}
            None => meta.put(&mut wtxn, APP_KEY, app.as_bytes()).map_err(err)?,
        }
        let layout = meta.get(&wtxn, LAYOUT_KEY).map_err(err)?.map(<[u8]>::to_vec);
        match layout.as_deref() {
            Some(layout) if layout == LAYOUT => {}
            layout => {
                // Keys written without their tag (an older stoat), or a layout this one does not
                // know: the stores cannot be read as they are.
                let mut written = false;
                for spec in specs {
                    let db: Database<Bytes, Bytes> =
                        env.create_database(&mut wtxn, Some(spec.name)).map_err(err)?;
                    written |= !db.is_empty(&wtxn).map_err(err)?;
                }
                if written || layout.is_some() {
                    let found = layout
                        .map_or_else(|| "untagged".to_string(), |l| String::from_utf8_lossy(l).into_owned());
                    if !rebuild_foreign {
                        return Err(StoreError::Layout {
                            path: dir.display().to_string(),
                            found,
                            expected: String::from_utf8_lossy(LAYOUT).into_owned(),
                        });
                    }
                    tracing::warn!(path = %dir.display(), found, "state directory of another stoat version: emptied, rebuilding from the changelogs");
                    meta.clear(&mut wtxn).map_err(err)?;
                    for spec in specs {
                        let db: Database<Bytes, Bytes> =
                            env.create_database(&mut wtxn, Some(spec.name)).map_err(err)?;
                        db.clear(&mut wtxn).map_err(err)?;
                    }
                    meta.put(&mut wtxn, APP_KEY, app.as_bytes()).map_err(err)?;
                }
                meta.put(&mut wtxn, LAYOUT_KEY, LAYOUT).map_err(err)?;
            }
        }
        let mut stores = HashMap::new();
        for spec in specs {
            let declared = spec.schema();
            let schema_key = format!("schema/{}", spec.name);
            match meta.get(&wtxn, schema_key.as_bytes()).map_err(err)? {
                // Written before schemas had versions: the same types, recorded the old way.
                Some(stored) if stored == spec.legacy_schema().as_bytes() => {
                    meta.put(&mut wtxn, schema_key.as_bytes(), declared.as_bytes()).map_err(err)?;
                }
                Some(stored) if stored != declared.as_bytes() => {
                    return Err(StoreError::SchemaMismatch {
                        store: spec.name.to_string(),
                        path: dir.display().to_string(),
                        stored: String::from_utf8_lossy(stored).into_owned(),
                        declared,
                    });
                }
                Some(_) => {}
                None => meta.put(&mut wtxn, schema_key.as_bytes(), declared.as_bytes()).map_err(err)?,
            }
            let db = env.create_database(&mut wtxn, Some(spec.name)).map_err(err)?;
            stores.insert(spec.name, db);
        }
        wtxn.commit().map_err(err)?;
        Ok(StateEnv {
            inner: Arc::new(Inner { env, _lock: lock, path: dir.to_path_buf(), map_size, meta, stores }),
        })
    }

    /// The LMDB reader slots `lanes` lanes over `stores` stores need: every lane may hold a read
    /// transaction per store during a batch (all at once, when every lane is mid-batch), and
    /// readers of committed state and restore need a few more.
    pub fn readers_for(lanes: usize, stores: usize) -> usize {
        lanes.saturating_mul(stores.max(1)).saturating_add(126)
    }

    /// The state directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn env(&self) -> &Env<WithoutTls> {
        &self.inner.env
    }

    pub(crate) fn meta(&self) -> Database<Bytes, Bytes> {
        self.inner.meta
    }

    pub(crate) fn database(&self, store: &str) -> Result<StoreDb, StoreError> {
        self.inner.stores.get(store).copied().ok_or_else(|| StoreError::Unknown(store.to_string()))
    }

    pub(crate) fn error(&self, store: &str, e: heed::Error) -> StoreError {
        lmdb_error(store, &self.inner.path, self.inner.map_size, e)
    }

    /// How many entries `store` holds, as of the last committed epoch.
    pub fn entries(&self, store: &str) -> Result<u64, StoreError> {
        let db = self.database(store)?;
        let txn = self.env().read_txn().map_err(|e| self.error(store, e))?;
        db.len(&txn).map_err(|e| self.error(store, e))
    }

    /// Hands every entry of `store` as committed, raw (key as stored, value), to `each`, in key
    /// order.
    pub(crate) fn dump(&self, store: &str, mut each: impl FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        let db = self.database(store)?.remap_key_type::<Bytes>();
        let err = |e| self.error(store, e);
        let txn = self.env().read_txn().map_err(err)?;
        for entry in db.iter(&txn).map_err(err)? {
            let (key, value) = entry.map_err(err)?;
            each(key, value);
        }
        Ok(())
    }

    /// The last epoch whose state changes are in LMDB (0 when none).
    pub fn committed_epoch(&self) -> Result<u64, StoreError> {
        let txn = self.env().read_txn().map_err(|e| self.error(META_DB, e))?;
        let raw = self.meta().get(&txn, EPOCH_KEY).map_err(|e| self.error(META_DB, e))?;
        Ok(raw.and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0))
    }

    pub(crate) fn epoch_key() -> &'static [u8] {
        EPOCH_KEY
    }

    pub(crate) fn committed_at_key() -> &'static [u8] {
        COMMITTED_AT_KEY
    }

    /// When the last epoch was committed to this directory (ms since the Unix epoch), if ever.
    pub fn committed_at(&self) -> Result<Option<i64>, StoreError> {
        let txn = self.env().read_txn().map_err(|e| self.error(META_DB, e))?;
        let raw = self.meta().get(&txn, COMMITTED_AT_KEY).map_err(|e| self.error(META_DB, e))?;
        Ok(raw.and_then(|b| b.try_into().ok()).map(i64::from_be_bytes))
    }

    /// Empties `store` and forgets its changelog position, so it is rebuilt from the start of
    /// its changelog. Only before the app processes anything (restore).
    pub(crate) fn clear_store(&self, store: &str) -> Result<(), StoreError> {
        let db = self.database(store)?;
        let err = |e| self.error(store, e);
        let mut txn = self.env().write_txn().map_err(err)?;
        db.clear(&mut txn).map_err(err)?;
        self.meta().delete(&mut txn, Self::changelog_key(store).as_bytes()).map_err(err)?;
        txn.commit().map_err(err)
    }

    pub(crate) fn changelog_key(store: &str) -> String {
        format!("changelog/{store}")
    }

    /// The changelog offset the state of `store` reflects: the next changelog record to apply.
    pub fn changelog_offset(&self, store: &str) -> Result<u64, StoreError> {
        let txn = self.env().read_txn().map_err(|e| self.error(META_DB, e))?;
        let key = Self::changelog_key(store);
        let raw = self.meta().get(&txn, key.as_bytes()).map_err(|e| self.error(META_DB, e))?;
        Ok(raw.and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0))
    }
}

/// Grows the map of a state that fills more than half of it: doubles it, as far as the disk has
/// room. LMDB allows it only while the process has no transaction open on the
/// environment, which is the case right after opening it (a commit that finds the map full stops
/// the app instead, and the restart grows it here). Returns the map size in effect.
fn grow_map(env: &Env<WithoutTls>, dir: &Path, map_size: usize) -> heed::Result<usize> {
    let used = env.real_disk_size()? as usize;
    let current = env.info().map_size.max(map_size);
    if used <= current / 2 {
        return Ok(current);
    }
    let page = 1 << 16;
    let mut wanted = current.saturating_mul(2).max(used.saturating_mul(2)).div_ceil(page) * page;
    if let Some(room) = disk_room(dir) {
        // Map pages are only used as the data grows; more than the disk holds is a promise
        // the disk cannot keep, so the map stops at data + free space.
        wanted = wanted.min((used + room).div_ceil(page) * page).max(current);
    }
    if wanted > current {
        tracing::info!(path = %dir.display(), from = current, to = wanted, "the state's LMDB map is more than half full: grown");
        // SAFETY: no transaction of this process is open on the environment: it was just
        // opened, and this runs before anything reads or writes it.
        unsafe { env.resize(wanted)? };
    }
    Ok(wanted.max(current))
}

/// Free bytes on the file system holding `dir`, when the platform tells.
fn disk_room(dir: &Path) -> Option<usize> {
    #[cfg(unix)]
    if let Ok(fs) = rustix::fs::statvfs(dir) {
        return usize::try_from(fs.f_bavail.saturating_mul(fs.f_frsize)).ok();
    }
    let _ = dir;
    None
}

/// Creates `dir` (and missing parents) readable by its owner only: state holds the app's data.
/// An existing directory keeps its permissions.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Takes the directory's exclusive lock (released when the file closes, also when the process
/// dies).
fn lock(dir: &Path) -> Result<std::fs::File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::Open { path: path.display().to_string(), cause: source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked { path: dir.display().to_string() }),
        Err(std::fs::TryLockError::Error(source)) => {
            Err(StoreError::Open { path: path.display().to_string(), cause: source })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lane_can_hold_a_reader_on_every_store_at_once() -> Result<(), StoreError> {
        let dir =
            tempfile::tempdir().map_err(|source| StoreError::Open { path: "tmp".into(), cause: source })?;
        let specs: Vec<StoreSpec> = ["a", "b", "c", "d"]
            .into_iter()
            .map(|name| StoreSpec {
                name,
                kind: "table",
                key_type: "u64",
                value_type: "u64",
                owner: "Four",
                declared: "Table<u64, u64>",
                version: 1,
                json: crate::state::JsonCodec::of::<u64, u64>(),
            })
            .collect();
        let (lanes, stores) = (1024, specs.len());
        let state =
            StateEnv::open(dir.path(), "test", &specs, 1 << 24, StateEnv::readers_for(lanes, stores), false)?;
        // Each lane mid-batch: a read transaction per store, all open together.
        let mut readers = Vec::with_capacity(lanes * stores);
        for _ in 0..lanes * stores {
            readers.push(state.env().clone().static_read_txn().map_err(|e| state.error("<test>", e))?);
        }
        assert_eq!(readers.len(), 4096);
        Ok(())
    }

    #[test]
    fn a_schema_recorded_before_versions_is_accepted_and_upgraded() -> Result<(), StoreError> {
        let dir =
            tempfile::tempdir().map_err(|source| StoreError::Open { path: "tmp".into(), cause: source })?;
        let spec = StoreSpec {
            name: "counts",
            kind: "table",
            key_type: "alloc::string::String",
            value_type: "u64",
            owner: "Counts",
            declared: "Table<String, u64>",
            version: 1,
            json: crate::state::JsonCodec::of::<String, u64>(),
        };
        {
            let state = StateEnv::open(dir.path(), "app", std::slice::from_ref(&spec), 1 << 24, 126, false)?;
            // What an older stoat recorded for the same store.
            let mut txn = state.env().write_txn().map_err(|e| state.error("meta", e))?;
            state
                .meta()
                .put(&mut txn, b"schema/counts", spec.legacy_schema().as_bytes())
                .map_err(|e| state.error("meta", e))?;
            txn.commit().map_err(|e| state.error("meta", e))?;
        }
        let state = StateEnv::open(dir.path(), "app", std::slice::from_ref(&spec), 1 << 24, 126, false)?;
        let txn = state.env().read_txn().map_err(|e| state.error("meta", e))?;
        let stored = state.meta().get(&txn, b"schema/counts").map_err(|e| state.error("meta", e))?;
        assert_eq!(stored, Some(spec.schema().as_bytes()), "rewritten in the new form");
        assert_eq!(spec.schema(), "table Table<String,u64> v1");
        Ok(())
    }

    #[test]
    fn a_full_map_stops_the_commit_and_grows_when_the_state_is_opened_again() -> Result<(), StoreError> {
        let dir =
            tempfile::tempdir().map_err(|source| StoreError::Open { path: "tmp".into(), cause: source })?;
        let spec = StoreSpec {
            name: "blobs",
            kind: "table",
            key_type: "u64",
            value_type: "Vec<u8>",
            owner: "Blobs",
            declared: "Table<u64, Vec<u8>>",
            version: 1,
            json: crate::state::JsonCodec::of::<u64, Vec<u8>>(),
        };
        let specs = std::slice::from_ref(&spec);
        let map = 1 << 20;
        let blob = |i: u64| (i.to_be_bytes().to_vec(), Some(vec![7u8; 4_000]));
        let write = |state: &StateEnv, from: u64, n: u64| -> Result<(), StoreError> {
            let writer = super::super::StateWriter::start(state.clone(), None)?;
            let entries = (from..from + n).map(blob).collect();
            writer.commit_blocking(1, vec![super::super::StoreDelta { store: "blobs", entries }], Vec::new())
        };
        let state = StateEnv::open(dir.path(), "app", specs, map, 126, false)?;
        write(&state, 0, 150)?;
        let full = write(&state, 150, 150).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(full.contains("is full") && full.contains("restart doubles the map"), "{full}");
        drop(state);
        let state = StateEnv::open(dir.path(), "app", specs, map, 126, false)?;
        assert!(state.env().info().map_size >= 2 * map - (1 << 16), "grown: {}", state.env().info().map_size);
        write(&state, 150, 150)?;
        assert_eq!(state.entries("blobs")?, 300);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_new_state_directory_is_its_owners_only() -> Result<(), StoreError> {
        use std::os::unix::fs::PermissionsExt;
        let base =
            tempfile::tempdir().map_err(|source| StoreError::Open { path: "tmp".into(), cause: source })?;
        let dir = base.path().join("new").join("state");
        drop(StateEnv::open(&dir, "app", &[], 1 << 24, 126, false)?);
        for d in [dir.as_path(), base.path().join("new").as_path()] {
            let mode = std::fs::metadata(d).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        Ok(())
    }

    #[test]
    fn stores_with_untagged_keys_are_refused_or_rebuilt_on_request() -> Result<(), StoreError> {
        let dir =
            tempfile::tempdir().map_err(|source| StoreError::Open { path: "tmp".into(), cause: source })?;
        let spec = StoreSpec {
            name: "counts",
            kind: "table",
            key_type: "u64",
            value_type: "u64",
            owner: "Counts",
            declared: "Table<u64, u64>",
            version: 1,
            json: crate::state::JsonCodec::of::<u64, u64>(),
        };
        let specs = std::slice::from_ref(&spec);
        {
            // What an older stoat left: a key without its tag, no layout marker.
            let state = StateEnv::open(dir.path(), "app", specs, 1 << 24, 126, false)?;
            let mut txn = state.env().write_txn().map_err(|e| state.error("meta", e))?;
            state.meta().delete(&mut txn, LAYOUT_KEY).map_err(|e| state.error("meta", e))?;
            let raw = state.database("counts")?.remap_key_type::<Bytes>();
            raw.put(&mut txn, b"\x07key", b"v").map_err(|e| state.error("counts", e))?;
            txn.commit().map_err(|e| state.error("meta", e))?;
        }
        let err = StateEnv::open(dir.path(), "app", specs, 1 << 24, 126, false).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("untagged") && err.contains("rebuild_foreign_state"), "{err}");
        let state = StateEnv::open(dir.path(), "app", specs, 1 << 24, 126, true)?;
        assert_eq!(state.entries("counts")?, 0, "emptied, to be rebuilt from the changelog");
        drop(state);
        StateEnv::open(dir.path(), "app", specs, 1 << 24, 126, false).map(|_| ())
    }
}
