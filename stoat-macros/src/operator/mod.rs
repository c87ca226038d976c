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

#[cfg(test)]
mod tests {
    use quote::quote;

    fn expanded(item: proc_macro2::TokenStream) -> String {
        let tokens = super::expand(quote!(), item);
        let file: syn::File = syn::parse2(tokens).expect("the expansion parses as Rust");
        prettyplease::unparse(&file).split_whitespace().collect()
    }

    #[test]
    fn generated_code_names_only_the_facade() {
        let text = expanded(quote! {
            fn count(word: &str, n: u64, counts: &mut Counts) -> Result<u64, StoreError> { Ok(n) }
        });
        assert!(
            text.contains("impl::stoat::__private::Operator<::std::string::String,u64>forcount"),
            "{text}"
        );
        assert!(text.contains("typeState=Counts;"));
        assert!(text.contains("constREKEYS:bool=false;"));
        assert!(!text.contains("stoat_runtime"), "{text}");
    }

    #[test]
    fn value_only_operators_work_on_any_key_and_rekeying_ones_say_so() {
        let text = expanded(quote! {
            fn split(line: String) -> Vec<KeyValue<String, u64>> { Vec::new() }
        });
        assert!(text.contains("impl<__StoatKey:::stoat::__private::Key,>::stoat::__private::Operator<__StoatKey,String>forsplit"), "{text}");
        assert!(text.contains("typeOutKey=String;"));
        assert!(text.contains("constREKEYS:bool=true;"));
    }

    #[test]
    fn misuse_keeps_the_item_next_to_the_error() {
        let tokens = super::expand(
            quote!(),
            quote!(
                async fn f(v: u64) -> u64 {
                    v
                }
            ),
        )
        .to_string();
        assert!(tokens.contains("compile_error"), "{tokens}");
        assert!(tokens.contains("async fn f"), "{tokens}");
    }
}
