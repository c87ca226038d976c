//! A logging set-up for applications. stoat reports through `tracing`: warnings (a skipped
//! record under `ErrorPolicy::Skip`, a retried epoch, a stream that goes nowhere) and the info
//! of each run. Nothing is shown until a subscriber is installed; this module installs the usual
//! one, so a `main` needs one line:
//!
//! ```
//! stoat::logging::init(); // RUST_LOG=stoat_runtime=info for more, RUST_LOG=off for nothing
//! ```
//!
//! An application that configures `tracing` itself skips this and installs its own subscriber.

/// Logs to stderr, filtered by `RUST_LOG` (default: `warn`). Does nothing if a global subscriber
/// is already installed (returns `false` then).
pub fn init() -> bool {
    init_with("warn")
}

/// Logs to stderr, filtered by `RUST_LOG`, or by `default_filter` (an `EnvFilter` directive such
/// as `"info"` or `"stoat_runtime=debug"`) when `RUST_LOG` is not set.
pub fn init_with(default_filter: &str) -> bool {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).try_init().is_ok()
}
