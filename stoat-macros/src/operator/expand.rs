//! The expansion of `#[stoat::operator]`: an `Operator` impl (for a braced marker struct named
//! like a free function, or for the `Self` type of an operator's `impl` block) that fetches the
//! operator parameters, hands the record to the function and emits what it returns. Every role
//! is resolved through a trait; definition-site checks report a bad type once, spanned at it.
//! Generated code names only `<crate>::__private` (`crate = "..."` overrides `::stoat`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::parse::{Arg, Host, Operator, Pass, Pin, Ret};

/// What expanding a method's operator parameters gives.
#[derive(Default)]
pub(super) struct Params {
    pub bounds: Vec<TokenStream>,
    pub slot_types: Vec<TokenStream>,
    /// `let __slotN = register(...)?;`, and the names bound.
    pub registers: Vec<TokenStream>,
    pub names: Vec<syn::Ident>,
    pub fetches: Vec<TokenStream>,
    pub args: Vec<TokenStream>,
    pub checks: Vec<TokenStream>,
}

/// The operator parameters `params`, whose slots start at `first` in the slots tuple; `key` is
/// the expression of the record key they are fetched for.
fn params(
    p: &TokenStream,
    key_ty: &TokenStream,
    check_key: &TokenStream,
    params: &[Arg],
    first: usize,
    key: &TokenStream,
) -> Params {
    let mut out = Params::default();
    for (i, param) in params.iter().enumerate() {
        let at = first + i;
        let ty = &param.ty;
        let (tr, check, borrow) = match param.pass {
            Pass::Mut => (quote!(#p::ParamMut<#key_ty>), quote!(param_mut), quote!(&mut *)),
            _ => (quote!(#p::ParamRef<#key_ty>), quote!(param_ref), quote!(&*)),
        };
        let guard = format_ident!("__stoat_param{}", at);
        let name = format_ident!("__stoat_slot{}", at);
        let index = syn::Index::from(at);
        out.bounds.push(quote!(#ty: #tr));
        out.slot_types.push(quote!(<#ty as #tr>::Slot));
        out.registers.push(quote!(let #name = <#ty as #tr>::register(__registry)?;));
        out.names.push(name);
        out.fetches.push(quote!(let mut #guard = <#ty as #tr>::fetch(&__slots.#index, __call, &#key)?;));
        out.args.push(quote!(#borrow #guard));
        out.checks.push(quote_spanned!(ty.span()=> #p::check::#check::<#ty, #check_key>();));
    }
    out
}

/// How a method's output is bound and emitted: (bound, marker, check, emit of `__ret` with the
/// key expression `key`), with the output marker named `m`.
fn output(
    p: &TokenStream,
    key_ty: &TokenStream,
    ret: &Ret,
    m: &syn::Ident,
    key: &TokenStream,
    same: Option<(&TokenStream, &TokenStream)>,
) -> (TokenStream, TokenStream, TokenStream, TokenStream) {
    let assoc = same.map(|(k, v)| quote!(, Key = #k, Value = #v));
    match ret {
        Ret::Named { ty, pin } => {
            let marker = pin_marker(p, pin.as_ref(), quote!(#m));
            let check_marker = pin_marker(p, pin.as_ref(), quote!(_));
            (
                quote!(#ty: #p::Output<#key_ty, #marker #assoc>),
                marker.clone(),
                quote_spanned!(ty.span()=> #p::check::output::<#ty, (), #check_marker>();),
                quote!(<#ty as #p::Output<#key_ty, #marker>>::emit(__ret, #key, __out)),
            )
        }
        Ret::Iter { item } => (
            quote!(#item: #p::Single<#key_ty, #m #assoc>),
            quote!(#p::Each<#m>),
            quote_spanned!(item.span()=> #p::check::single::<#item, (), _>();),
            quote! {
                #p::emit_each::<#key_ty, #item, #m>(::core::iter::IntoIterator::into_iter(__ret), #key, __out);
                ::core::result::Result::Ok(())
            },
        ),
    }
}

pub(crate) fn expand(op: &Operator, timer: Option<&Operator>, cfgs: &[&syn::Attribute]) -> TokenStream {
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
    let m1 = format_ident!("__StoatM1");
    let key_place_for_emit = match op.input.pass {
        Pass::Value => quote!(__key),
        _ => quote!(__record.key),
    };
    let (out_bound, out_marker, out_check, emit) =
        output(&p, &key_ty, &op.ret, &m1, &key_place_for_emit, None);
    let out_trait = match &op.ret {
        Ret::Named { ty, .. } => quote!(<#ty as #p::Output<#key_ty, #out_marker>>),
        Ret::Iter { item } => quote!(<#item as #p::Single<#key_ty, #m1>>),
    };
    let rekeys = quote!(#out_trait::REKEYS);
    // With an `#[on_timer]` method, both methods emit one key and value type: impl parameters
    // (carried in the marker) that both outputs' bounds name, as a bound cannot equate two
    // projections.
    let (out_key, out_value, out_bound) = match timer {
        None => (quote!(#out_trait::Key), quote!(#out_trait::Value), out_bound),
        Some(_) => {
            let same = (quote!(__StoatOutKey), quote!(__StoatOutValue));
            let (bound, ..) =
                output(&p, &key_ty, &op.ret, &m1, &key_place_for_emit, Some((&same.0, &same.1)));
            (same.0, same.1, bound)
        }
    };

    // Operator parameters after the record.
    let record_key = quote!(__record.key);
    let main = match op.run {
        Some(_) => super::asynchronous::params(&p, &op.params),
        None => params(&p, &key_ty, &check_key, &op.params, 0, &record_key),
    };
    let mut checks = main.checks.clone();
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
    let param_args = &main.args;
    let key_arg = op.key.as_ref().map(|k| match k.pass {
        Pass::Ref => quote!(::core::borrow::Borrow::borrow(&#key_place),),
        _ => quote!(::core::clone::Clone::clone(&#key_place),),
    });
    let call = match &op.host {
        Host::Free { .. } => quote!(#ident(#key_arg #input_arg, #(#param_args),*)),
        Host::Method { .. } => quote!(self.#ident(#key_arg #input_arg, #(#param_args),*)),
    };
    // An async operator's calls go through `start`; `process` is never called.
    let (process_body, async_items) = match &op.run {
        Some(settings) => {
            let record_ty = quote!(#p::Record<#key_ty, #value_ty>);
            let items = super::asynchronous::items(
                &p,
                op,
                settings,
                (&take, key_arg.as_ref(), &input_arg),
                &main,
                &emit,
                &record_ty,
            );
            let stub = quote! {
                ::core::result::Result::Err(::core::convert::From::from(
                    concat!("async operator `", #name, "` runs through `start`")
                ))
            };
            (stub, items)
        }
        None => {
            let fetches = &main.fetches;
            let body = quote! {
                #(#fetches)*
                #take
                let __ret = #call;
                #emit
            };
            (body, TokenStream::new())
        }
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

    // The `#[on_timer]` method, if any: its parameters' slots follow the main method's, then
    // the timer store's.
    let mut bounds = main.bounds.clone();
    let mut slot_types = main.slot_types.clone();
    let mut registers = main.registers.clone();
    let mut names = main.names.clone();
    let mut markers = vec![quote!(__StoatM0), out_marker.clone()];
    let mut generics = vec![quote!(__StoatM0: 'static), quote!(__StoatM1: 'static)];
    let mut timer_items = TokenStream::new();
    if let Some(t) = timer {
        let first = op.params.len();
        let key = quote!(__key);
        let tp = params(&p, &key_ty, &check_key, &t.params, first, &key);
        let m2 = format_ident!("__StoatM2");
        let (t_bound, t_marker, t_check, t_emit) = match &t.ret {
            // Read through `EmitsLike`, so that a mismatch says which outputs differ.
            Ret::Named { ty, pin } => {
                let marker = pin_marker(&p, pin.as_ref(), quote!(#m2));
                let check_marker = pin_marker(&p, pin.as_ref(), quote!(_));
                (
                    quote!(#ty: #p::EmitsLike<#key_ty, (#out_key, #out_value), #marker>),
                    marker.clone(),
                    quote_spanned!(ty.span()=> #p::check::output::<#ty, (), #check_marker>();),
                    quote!(<#ty as #p::EmitsLike<#key_ty, (#out_key, #out_value), #marker>>::emit_like(__ret, #key, __out)),
                )
            }
            Ret::Iter { .. } => output(&p, &key_ty, &t.ret, &m2, &key, Some((&out_key, &out_value))),
        };
        checks.extend(tp.checks.iter().cloned());
        checks.push(t_check);
        let timer_ty = &t.input.ty;
        let timer_arg =
            quote_spanned!(timer_ty.span()=> <#timer_ty as #p::check::IsTimer>::from_timer(__timer));
        bounds.extend(tp.bounds.iter().cloned());
        bounds.push(t_bound);
        slot_types.extend(tp.slot_types.iter().cloned());
        registers.push(quote!(__registry.next_method();));
        registers.extend(tp.registers.iter().cloned());
        names.extend(tp.names.iter().cloned());
        markers.push(t_marker);
        markers.push(quote!(__StoatOutKey));
        markers.push(quote!(__StoatOutValue));
        generics.push(quote!(__StoatM2: 'static));
        generics.push(quote!(__StoatOutKey: #p::Key));
        generics.push(quote!(__StoatOutValue: #p::Data));
        let t_ident = &t.sig.ident;
        let t_key_arg = t.key.as_ref().map(|k| match k.pass {
            Pass::Ref => quote!(::core::borrow::Borrow::borrow(&__key),),
            _ => quote!(::core::clone::Clone::clone(&__key),),
        });
        let t_fetches = &tp.fetches;
        let t_args = &tp.args;
        timer_items = quote! {
            const TIMERS: bool = true;

            #[allow(unused_variables, unused_mut, clippy::unit_arg, clippy::clone_on_copy, clippy::needless_borrow)]
            fn fire(
                &self,
                __slots: &Self::Slots,
                __key: #key_ty,
                __timer: #p::Timer,
                __call: &#p::Call<'_>,
                __out: &mut #p::Emitter<Self::OutKey, Self::OutValue>,
            ) -> ::core::result::Result<(), #p::BoxError> {
                #(#t_fetches)*
                let __ret = self.#t_ident(#t_key_arg #timer_arg, #(#t_args),*);
                #t_emit
            }
        };
    }

    // The timer store, last in the slots, for `#[on_timer]` and for state expiry.
    if timer.is_some() || op.expiry.is_some() {
        bounds.push(quote!(#key_ty: #p::StoreKey));
        let last = syn::Index::from(slot_types.len());
        slot_types.push(quote!(usize));
        let timers_slot = format_ident!("__stoat_timers");
        registers.push(quote!(let #timers_slot = #p::register_timers::<#key_ty>(__registry)?;));
        names.push(timers_slot);
        timer_items.extend(quote! {
            fn timers(__slots: &Self::Slots) -> ::core::option::Option<usize> {
                ::core::option::Option::Some(__slots.#last)
            }
        });
    }
    if let Some((ms, wall_clock)) = op.expiry {
        let domain = if wall_clock { quote!(WallClock) } else { quote!(StreamTime) };
        timer_items.extend(quote! {
            const EXPIRY: ::core::option::Option<(i64, #p::TimeDomain)> =
                ::core::option::Option::Some((#ms, #p::TimeDomain::#domain));
        });
    }

    quote! {
        #marker_item

        #(#cfgs)*
        const _: () = {
            #[allow(dead_code, clippy::all)]
            fn __stoat_checks() {
                #(#checks)*
            }

            impl #p::Sealed for #target {}

            impl<#key_generic #(#generics),*>
                #p::Operator<#key_ty, #value_ty, (#(#markers),*)> for #target
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
                    #(#registers)*
                    ::core::result::Result::Ok((#(#names,)*))
                }

                #[allow(unused_variables, unused_mut, clippy::unit_arg, clippy::clone_on_copy, clippy::needless_borrow)]
                fn process(
                    &self,
                    __slots: &Self::Slots,
                    __record: #p::Record<#key_ty, #value_ty>,
                    __call: &#p::Call<'_>,
                    __out: &mut #p::Emitter<Self::OutKey, Self::OutValue>,
                ) -> ::core::result::Result<(), #p::BoxError> {
                    #process_body
                }

                #timer_items
                #async_items
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
