//! The attribute macros of stoat. Each is a thin shim over a module that parses, validates and
//! expands; errors come back as spanned `compile_error!`s next to the user's item.
//!
//! Set `STOAT_MACROS_DEBUG=<item name>` (or `*`) to print an expansion to stderr while building.

use proc_macro::TokenStream;

mod debug;
mod operator;
mod state;

/// Makes a plain function (or the one `&self` method of an `impl` block) a topology operator.
///
/// The first parameter is the record: its value (`V`, `&V`; `&str` reads a `String`) or the
/// whole `Record<K, V>`; a parameter marked `#[key]` before it takes the key. Every later
/// parameter is an operator parameter, by reference: `&S`/`&mut S` for a `#[stoat::state]`
/// struct, `&Context`, `&mut Keyed<V>` for state scoped to the record's key. The return type says
/// what it emits: `T`, `Option<T>`, `Vec<T>` or `impl Iterator<Item = T>`, optionally in
/// `Result<_, E>` with `E: Into<BoxError>` (an `Err` goes to the error policy); `T` is a value
/// (same key), `KeyValue<K, V>` (a new key: the output moves to the lane that owns it) or
/// `Emit<K, V>` (also setting timestamp and headers). Each role is checked through a trait, so
/// type aliases work and each mistake is reported once, at the type.
///
/// The function stays a function; the macro adds a braced marker struct of the same name, the
/// operator: `stream.process(split {})`, `Harness::new(split {})`. On an `impl Type` block, the
/// type is the operator: `stream.process(Threshold { min: 10 })`.
///
/// Arguments: `name = "..."` (errors, metrics, the `Keyed` store), `version = N` (the `Keyed`
/// store's schema version), `crate = "..."` (the path to stoat).
///
/// ```ignore
/// #[stoat::operator]
/// fn split(line: String) -> Vec<KeyValue<String, u64>> {
///     line.split_whitespace().map(|w| KeyValue::new(w.to_lowercase(), 1)).collect()
/// }
///
/// #[stoat::operator]
/// fn count(#[key] word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> { ... }
/// ```
#[proc_macro_attribute]
pub fn operator(args: TokenStream, item: TokenStream) -> TokenStream {
    operator::expand(args.into(), item.into()).into()
}

/// Turns a struct whose fields are stores (such as `Table<K, V>`) into state that operators take
/// as `&mut Self` or `&Self`. Store names default to the field names; `#[store(name = "...")]` renames one;
/// `#[store(version = N)]` (default 1) versions its schema: bump it when a value type changes.
///
/// ```ignore
/// #[stoat::state]
/// struct Counts {
///     per_word: Table<String, u64>,
/// }
/// ```
#[proc_macro_attribute]
pub fn state(args: TokenStream, item: TokenStream) -> TokenStream {
    state::expand(args.into(), item.into()).into()
}
