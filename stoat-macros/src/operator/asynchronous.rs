//! The async half of `#[stoat::operator]`'s expansion (on an `async fn`): parameters fetched
//! through `AsyncParam` (each call owns its own), the `ASYNC` settings, and `start`, which
//! returns the call as a boxed future that emits into its own `Emitter`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::expand::Params;
use super::parse::{Arg, Host, Operator, RunSetting};

/// The parameters after the record of an async operator.
pub(super) fn params(p: &TokenStream, params: &[Arg]) -> Params {
    let mut out = Params::default();
    for (at, param) in params.iter().enumerate() {
        let ty = &param.ty;
        let owned = format_ident!("__stoat_param{}", at);
        let name = format_ident!("__stoat_slot{}", at);
        let index = syn::Index::from(at);
        // No bound in the impl's `where` clause (it would be trivially false for a misused
        // type and reported again at the macro): each use is spanned at the type, so a type
        // that is not a parameter is reported once, there.
        let span = ty.span();
        out.slot_types.push(quote!(#p::AsyncSlot<#ty>));
        out.registers.push(quote_spanned!(span=> let #name = #p::async_slot::<#ty>(__registry)?;));
        out.names.push(name);
        out.fetches
            .push(quote_spanned!(span=> let #owned = #p::async_fetch::<#ty>(&__slots.#index, __context);));
        out.args.push(quote!(&#owned));
    }
    out
}

/// What an async operator adds to its `Operator` impl: `ASYNC` and `start`.
pub(super) fn items(
    p: &TokenStream,
    op: &Operator,
    settings: &[RunSetting],
    (take, key_arg, input_arg): (&TokenStream, Option<&TokenStream>, &TokenStream),
    main: &Params,
    emit: &TokenStream,
    record_ty: &TokenStream,
) -> TokenStream {
    let setters = settings.iter().map(|s| {
        let ms = |ms: &i64| quote!(::core::time::Duration::from_millis(#ms as u64));
        match s {
            RunSetting::Concurrency(n) => {
                let n = *n as usize;
                quote!(.concurrency(#n))
            }
            RunSetting::Limit(n) => {
                let n = *n as usize;
                quote!(.limit(#n))
            }
            RunSetting::TimeoutMs(t) => {
                let d = ms(t);
                quote!(.timeout(#d))
            }
            RunSetting::Retries(n) => quote!(.retries(#n)),
            RunSetting::BackoffMs(t) => {
                let d = ms(t);
                quote!(.backoff(#d))
            }
            RunSetting::MaxBackoffMs(t) => {
                let d = ms(t);
                quote!(.max_backoff(#d))
            }
        }
    });
    let ident = &op.sig.ident;
    let args = &main.args;
    let call = match &op.host {
        Host::Free { .. } => quote!(#ident(#key_arg #input_arg, #(#args),*)),
        Host::Method { .. } => quote!(__this.#ident(#key_arg #input_arg, #(#args),*)),
    };
    let fetches = &main.fetches;
    quote! {
        const ASYNC: ::core::option::Option<#p::AsyncSettings> =
            ::core::option::Option::Some(#p::AsyncSettings::DEFAULT #(#setters)*);

        #[allow(unused_variables, unused_mut, clippy::unit_arg, clippy::clone_on_copy, clippy::needless_borrow)]
        fn start(
            self: &::std::sync::Arc<Self>,
            __slots: &Self::Slots,
            __record: #record_ty,
            __context: &#p::Context,
        ) -> #p::AsyncCall<Self::OutKey, Self::OutValue> {
            let __this = ::std::sync::Arc::clone(self);
            #(#fetches)*
            ::std::boxed::Box::pin(async move {
                let __record = __record;
                #take
                let __ret = #call.await;
                let mut __emitter = #p::Emitter::default();
                let __out = &mut __emitter;
                let __emitted: ::core::result::Result<(), #p::BoxError> = { #emit };
                __emitted.map(|()| __emitter)
            })
        }
    }
}
