//! The runtime's error types: one enum for what stops an application, one for state stores,
//! and the codec errors that name what could not be read or written.
//!
//! Each error's message includes its cause (`cause` fields), and the cause is not also returned
//! by `Error::source`, so a printer that walks the chain (anyhow, `tracing`) shows each cause
//! once. No dependency's error type (heed's, rdkafka's) is part of them.

use std::fmt;

/// A boxed error from user code (an operator returning `Err`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where an input record came from: enough to find it again in its topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLocation {
    /// The topic the record was read from.
    pub topic: String,
    /// Its partition.
    pub partition: u32,
    /// Its offset within the partition.
    pub offset: u64,
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic `{}`, partition {}, offset {}", self.topic, self.partition, self.offset)
    }
}

/// Everything that can stop a stoat application.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input record's key or value could not be decoded, or its timestamp extracted (error
    /// policy `Fail`).
    #[error("cannot decode the {part} of the record at {location}: {cause}")]
    Decode {
        /// `"key"`, `"value"` or `"timestamp"`.
        part: &'static str,
        /// Where the record is.
        location: RecordLocation,
        /// What the codec said.
        cause: DecodeError,
    },
    /// An operator returned an error (error policy `Fail`).
    #[error("operator `{operator}` failed on the record from {location}: {cause}")]
    Operator {
        /// The operator's name.
        operator: &'static str,
        /// The input record that led to the failure.
        location: RecordLocation,
        /// What the operator returned (a [`Panicked`] for a panic).
        cause: BoxError,
    },
    /// An output record could not be encoded for its sink topic.
    #[error("cannot encode the {part} of a record for topic `{topic}` (from {location}): {cause}")]
    Encode {
        /// `"key"` or `"value"`.
        part: &'static str,
        /// The sink topic.
        topic: String,
        /// The input record that led to this output.
        location: RecordLocation,
        /// What the codec said.
        cause: EncodeError,
    },
    /// A state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The topology is invalid (conflicting stores, unknown topics, ...).
    #[error("invalid topology `{app}`: {reason}")]
    Topology {
        /// The application id.
        app: String,
        /// What is wrong.
        reason: String,
    },
    /// The log (embedded or Kafka) failed, in a way a retry does not mend (a bad topic, a
    /// fatal producer error).
    #[error("log error: {0}")]
    Log(String),
    /// The log failed in a way that may pass: the broker unreachable, restarting or slow, a
    /// request or a delivery timed out. The engine aborts the epoch and retries it (for up to
    /// `Config::retry_timeout`); the run returns this only when the retries ran out.
    #[error("transient log error: {0}")]
    Transient(String),
    /// The application's transactional producer was fenced: another instance with the same app
    /// id took over, or the broker aborted a transaction that outlived its timeout. This instance
    /// stops without writing more.
    #[error("application `{app}` was fenced: its producer epoch was taken over, by another instance started with the same app id or by the broker aborting a transaction that outlived its timeout (e.g. across a broker outage); this instance stops without writing more; restart it if no other instance runs")]
    Fenced {
        /// The application id.
        app: String,
    },
    /// The broker refused the app's credentials, or the TLS handshake with it failed.
    #[error("the broker refused the app's login ({detail}): check the security settings (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`)")]
    Authentication {
        /// What librdkafka reported (never the credentials).
        detail: String,
    },
    /// The broker refused a request for want of an ACL: the app's principal lacks it. Not retried
    /// (granting it takes an operator), and nothing of the epoch is committed.
    #[error("not authorized: the broker refused {needed} ({detail}); grant it to the app's principal (the book's \"Running on Kafka\" chapter lists every ACL an app needs)")]
    NotAuthorized {
        /// The ACL missing, as far as the broker's answer tells: operation and resource.
        needed: String,
        /// What the broker (librdkafka) reported.
        detail: String,
    },
    /// A test read a topic the topology does not write.
    #[error("topic `{topic}` is not written by this topology (it writes: {known}); a misspelled topic would read as empty")]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
        /// The topics the topology writes.
        known: String,
    },
    /// A buffer of windows waiting to close is full, and its policy is to stop.
    #[error("store `{store}` holds {limit} windows waiting to close (its bound, split over the lanes), and its policy is to stop when full: raise the bound, shorten the grace period, or emit early when full (`BufferFull::EmitEarly`)")]
    BufferFull {
        /// The windows' store.
        store: String,
        /// The bound.
        limit: usize,
    },
    /// A crash test found a crash after which the committed outputs differ from a run without
    /// one ([`crate::testing::CrashTest`]); the message names the crash point, the epoch and the
    /// first differing output.
    #[error("crash test failed: {0}")]
    CrashTest(String),
    /// A runtime task stopped unexpectedly.
    #[error("the runtime failed: {0}")]
    Runtime(String),
    /// An I/O operation failed.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        cause: std::io::Error,
    },
}

impl Error {
    /// Whether a retry of the epoch may succeed ([`Error::Transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transient(_))
    }
}

/// Errors from state stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// LMDB reported an error.
    #[error("state store `{store}`: {reason}")]
    Lmdb {
        /// The store (or `"<environment>"`).
        store: String,
        /// What LMDB reported.
        reason: String,
    },
    /// An operator read a key of a table that another lane owns.
    #[error("table `{store}` is read on lane {lane} under a key that lane {owner} owns: an operator sees another lane's updates of a table only once they commit, so it may read its record's own key only (every lane follows a global table, which any lane may read under any key); join the stream with the table, or make it a global table")]
    NotOwned {
        /// The table's store.
        store: String,
        /// The reading lane.
        lane: usize,
        /// The lane that owns the key.
        owner: usize,
    },
    /// The LMDB map is full: the state does not fit in `state_map_size`.
    #[error("state in {path} is full: it does not fit in the LMDB map size of {map_size} bytes; the app stops, and its restart doubles the map (as far as the disk has room), or raise `Config::state_map_size`")]
    Full {
        /// The state directory.
        path: String,
        /// The configured map size.
        map_size: usize,
    },
    /// A stored value could not be decoded.
    #[error("state store `{store}`: cannot decode a stored {part}: {reason}")]
    Decode {
        /// The store.
        store: String,
        /// `"key"` or `"value"`.
        part: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A value could not be encoded for storage.
    #[error("state store `{store}`: cannot encode a value: {reason}")]
    Encode {
        /// The store.
        store: String,
        /// What went wrong.
        reason: String,
    },
    /// The state directory holds a store of the same name with other types.
    #[error("state store `{store}` in {path} holds `{stored}`, but the topology declares `{declared}` (its field type as written and its `#[store(version = N)]`); use a new state directory, or rename the store")]
    SchemaMismatch {
        /// The store.
        store: String,
        /// The state directory.
        path: String,
        /// Types recorded in the directory.
        stored: String,
        /// Types the topology declares.
        declared: String,
    },
    /// A key-scoped store was used outside the call that borrowed it.
    #[error("key-scoped state store `{0}` was used outside an operator call")]
    NoKey(String),
    /// The store is not part of the running topology.
    #[error("state store `{0}` is not declared by any operator of this topology")]
    Unknown(String),
    /// The state directory could not be created or opened.
    #[error("cannot open the state directory {path}: {cause}")]
    Open {
        /// The directory.
        path: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The state directory belongs to another application.
    #[error("the state directory {path} belongs to application `{found}`, not `{app}`: give each app its own state directory, or set `Config::rebuild_foreign_state` to empty it and rebuild the state of `{app}` from its changelogs")]
    ForeignState {
        /// The state directory.
        path: String,
        /// The app id recorded in it.
        found: String,
        /// The app id of the application starting on it.
        app: String,
    },
    /// Another process (or another app in this one) uses the state directory.
    #[error("the state directory {path} is in use by another instance (a second instance of the app, or one still stopping); one directory serves one running instance")]
    Locked {
        /// The state directory.
        path: String,
    },
    /// The state does not fit its changelog: the topic was recreated, or the state is older
    /// than the changelog keeps deletes.
    #[error(
        "state store `{store}` in {path} cannot be brought up to date from changelog `{changelog}`: {reason}"
    )]
    Stale {
        /// The store.
        store: String,
        /// The state directory.
        path: String,
        /// The changelog topic.
        changelog: String,
        /// What does not fit.
        reason: String,
    },
    /// The state directory's stores were written by a stoat version that lays keys out
    /// differently.
    #[error("the state directory {path} holds stores whose keys are laid out as `{found}` (another stoat version); this one reads `{expected}`: set `Config::rebuild_foreign_state` to rebuild the stores from their changelogs")]
    Layout {
        /// The state directory.
        path: String,
        /// The layout found.
        found: String,
        /// The layout this version writes.
        expected: String,
    },
    /// Reading or writing the state directory failed (a full disk, an I/O error).
    #[error("cannot write the state in {path}: {cause}; {space}")]
    Disk {
        /// The state directory.
        path: String,
        /// The I/O error.
        cause: String,
        /// The file system's free space, and what to do when it is full.
        space: String,
    },
    /// The state writer thread is gone.
    #[error("the state writer thread stopped")]
    WriterGone,
    /// The app crashed in a crash test ([`crate::testing::CrashTest`]): nothing more is written.
    #[error("the app crashed (simulated by the crash test): nothing more is written to the state")]
    Crashed,
}

/// User code panicked while it processed a record: the panic's message. It reaches the error
/// policy as the operator's error (downcast a `BoxError` to it to tell a panic apart).
#[derive(Debug, thiserror::Error)]
#[error("panicked: {message}")]
pub struct Panicked {
    /// The panic's message (its payload when that is a string).
    pub message: String,
}

impl Panicked {
    /// Runs `f`, turning a panic into `Err(Panicked)`. The callers hold nothing a panic could
    /// leave half-changed except the user's own state, which a failing record's epoch discards
    /// under `ErrorPolicy::Fail` (and keeps, as Kafka Streams does, when the record is skipped).
    pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panicked> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
            let message = match payload.downcast::<String>() {
                Ok(s) => *s,
                Err(payload) => match payload.downcast::<&'static str>() {
                    Ok(s) => (*s).to_string(),
                    Err(_) => "a panic with a non-string payload".to_string(),
                },
            };
            Panicked { message }
        })
    }
}

/// A codec could not decode bytes into a value.
#[derive(Debug, thiserror::Error)]
#[error("{codec} codec: {reason}")]
pub struct DecodeError {
    /// The codec's name.
    pub codec: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// A codec could not encode a value into bytes.
#[derive(Debug, thiserror::Error)]
#[error("{codec} codec: {reason}")]
pub struct EncodeError {
    /// The codec's name.
    pub codec: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// `Result` with stoat's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
