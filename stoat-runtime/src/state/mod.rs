//! State: global, LMDB-backed stores. Any lane reads any key; each lane buffers its writes for the
//! current epoch, and the writer thread applies all lanes' writes at the barrier in one LMDB
//! write transaction.

mod env;
mod key;
mod query;
mod reader;
mod set;
mod table;
mod tagged;
mod writer;

pub use env::StateEnv;
pub(crate) use key::key_bytes;
pub use key::{KeyPrefix, KeyRef, StoreKey};
pub use query::{Scan, Scanned};
pub use reader::StoreReader;
pub use set::{JsonCodec, StateSet, Store, StoreDecl, StoreSpec};
pub use table::{StoreValue, Table};
pub use writer::StoreDelta;
pub(crate) use writer::{Pending, StateWriter};
