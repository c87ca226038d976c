//! Testing support: [`TestDriver`] runs a whole topology on the embedded log with typed input and
//! output topics, in the spirit of Kafka Streams' `TopologyTestDriver`; [`Harness`] runs one
//! operator on scratch state; [`CrashTest`] proves a topology exactly-once across crashes.

pub(crate) mod crash;
mod driver;
mod harness;
mod topics;

pub use crash::{CrashPoint, CrashReport, CrashTest};
pub use driver::TestDriver;
pub use harness::Harness;
pub use topics::{TestInput, TestOutput};
