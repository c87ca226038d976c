//! `STOAT_MACROS_DEBUG=<name>|*`: prints a macro's expansion to stderr, formatted when the
//! `pretty-debug` feature is on (it adds prettyplease to every build, so it is off by default).

use proc_macro2::TokenStream;

pub(crate) fn dump(macro_name: &str, item_name: &str, tokens: &TokenStream) {
    let Ok(wanted) = std::env::var("STOAT_MACROS_DEBUG") else { return };
    if wanted != "*" && wanted != item_name {
        return;
    }
    eprintln!("// #[stoat::{macro_name}] {item_name}\n{}", render(tokens));
}

#[cfg(feature = "pretty-debug")]
fn render(tokens: &TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    }
}

#[cfg(not(feature = "pretty-debug"))]
fn render(tokens: &TokenStream) -> String {
    tokens.to_string()
}

/// Turns a result into tokens: on error, the error next to the original item, so the item still
/// exists for the IDE and for the rest of the crate.
pub(crate) fn finish(result: syn::Result<TokenStream>, original: TokenStream) -> TokenStream {
    match result {
        Ok(tokens) => tokens,
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(original);
            out
        }
    }
}
