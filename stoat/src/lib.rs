//! # stoat
//!
//! Stateful stream processing on Apache Kafka in one process: plain Rust functions, annotated,
//! run on lanes (lightweight tasks, one owner per key), with global state in LMDB and one commit
//! per epoch for the whole topology.
//!
//! ```
//! use stoat::prelude::*;
//!
//! #[stoat::operator]
//! fn split(line: String) -> Vec<KeyValue<String, u64>> {
//!     line.split_whitespace().map(|w| KeyValue::new(w.to_lowercase(), 1)).collect()
//! }
//!
//! #[stoat::state]
//! struct Counts {
//!     per_word: Table<String, u64>,
//! }
//!
//! #[stoat::operator]
//! fn count(#[key] word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> {
//!     let total = counts.per_word.get(word)?.unwrap_or(0) + n;
//!     counts.per_word.put(word.to_owned(), total)?;
//!     Ok(total)
//! }
//!
//! # fn main() -> stoat::Result<()> {
//! let topology = Topology::new("word-count");
//! topology.stream::<(), String>("lines").process(split {}).process(count {}).to("counts");
//!
//! let driver = TestDriver::new(&topology)?;
//! driver.input::<(), String>("lines").pipe_value("to be or not to be".into())?;
//! let counts = driver.output::<String, u64>("counts").read_key_values_to_map()?;
//! assert_eq!(counts["to"], 2);
//! assert_eq!(counts["not"], 1);
//! # Ok(()) }
//! ```

pub use stoat_macros::{operator, state};

pub use stoat_runtime::app::{App, AppHandle};
pub use stoat_runtime::codec;
pub use stoat_runtime::commit::Shutdown;
pub use stoat_runtime::config::{Config, DispatchOrder, Emission, ErrorPolicy, RekeyOrder, TimeSemantics};
pub use stoat_runtime::error::{
    BoxError, DecodeError, EncodeError, Error, RecordLocation, Result, StoreError,
};
pub use stoat_runtime::log;
#[cfg(feature = "logging")]
pub mod logging;
pub use stoat_runtime::clock;
#[cfg(feature = "kafka")]
pub use stoat_runtime::log::{Guarantee, KafkaConfig, OffsetReset};
pub use stoat_runtime::operator;
pub use stoat_runtime::operator::{
    AsyncSettings, Context, Data, Emit, Key, Keyed, Operator, Res, TableView, TimeDomain, Timer, Timers,
};
pub use stoat_runtime::record::{Headers, KeyValue, Record};
pub use stoat_runtime::settings::{self, Settings};
pub use stoat_runtime::state::{
    KeyPrefix, KeyRef, StateSet, Store, StoreKey, StoreReader, StoreValue, Table,
};
pub use stoat_runtime::stats::{EpochTriggers, RunStats};
pub use stoat_runtime::status;
pub use stoat_runtime::testing;
pub use stoat_runtime::topology::{
    BufferFull, Cogrouped, Grouped, GroupedTable, JoinWindows, KTable, Program, Schedule, SessionGrouped,
    SessionWindowed, SessionWindows, SlidingGrouped, SlidingWindows, Split, Stream, TimeWindows, Topic,
    Topology, Window, Windowed, WindowedGrouped,
};

/// What most stoat programs need.
pub mod prelude {
    pub use crate::codec::{Binary, Json, RawBytes, SessionWindowedCodec, Text, TimeWindowed, Unit, Utf8};
    pub use crate::testing::{Harness, TestDriver};
    pub use crate::{
        App, AsyncSettings, BufferFull, Config, Context, DispatchOrder, Emission, Emit, ErrorPolicy,
        JoinWindows, KeyValue, Keyed, Record, RekeyOrder, Res, Schedule, SessionWindowed, SessionWindows,
        Shutdown, SlidingWindows, StoreError, Stream, Table, TableView, TimeDomain, TimeSemantics,
        TimeWindows, Timer, Timers, Topic, Topology, Windowed,
    };
    #[cfg(feature = "kafka")]
    pub use crate::{Guarantee, KafkaConfig};
}

/// Paths the macros' generated code uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use stoat_runtime::error::{BoxError, Result, StoreError};
    pub use stoat_runtime::operator::sealed::Sealed;
    pub use stoat_runtime::operator::{
        async_fetch, async_slot, check, emit_each, register_timers, AsyncCall, AsyncSettings, AsyncSlot,
        Call, Context, Data, Each, EmitsLike, Emitter, Fallible, Input, InputRef, Key, Many, Maybe, Operator,
        Output, ParamMut, ParamRef, Registry, Single, TimeDomain, Timer,
    };
    pub use stoat_runtime::record::Record;
    pub use stoat_runtime::state::{StateEnv, StateSet, Store, StoreDecl, StoreDelta, StoreKey, StoreSpec};
}

/// The book's chapters, compiled and run as doc tests so its code stays true.
#[cfg(doctest)]
mod book {
    #[doc = include_str!("../../book/src/getting-started.md")]
    struct GettingStarted;
    #[doc = include_str!("../../book/src/concepts/operators.md")]
    struct Operators;
    #[doc = include_str!("../../book/src/concepts/keys.md")]
    struct Keys;
    #[doc = include_str!("../../book/src/concepts/state.md")]
    struct State;
    #[doc = include_str!("../../book/src/concepts/timers.md")]
    struct Timers;
    #[doc = include_str!("../../book/src/concepts/async.md")]
    struct AsyncOperators;
    #[doc = include_str!("../../book/src/dsl/stateless.md")]
    struct DslStateless;
    #[doc = include_str!("../../book/src/dsl/aggregations.md")]
    struct DslAggregations;
    #[doc = include_str!("../../book/src/dsl/tables.md")]
    struct DslTables;
    #[doc = include_str!("../../book/src/dsl/joins.md")]
    struct DslJoins;
    #[doc = include_str!("../../book/src/dsl/windows.md")]
    struct DslWindows;
    #[doc = include_str!("../../book/src/testing.md")]
    struct Testing;
    #[cfg(feature = "kafka")]
    #[doc = include_str!("../../book/src/kafka.md")]
    struct Kafka;
    #[cfg(feature = "http")]
    #[doc = include_str!("../../book/src/http.md")]
    struct Http;
    #[cfg(feature = "kafka")]
    #[doc = include_str!("../../book/src/configuration.md")]
    struct Configuration;
    #[doc = include_str!("../../README.md")]
    struct Readme;
}
