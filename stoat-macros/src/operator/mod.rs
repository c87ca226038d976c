//! `#[stoat::operator]`: on a function, or on an `impl` block with one `&self` method (an
//! operator built from a value), and optionally an `#[on_timer]` method its timers call. Parse,
//! check the signatures, expand the `Operator` impl; the functions themselves are emitted as
//! written (minus `#[key]` and `#[on_timer]`), so they stay plain functions.

mod asynchronous;
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
                if let Some(attr) = func.attrs.iter().find(|a| is_on_timer(a)) {
                    return Err(syn::Error::new(
                        attr.span(),
                        "`#[on_timer]` marks the timer method of an operator's `impl` block: `#[stoat::operator] impl YourType { fn process(&self, ..) ..; #[on_timer] fn fire(&self, #[key] key: &K, timer: Timer, ..) .. }`",
                    ));
                }
                let op = parse::free(args, &func)?;
                parse::take_key_attribute(&mut func.sig)?;
                let cfgs: Vec<_> = func.attrs.iter().filter(|a| is_cfg(a)).collect();
                let generated = expand::expand(&op, None, &cfgs);
                let tokens = quote!(#func #generated);
                crate::debug::dump("operator", &op.sig.ident.to_string(), &tokens);
                Ok(tokens)
            }
            Ok(syn::Item::Impl(mut block)) => {
                let (op, timer, cleaned) = method(args, &block)?;
                block = cleaned;
                let cfgs: Vec<_> = block.attrs.iter().filter(|a| is_cfg(a)).collect();
                let generated = expand::expand(&op, timer.as_ref(), &cfgs);
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

const USAGE: &str = "`#[stoat::operator]` goes on a function (`fn name(value: V) -> T { ... }`) or on an `impl` block with one `&self` method (an operator with settings) and, optionally, an `#[on_timer]` method";

fn is_on_timer(a: &syn::Attribute) -> bool {
    a.path().is_ident("on_timer")
}

fn is_cfg(a: &syn::Attribute) -> bool {
    a.path().is_ident("cfg") || a.path().is_ident("cfg_attr")
}

/// The operator of `impl Type { fn method(&self, ...) }` (and of its `#[on_timer]` method, if
/// any), and the block without `#[key]` and `#[on_timer]`.
fn method(
    args: parse::Args,
    block: &syn::ItemImpl,
) -> syn::Result<(parse::Operator, Option<parse::Operator>, syn::ItemImpl)> {
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
    let (timers, records): (Vec<_>, Vec<_>) =
        methods.iter().partition(|(_, f)| f.attrs.iter().any(is_on_timer));
    if let Some((_, extra)) = timers.get(1) {
        return Err(syn::Error::new(
            extra.sig.ident.span(),
            "an operator has at most one `#[on_timer]` method",
        ));
    }
    let [(at, func)] = records.as_slice() else {
        return Err(syn::Error::new(
            block.self_ty.span(),
            "an operator's `impl` block has exactly one method that processes records (`fn name(&self, value: V) -> T`), and optionally one `#[on_timer]` method",
        ));
    };
    for attr in timers.iter().flat_map(|(_, f)| f.attrs.iter().filter(|a| is_on_timer(a))) {
        if !matches!(attr.meta, syn::Meta::Path(_)) {
            return Err(syn::Error::new(attr.span(), "`#[on_timer]` takes no arguments"));
        }
    }
    let host = || parse::Host::Method { self_ty: (*block.self_ty).clone() };
    let krate = args.krate.clone();
    let op = parse::Operator::analyze(args, func.sig.clone(), host())?;
    let timer = match timers.first() {
        Some((_, t)) if op.run.is_some() || t.sig.asyncness.is_some() => {
            return Err(syn::Error::new(
                t.sig.ident.span(),
                "an async operator has no `#[on_timer]` method: timers belong to synchronous operators, which may hold state",
            ));
        }
        Some((_, t)) => {
            let args = parse::Args {
                name: Some(syn::LitStr::new(&op.name, t.sig.ident.span())),
                krate,
                version: Some(op.version),
                expire_after: None,
                expire_on_wall_clock: None,
                run: Vec::new(),
            };
            let timer = parse::Operator::analyze(args, t.sig.clone(), host())?;
            if timer.key.is_some() && op.key.is_none() {
                return Err(syn::Error::new(
                    func.sig.ident.span(),
                    "the `#[on_timer]` method takes the `#[key]`: take it in the method that processes records too, so both name its type",
                ));
            }
            Some(timer)
        }
        None => None,
    };
    let mut cleaned = block.clone();
    for item in &mut cleaned.items {
        if let syn::ImplItem::Fn(f) = item {
            f.attrs.retain(|a| !is_on_timer(a));
        }
    }
    if let syn::ImplItem::Fn(f) = &mut cleaned.items[*at] {
        parse::take_key_attribute(&mut f.sig)?;
    }
    for (i, _) in &timers {
        if let syn::ImplItem::Fn(f) = &mut cleaned.items[*i] {
            parse::take_key_attribute(&mut f.sig)?;
        }
    }
    Ok((op, timer, cleaned))
}

/// The item as written minus `#[key]` (only this macro understands it) and a free function's
/// `self`, so a failed expansion adds no second error to the real one.
fn without_key_attributes(item: TokenStream) -> TokenStream {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(mut func)) => {
            let _ = parse::take_key_attribute(&mut func.sig);
            func.attrs.retain(|a| !is_on_timer(a));
            // A free function with `self` is already reported; keep rustc from reporting it again.
            func.sig.inputs =
                func.sig.inputs.into_iter().filter(|a| !matches!(a, syn::FnArg::Receiver(_))).collect();
            quote!(#func)
        }
        Ok(syn::Item::Impl(mut block)) => {
            for it in &mut block.items {
                if let syn::ImplItem::Fn(f) = it {
                    let _ = parse::take_key_attribute(&mut f.sig);
                    f.attrs.retain(|a| !is_on_timer(a));
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
    fn an_async_function_becomes_an_operator_that_starts_calls() {
        let text = expanded(quote! {
            #[allow(unused)]
            async fn enrich(order: Order, http: &Res<Client>) -> Result<Enriched, Error> { todo!() }
        });
        assert!(text.contains("asyncfnenrich(order:Order,http:&Res<Client>)"), "{text}");
        assert!(text.contains("constASYNC"), "{text}");
        assert!(text.contains("fnstart(self:&::std::sync::Arc<Self>"), "{text}");
        assert!(text.contains("::stoat::__private::async_slot::<Res<Client>,>"), "{text}");
        assert!(text.contains("enrich(__input,&__stoat_param0).await"), "{text}");
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
                async fn f(#[key] k: u64, v: &mut u64) -> u64 {
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
