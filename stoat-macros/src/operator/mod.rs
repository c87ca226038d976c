//! `#[stoat::operator]`: parse the function, check its signature, expand it into a unit struct
//! implementing `Operator`.

mod expand;
mod parse;

use proc_macro2::TokenStream;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let result = (|| {
        let args = parse::Args::parse(args)?;
        let func: syn::ItemFn = syn::parse2(item.clone()).map_err(|e| {
            syn::Error::new(
                e.span(),
                "`#[stoat::operator]` goes on a function: `fn name(value: V) -> T { ... }`",
            )
        })?;
        let op = parse::Operator::analyze(args, func)?;
        let tokens = expand::expand(&op);
        crate::debug::dump("operator", &op.func.sig.ident.to_string(), &tokens);
        Ok(tokens)
    })();
    crate::debug::finish(result, item)
}
