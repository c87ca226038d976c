//! The expansion of `#[stoat::operator]`: a unit struct named like the function, with the function
//! as `call` and a `harness()`, and an `Operator` impl that unpacks the record, calls the
//! function and emits its outputs. Generated code names only `::stoat::__private`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{Item, Many, Operator, Param, Pass};

pub(crate) fn expand(op: &Operator) -> TokenStream {
    let p = quote!(::stoat::__private);
    let func = &op.func;
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let name = &op.name;
    let (doc_attrs, fn_attrs): (Vec<_>, Vec<_>) = func.attrs.iter().partition(|a| a.path().is_ident("doc"));
    let inputs = &func.sig.inputs;
    let output = &func.sig.output;
    let block = &func.block;
    let unsafety = &func.sig.unsafety;

    let generic_key = op.key_type().is_none();
    let key_ty = match op.key_type() {
        Some(k) => quote!(#k),
        None => quote!(__StoatKey),
    };
    let value_ty = op.value_type().map(|v| quote!(#v)).unwrap_or_else(|| quote!(()));
    let state_ty = op.state_type().map(|s| quote!(#s)).unwrap_or_else(|| quote!(()));
    let rekeys = matches!(op.output.item, Item::Rekey { .. });
    let (out_key, out_value) = match &op.output.item {
        Item::Rekey { key, value } => (quote!(#key), quote!(#value)),
        Item::Value(v) => (key_ty.clone(), quote!(#v)),
    };

    // Keep the input key for the outputs unless the operator re-keys.
    let keeps_key = !rekeys;
    let mut prelude = TokenStream::new();
    let mut call_args = Vec::new();
    let has_record_param = op.params.iter().any(|p| matches!(p, Param::Record { .. }));
    if has_record_param {
        if keeps_key {
            prelude.extend(quote!(let __key = ::core::clone::Clone::clone(&__record.key);));
        }
    } else {
        prelude.extend(quote!(let #p::Record { key: __key, value: __value, .. } = __record;));
    }
    for param in &op.params {
        call_args.push(match param {
            Param::Key { pass: Pass::Ref, .. } => quote!(&__key),
            Param::Key { pass: Pass::Value, .. } if keeps_key => quote!(::core::clone::Clone::clone(&__key)),
            Param::Key { pass: Pass::Value, .. } => quote!(__key),
            Param::Value { pass: Pass::Ref, .. } => quote!(&__value),
            Param::Value { pass: Pass::Value, .. } => quote!(__value),
            Param::Record { pass: Pass::Ref, .. } => quote!(&__record),
            Param::Record { pass: Pass::Value, .. } => quote!(__record),
            Param::State { .. } => quote!(__state),
            Param::Context { pass: Pass::Ref } => quote!(__ctx),
            Param::Context { pass: Pass::Value } => quote!(*__ctx),
        });
    }
    let unwrap = if op.output.fallible {
        quote! {
            let __ret = match __ret {
                ::core::result::Result::Ok(v) => v,
                ::core::result::Result::Err(e) => return ::core::result::Result::Err(::core::convert::Into::into(e)),
            };
        }
    } else {
        TokenStream::new()
    };
    let emit_one = |v: TokenStream| {
        if rekeys {
            quote!({ let __kv = #v; __out.emit(__kv.key, __kv.value); })
        } else if op.output.many == Many::Iter {
            quote!(__out.emit(::core::clone::Clone::clone(&__key), #v);)
        } else {
            quote!(__out.emit(__key, #v);)
        }
    };
    let emit = match op.output.many {
        Many::One => emit_one(quote!(__ret)),
        Many::Option => {
            let e = emit_one(quote!(__v));
            quote!(if let ::core::option::Option::Some(__v) = __ret { #e })
        }
        Many::Iter => {
            let e = emit_one(quote!(__v));
            quote!(for __v in __ret { #e })
        }
    };
    let impl_generics = if generic_key { quote!(<__StoatKey: #p::Key>) } else { quote!() };
    let harness_key = if generic_key { quote!(()) } else { key_ty.clone() };
    let unused = if rekeys && !has_record_param { quote!(let _ = &__key;) } else { quote!() };

    // Bound checks spanned at the user's types, so a bad type is reported where it is written.
    let mut checks = TokenStream::new();
    if let Some(s) = op.state_type() {
        checks.extend(quote_spanned!(s.span()=> __stoat_assert_state::<#s>();));
    }
    if let Some(k) = op.key_type() {
        checks.extend(quote_spanned!(k.span()=> __stoat_assert_key::<#k>();));
    }
    if let Some(v) = op.value_type() {
        checks.extend(quote_spanned!(v.span()=> __stoat_assert_data::<#v>();));
    }
    match &op.output.item {
        Item::Rekey { key, value } => {
            checks.extend(quote_spanned!(key.span()=> __stoat_assert_key::<#key>();));
            checks.extend(quote_spanned!(value.span()=> __stoat_assert_data::<#value>();));
        }
        Item::Value(v) => checks.extend(quote_spanned!(v.span()=> __stoat_assert_data::<#v>();)),
    }

    quote! {
        #(#doc_attrs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #ident;

        impl #ident {
            /// Calls the operator's function directly.
            #(#fn_attrs)*
            #vis #unsafety fn call(#inputs) #output #block

            /// A harness that runs this operator on scratch state, for unit tests.
            #[allow(dead_code)]
            #vis fn harness() -> #p::Result<#p::Harness<#ident, #harness_key, #value_ty>> {
                #p::Harness::new(#ident)
            }
        }

        const _: () = {
            fn __stoat_assert_state<S: #p::StateSet>() {}
            fn __stoat_assert_key<K: #p::Key>() {}
            fn __stoat_assert_data<V: #p::Data>() {}
            #[allow(dead_code)]
            fn __stoat_checks() {
                #checks
            }

            impl #impl_generics #p::Operator<#key_ty, #value_ty> for #ident {
                type OutKey = #out_key;
                type OutValue = #out_value;
                type State = #state_ty;
                const NAME: &'static str = #name;
                const REKEYS: bool = #rekeys;

                #[allow(unused_variables, clippy::clone_on_copy, clippy::unit_arg)]
                fn process(
                    &self,
                    __record: #p::Record<#key_ty, #value_ty>,
                    __state: &mut #state_ty,
                    __ctx: &#p::Context<'_>,
                    __out: &mut #p::Emitter<#out_key, #out_value>,
                ) -> ::core::result::Result<(), #p::BoxError> {
                    #prelude
                    #unused
                    let __ret = #ident::call(#(#call_args),*);
                    #unwrap
                    #emit
                    ::core::result::Result::Ok(())
                }
            }
        };
    }
}
