//! The stoat runtime. Users depend on the `stoat` facade, which re-exports what is public here.
//!
//! Where things live:
//! - `operator/`: the operator model the macros generate code against: record inputs,
//!   parameters (state, context, key-scoped state), outputs, the sealed `Operator` trait;
//! - `topology/`: the typed builder (`Topology`, `Stream`), per-lane nodes;
//! - `lane/`: the lane-group tasks that run the lanes, a lane's pipeline, the groups' outbox for
//!   re-keyed records, key-to-lane routing, the in-flight budget, the context nodes share;
//! - `commit/`: the engine and its epoch loop (dispatch, quiesce, seal, commit);
//! - `state/`: LMDB environment, typed stores, the writer thread;
//! - `log/`: the `Log` interface and the embedded log;
//! - `codec/`: key and value codecs;
//! - `testing/`: the test driver and the operator harness;
//! - `http/`: the HTTP endpoints (health, metrics, stores, pause/resume, offsets);
//! - `app.rs`, `config.rs`, `settings.rs` (file and environment), `stats.rs`, `status.rs`, `error.rs`, `record.rs`: the application
//!   around them.

pub mod app;
pub mod clock;
pub mod codec;
pub mod commit;
pub mod config;
pub mod error;
#[cfg(feature = "http")]
mod http;
mod lane;
pub mod log;
pub mod operator;
pub mod record;
pub mod settings;
pub mod state;
pub mod stats;
pub mod status;
pub mod testing;
pub mod topology;
