//! Compile-fail tests: every misuse of the macros and of the typed topology gives a clear error
//! at the offending token. Snapshots in tests/ui/*.stderr; refresh with `TRYBUILD=overwrite`.

#[test]
fn macro_and_wiring_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
