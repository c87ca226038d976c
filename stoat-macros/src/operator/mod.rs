//! `#[stoat::operator]`: on a function, or on an `impl` block with one `&self` method (an
//! operator built from a value). Parse, check the signature, expand the `Operator` impl; the
//! function itself is emitted as written (minus `#[key]`), so it stays a plain function.

mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let result = (|| {
        let args = parse::Args::parse(args)?;
        match syn::parse2::<syn::Item>(item.clone()) {
            Ok(syn::Item::Fn(mut func)) => {
                let op = parse::free(args, &func)?;
                parse::take_key_attribute(&mut func.sig)?;
                let cfgs: Vec<_> = func.attrs.iter().filter(|a| is_cfg(a)).collect();
                let generated = expand::expand(&op, &cfgs);
                let tokens = quote!(#func #generated);
                crate::debug::dump("operator", &op.sig.ident.to_string(), &tokens);
                Ok(tokens)
            }
            Ok(syn::Item::Impl(mut block)) => {
                let (op, cleaned) = method(args, &block)?;
                block = cleaned;
                let cfgs: Vec<_> = block.attrs.iter().filter(|a| is_cfg(a)).collect();
                let generated = expand::expand(&op, &cfgs);
                let tokens = quote!(#block #generated);
                crate::debug::dump("operator", &op.sig.ident.to_string(), &tokens);
                Ok(tokens)
            }
            Ok(other) => Err(syn::Error::new(other.span(), USAGE)),
            Err(e) => Err(syn::Error::new(e.span(), USAGE)),
        }
    })();
    crate::debug::finish(result, without_key_attributes(item))
}

const USAGE: &str = "`#[stoat::operator]` goes on a function (`fn name(value: V) -> T { ... }`) or on an `impl` block with one `&self` method (an operator with settings)";

fn is_cfg(a: &syn::Attribute) -> bool {
    a.path().is_ident("cfg") || a.path().is_ident("cfg_attr")
}

/// The operator of `impl Type { fn method(&self, ...) }`, and the block without `#[key]`.
fn method(args: parse::Args, block: &syn::ItemImpl) -> syn::Result<(parse::Operator, syn::ItemImpl)> {
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "an operator's `impl` block is inherent: `impl YourType { fn ... }`",
        ));
    }
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new(
            block.generics.span(),
            "operator types cannot be generic: the topology needs their concrete record types",
        ));
    }
    let methods: Vec<_> = block
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            syn::ImplItem::Fn(f) => Some((i, f)),
            _ => None,
        })
        .collect();
    let [(at, func)] = methods.as_slice() else {
        return Err(syn::Error::new(
            block.self_ty.span(),
            "an operator's `impl` block has exactly one method, the one that processes records (`fn name(&self, value: V) -> T`)",
        ));
    };
    let host = parse::Host::Method { self_ty: (*block.self_ty).clone() };
    let op = parse::Operator::analyze(args, func.sig.clone(), host)?;
    let mut cleaned = block.clone();
    if let syn::ImplItem::Fn(f) = &mut cleaned.items[*at] {
        parse::take_key_attribute(&mut f.sig)?;
    }
    Ok((op, cleaned))
}

/// The item as written minus `#[key]` (only this macro understands it) and a free function's
/// `self`, so a failed expansion adds no second error to the real one.
fn without_key_attributes(item: TokenStream) -> TokenStream {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(mut func)) => {
            let _ = parse::take_key_attribute(&mut func.sig);
            // A free function with `self` is already reported; keep rustc from reporting it again.
            func.sig.inputs =
                func.sig.inputs.into_iter().filter(|a| !matches!(a, syn::FnArg::Receiver(_))).collect();
            quote!(#func)
        }
        Ok(syn::Item::Impl(mut block)) => {
            for it in &mut block.items {
                if let syn::ImplItem::Fn(f) = it {
                    let _ = parse::take_key_attribute(&mut f.sig);
                }
            }
            quote!(#block)
        }
        _ => item,
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    fn expanded(item: proc_macro2::TokenStream) -> String {
        let tokens = super::expand(quote!(), item);
        let file: syn::File = syn::parse2(tokens).expect("the expansion parses as Rust");
        prettyplease::unparse(&file).split_whitespace().collect()
    }

    #[test]
    fn the_function_stays_and_a_braced_marker_names_the_operator() {
        let text = expanded(quote! {
            fn count(#[key] word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> { Ok(n) }
        });
        assert!(text.contains("fncount(word:&str,n:u64,counts:&mutCounts)"), "{text}");
        assert!(text.contains("structcount{}"), "{text}");
        assert!(
            text.contains("Counts:::stoat::__private::ParamMut<<strasi::std::borrow::ToOwned>::Owned>")
                || text.contains("Counts:::stoat::__private::ParamMut<<stras::std::borrow::ToOwned>::Owned>"),
            "{text}"
        );
        assert!(!text.contains("stoat_runtime"), "{text}");
        assert!(!text.contains("#[key]"), "{text}");
    }

    #[test]
    fn value_only_operators_work_on_any_key() {
        let text = expanded(quote! {
            fn split(line: String) -> Vec<KeyValue<String, u64>> { Vec::new() }
        });
        assert!(text.contains("impl<__StoatKey:::stoat::__private::Key,"), "{text}");
        assert!(text.contains("::stoat::__private::Many<__StoatM1>"), "{text}");
    }

    #[test]
    fn the_crate_path_can_be_overridden() {
        let tokens = super::expand(
            quote!(crate = "my::stoat"),
            quote!(
                fn f(v: u64) -> u64 {
                    v
                }
            ),
        )
        .to_string();
        assert!(tokens.contains("my :: stoat :: __private"), "{tokens}");
        assert!(
            !tokens.contains(":: stoat :: __private :: Operator") || tokens.contains("my :: stoat"),
            "{tokens}"
        );
    }

    #[test]
    fn misuse_keeps_the_item_next_to_the_error_without_key_attributes() {
        let tokens = super::expand(
            quote!(),
            quote!(
                async fn f(#[key] k: u64, v: u64) -> u64 {
                    v
                }
            ),
        )
        .to_string();
        assert!(tokens.contains("compile_error"), "{tokens}");
        assert!(tokens.contains("async fn f"), "{tokens}");
        assert!(!tokens.contains("# [key]"), "{tokens}");
    }
}
