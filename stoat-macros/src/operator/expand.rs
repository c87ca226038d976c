//! The expansion of `#[stoat::operator]`: an `Operator` impl (for a braced marker struct named
//! like a free function, or for the `Self` type of an operator's `impl` block) that fetches the
//! operator parameters, hands the record to the function and emits what it returns. Every role
//! is resolved through a trait; definition-site checks report a bad type once, spanned at it.
//! Generated code names only `<crate>::__private` (`crate = "..."` overrides `::stoat`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{Host, Operator, Pass, Pin, Ret};

pub(crate) fn expand(op: &Operator, cfgs: &[&syn::Attribute]) -> TokenStream {
    let krate = &op.krate;
    let p = quote!(#krate::__private);
    let ident = &op.sig.ident;
    let name = &op.name;
    let version = op.version;

    // The key type: the `#[key]` parameter's, or any key (a generic parameter).
    let generic_key = op.key.is_none();
    let key_ty = match &op.key {
        Some(k) => {
            let ty = &k.ty;
            match k.pass {
                Pass::Ref => quote_spanned!(ty.span()=> <#ty as ::std::borrow::ToOwned>::Owned),
                _ => quote!(#ty),
            }
        }
        None => quote!(__StoatKey),
    };
    let check_key = match &op.key {
        Some(_) => key_ty.clone(),
        None => quote!(()),
    };

    // The record input.
    let input = &op.input.ty;
    let (input_bound, value_ty) = match op.input.pass {
        Pass::Value => (
            quote!(#input: #p::Input<#key_ty, __StoatM0>),
            quote!(<#input as #p::Input<#key_ty, __StoatM0>>::Value),
        ),
        _ => (
            quote!(#input: #p::InputRef<#key_ty, __StoatM0>),
            quote!(<#input as #p::InputRef<#key_ty, __StoatM0>>::Value),
        ),
    };

    // The output, and the marker that says how it was read.
    let (out_bound, out_key, out_value, rekeys, out_marker, out_check) = match &op.ret {
        Ret::Named { ty, pin } => {
            let marker = pin_marker(&p, pin.as_ref(), quote!(__StoatM1));
            let check_marker = pin_marker(&p, pin.as_ref(), quote!(_));
            let tr = quote!(#p::Output<#key_ty, #marker>);
            (
                quote!(#ty: #tr),
                quote!(<#ty as #tr>::Key),
                quote!(<#ty as #tr>::Value),
                quote!(<#ty as #tr>::REKEYS),
                marker,
                quote_spanned!(ty.span()=> #p::check::output::<#ty, (), #check_marker>();),
            )
        }
        Ret::Iter { item } => {
            let tr = quote!(#p::Single<#key_ty, __StoatM1>);
            (
                quote!(#item: #tr),
                quote!(<#item as #tr>::Key),
                quote!(<#item as #tr>::Value),
                quote!(<#item as #tr>::REKEYS),
                quote!(#p::Each<__StoatM1>),
                quote_spanned!(item.span()=> #p::check::single::<#item, (), _>();),
            )
        }
    };

    // Operator parameters after the record.
    let mut bounds = Vec::new();
    let mut slot_types = Vec::new();
    let mut registers = Vec::new();
    let mut fetches = Vec::new();
    let mut param_args = Vec::new();
    let mut checks = Vec::new();
    for (i, param) in op.params.iter().enumerate() {
        let ty = &param.ty;
        let (tr, check, borrow) = match param.pass {
            Pass::Mut => (quote!(#p::ParamMut<#key_ty>), quote!(param_mut), quote!(&mut *)),
            _ => (quote!(#p::ParamRef<#key_ty>), quote!(param_ref), quote!(&*)),
        };
        let guard = format_ident!("__stoat_param{}", i);
        let index = syn::Index::from(i);
        bounds.push(quote!(#ty: #tr));
        slot_types.push(quote!(<#ty as #tr>::Slot));
        registers.push(quote!(<#ty as #tr>::register(__registry)?));
        fetches.push(quote!(let mut #guard = <#ty as #tr>::fetch(&__slots.#index, __call, &__record.key)?;));
        param_args.push(quote!(#borrow #guard));
        checks.push(quote_spanned!(ty.span()=> #p::check::#check::<#ty, #check_key>();));
    }
    if let Some(k) = &op.key {
        let ty = &k.ty;
        checks.push(quote_spanned!(ty.span()=> #p::check::key::<#key_ty>();));
    }
    checks.push(out_check);

    // Taking the record apart.
    let (take, input_arg, key_place) = match op.input.pass {
        Pass::Value => (
            quote!(let (__input, __key) = <#input as #p::Input<#key_ty, __StoatM0>>::take(__record);),
            quote!(__input),
            quote!(__key),
        ),
        _ => (
            TokenStream::new(),
            quote!(<#input as #p::InputRef<#key_ty, __StoatM0>>::get(&__record)),
            quote!(__record.key),
        ),
    };
    let key_arg = op.key.as_ref().map(|k| match k.pass {
        Pass::Ref => quote!(::core::borrow::Borrow::borrow(&#key_place),),
        _ => quote!(::core::clone::Clone::clone(&#key_place),),
    });
    let call = match &op.host {
        Host::Free { .. } => quote!(#ident(#key_arg #input_arg, #(#param_args),*)),
        Host::Method { .. } => quote!(self.#ident(#key_arg #input_arg, #(#param_args),*)),
    };
    let emit = match &op.ret {
        Ret::Named { ty, .. } => {
            quote!(<#ty as #p::Output<#key_ty, #out_marker>>::emit(__ret, #key_place, __out))
        }
        Ret::Iter { item } => quote! {
            #p::emit_each::<#key_ty, #item, __StoatM1>(::core::iter::IntoIterator::into_iter(__ret), #key_place, __out);
            ::core::result::Result::Ok(())
        },
    };

    let key_generic = generic_key.then(|| quote!(__StoatKey: #p::Key,));
    let (target, marker_item) = match &op.host {
        Host::Free { vis } => {
            let doc = format!(
                "The operator made from the function [`{ident}`]: pass `{ident} {{}}` to `Stream::process`."
            );
            (
                quote!(#ident),
                quote! {
                    #(#cfgs)*
                    #[doc = #doc]
                    #[allow(non_camel_case_types)]
                    #[derive(Clone, Copy, Debug, Default)]
                    #vis struct #ident {}
                },
            )
        }
        Host::Method { self_ty } => (quote!(#self_ty), TokenStream::new()),
    };

    quote! {
        #marker_item

        #(#cfgs)*
        const _: () = {
            #[allow(dead_code, clippy::all)]
            fn __stoat_checks() {
                #(#checks)*
            }

            impl #p::Sealed for #target {}

            impl<#key_generic __StoatM0: 'static, __StoatM1: 'static>
                #p::Operator<#key_ty, #value_ty, (__StoatM0, #out_marker)> for #target
            where
                #input_bound,
                #out_bound,
                #(#bounds,)*
            {
                type OutKey = #out_key;
                type OutValue = #out_value;
                type Slots = (#(#slot_types,)*);
                const NAME: &'static str = #name;
                const VERSION: u32 = #version;
                const REKEYS: bool = #rekeys;

                fn register(
                    &self,
                    __registry: &mut #p::Registry<'_>,
                ) -> ::core::result::Result<Self::Slots, ::std::string::String> {
                    ::core::result::Result::Ok((#(#registers,)*))
                }

                #[allow(unused_variables, unused_mut, clippy::unit_arg, clippy::clone_on_copy, clippy::needless_borrow)]
                fn process(
                    &self,
                    __slots: &Self::Slots,
                    __record: #p::Record<#key_ty, #value_ty>,
                    __call: &#p::Call<'_>,
                    __out: &mut #p::Emitter<Self::OutKey, Self::OutValue>,
                ) -> ::core::result::Result<(), #p::BoxError> {
                    #(#fetches)*
                    #take
                    let __ret = #call;
                    #emit
                }
            }
        };
    }
}

/// The output marker for a pinned shape, ending in `inner`.
fn pin_marker(p: &TokenStream, pin: Option<&Pin>, inner: TokenStream) -> TokenStream {
    match pin {
        None => inner,
        Some(Pin::Maybe) => quote!(#p::Maybe<#inner>),
        Some(Pin::Many) => quote!(#p::Many<#inner>),
        Some(Pin::Fallible(None)) => quote!(#p::Fallible<#inner>),
        Some(Pin::Fallible(Some(next))) => {
            let inner = pin_marker(p, Some(next), inner);
            quote!(#p::Fallible<#inner>)
        }
    }
}
