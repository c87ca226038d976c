//! `#[stoat::state]`: parse the struct, check its stores and their names, expand a `StateSet`
//! impl that opens, buffers and seals every store.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, ItemStruct, LitStr};

struct StoreField {
    ident: syn::Ident,
    ty: syn::Type,
    name: LitStr,
    version: u32,
}

/// What `#[store(...)]` says of a field.
#[derive(Default)]
struct StoreOptions {
    name: Option<LitStr>,
    version: Option<u32>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let result = (|| {
        if !args.is_empty() {
            return Err(syn::Error::new(
                args.span(),
                "`#[stoat::state]` takes no arguments; name stores with `#[store(name = \"...\")]` on fields",
            ));
        }
        let mut st: ItemStruct = syn::parse2(item.clone()).map_err(|e| {
            syn::Error::new(
                e.span(),
                "`#[stoat::state]` goes on a struct with named fields, each a store such as `Table<K, V>`",
            )
        })?;
        let fields = validate(&mut st)?;
        let tokens = expand_struct(&st, &fields);
        crate::debug::dump("state", &st.ident.to_string(), &tokens);
        Ok(tokens)
    })();
    crate::debug::finish(result, without_store_attributes(item))
}

/// The item as written, minus the `#[store]` field attributes only this macro understands, so a
/// failed expansion does not add "cannot find attribute `store`" to the real error.
fn without_store_attributes(item: TokenStream) -> TokenStream {
    match syn::parse2::<ItemStruct>(item.clone()) {
        Ok(mut st) => {
            for field in st.fields.iter_mut() {
                field.attrs.retain(|a| !a.path().is_ident("store"));
            }
            quote!(#st)
        }
        Err(_) => item,
    }
}

fn store_options(field: &syn::Field) -> syn::Result<StoreOptions> {
    let mut options = StoreOptions::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("store")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                if options.name.is_some() {
                    return Err(meta.error("`name` is specified more than once"));
                }
                options.name = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else if meta.path.is_ident("version") {
                if options.version.is_some() {
                    return Err(meta.error("`version` is specified more than once"));
                }
                let lit: syn::LitInt = meta.value()?.parse()?;
                let version = lit.base10_parse::<u32>()?;
                if version == 0 {
                    return Err(syn::Error::new(lit.span(), "store versions start at 1"));
                }
                options.version = Some(version);
                Ok(())
            } else {
                Err(meta.error("unknown store option; expected `name = \"...\"` or `version = N`"))
            }
        })?;
    }
    Ok(options)
}

fn validate(st: &mut ItemStruct) -> syn::Result<Vec<StoreField>> {
    if !st.generics.params.is_empty() {
        return Err(syn::Error::new(
            st.generics.span(),
            "state structs cannot be generic: each store has concrete types",
        ));
    }
    let named = match &mut st.fields {
        Fields::Named(named) => named,
        other => {
            return Err(syn::Error::new(
                other.span(),
                "a state struct has named fields, one per store: `struct Counts { per_word: Table<String, u64> }`",
            ))
        }
    };
    if named.named.is_empty() {
        return Err(syn::Error::new(
            named.span(),
            "this state struct declares no stores; add a field such as `counts: Table<String, u64>`",
        ));
    }
    let mut out: Vec<StoreField> = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for field in named.named.iter_mut() {
        let Some(ident) = field.ident.clone() else { continue };
        let (name, version) = match store_options(field) {
            Ok(o) => (
                o.name.unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span())),
                o.version.unwrap_or(1),
            ),
            Err(e) => {
                match &mut errors {
                    Some(all) => all.combine(e),
                    None => errors = Some(e),
                }
                continue;
            }
        };
        field.attrs.retain(|a| !a.path().is_ident("store"));
        let value = name.value();
        let valid = !value.is_empty()
            && value.len() <= 200
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'))
            && !value.starts_with("__");
        let err = if !valid {
            Some(syn::Error::new(
                name.span(),
                format!("invalid store name `{value}`: use ASCII letters, digits, `.` and `_` (at most 200, not starting with `__`; no `-`, so that `<app>-<store>-changelog` names one store of one app)"),
            ))
        } else {
            out.iter().find(|f| f.name.value() == value).map(|first| {
                syn::Error::new(
                    name.span(),
                    format!("duplicate store name `{value}`: field `{}` already uses it", first.ident),
                )
            })
        };
        if let Some(e) = err {
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
            continue;
        }
        out.push(StoreField { ident, ty: field.ty.clone(), name, version });
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn expand_struct(st: &ItemStruct, fields: &[StoreField]) -> TokenStream {
    let p = quote!(::stoat::__private);
    let ident = &st.ident;
    let owner = ident.to_string();
    let specs = fields.iter().map(|f| {
        let (ty, name, version) = (&f.ty, &f.name, f.version);
        let declared = quote!(#ty).to_string();
        quote_spanned!(ty.span()=> <#ty as #p::Store>::spec(#p::StoreDecl {
            name: #name,
            owner: #owner,
            declared: #declared,
            version: #version,
        }))
    });
    let opens = fields.iter().map(|f| {
        let (id, ty, name) = (&f.ident, &f.ty, &f.name);
        quote_spanned!(ty.span()=> #id: <#ty as #p::Store>::open(__env, #name)?)
    });
    let ends = fields.iter().map(|f| {
        let (id, ty) = (&f.ident, &f.ty);
        quote!(<#ty as #p::Store>::end_batch(&mut self.#id);)
    });
    let seals = fields.iter().map(|f| {
        let (id, ty) = (&f.ident, &f.ty);
        quote!(<#ty as #p::Store>::seal(&mut self.#id, __out)?;)
    });
    let discards = fields.iter().map(|f| {
        let (id, ty) = (&f.ident, &f.ty);
        quote!(<#ty as #p::Store>::discard(&mut self.#id);)
    });
    quote! {
        #st

        const _: () = {
            impl #p::StateSet for #ident {
                fn stores() -> ::std::vec::Vec<#p::StoreSpec> {
                    ::std::vec![#(#specs),*]
                }
                fn open(__env: &#p::StateEnv) -> ::core::result::Result<Self, #p::StoreError> {
                    ::core::result::Result::Ok(Self { #(#opens),* })
                }
                fn end_batch(&mut self) {
                    #(#ends)*
                }
                fn seal(
                    &mut self,
                    __out: &mut ::std::vec::Vec<#p::StoreDelta>,
                ) -> ::core::result::Result<(), #p::StoreError> {
                    #(#seals)*
                    ::core::result::Result::Ok(())
                }
                fn discard(&mut self) {
                    #(#discards)*
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    #[test]
    fn expansion_declares_each_store_by_name() {
        let tokens = super::expand(
            quote!(),
            quote! {
                struct Counts {
                    per_word: Table<String, u64>,
                    #[store(name = "lines.seen")]
                    lines: Table<u64, ()>,
                }
            },
        );
        let file: syn::File = syn::parse2(tokens).expect("the expansion parses as Rust");
        let text: String = prettyplease::unparse(&file).split_whitespace().collect();
        assert!(text.contains("impl::stoat::__private::StateSetforCounts"), "{text}");
        assert!(text.contains("name:\"per_word\",owner:\"Counts\""), "{text}");
        assert!(text.contains("name:\"lines.seen\",owner:\"Counts\""), "{text}");
        assert!(text.contains("declared:\"Table<u64,()>\",version:1u32"), "{text}");
        assert!(!text.contains("#[store"), "the helper attribute is consumed: {text}");
    }
}
