//! The attribute macros of stoat. Each is a thin shim over a module that parses, validates and
//! expands; errors come back as spanned `compile_error!`s next to the user's item.
//!
//! Set `STOAT_MACROS_DEBUG=<item name>` (or `*`) to print an expansion to stderr while building.

use proc_macro::TokenStream;

mod debug;
mod operator;
mod state;

/// Turns a plain function into a topology operator.
///
/// The function's parameters say what it takes: one record parameter (the value), or two (key,
/// then value), or a `Record<K, V>`; optionally one `&mut S` where `S` is a `#[stoat::state]`
/// struct, and a `&Context`. Its return type says what it emits: `T`, `Option<T>`, `Vec<T>` or
/// `impl Iterator<Item = T>`, optionally wrapped in `Result<_, E>` or an alias such as
/// `anyhow::Result<_>` (any `E: Into<BoxError>`; an `Err` goes to the error
/// policy). When `T` is `KeyValue<K, V>` the operator re-keys: each output moves to the lane that
/// owns its new key.
///
/// The function becomes a unit struct of the same name: pass it to `Stream::process`, call the
/// function as `name::call(...)`, or test it with `name::harness()`.
///
/// ```ignore
/// #[stoat::operator]
/// fn split(line: String) -> Vec<KeyValue<String, u64>> {
///     line.split_whitespace().map(|w| KeyValue::new(w.to_lowercase(), 1)).collect()
/// }
/// ```
#[proc_macro_attribute]
pub fn operator(args: TokenStream, item: TokenStream) -> TokenStream {
    operator::expand(args.into(), item.into()).into()
}

/// Turns a struct whose fields are stores (such as `Table<K, V>`) into state that operators take
/// as `&mut Self`. Store names default to the field names; `#[store(name = "...")]` renames one;
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
