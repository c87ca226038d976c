//! Compile-fail tests: every misuse of the macros and of the typed topology gives one clear
//! error at the offending token. The cases live in the workspace's `tests/ui/`, snapshots next
//! to them; refresh with `TRYBUILD=overwrite cargo test -p stoat-macros --test ui`.
//!
//! The harness lives here, not in the root package, so that trybuild is a dependency of this
//! crate's tests only: `cargo run --example word_count` does not build it.

#[test]
fn macro_and_wiring_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("../tests/ui/*.rs");
}
