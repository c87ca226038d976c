//! Reading an operator's signature: which parameters are the record (key, value, or a whole
//! `Record`), the state and the context; what shape its return type has.

use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, LitStr, PathArguments, ReturnType, Type, TypeParamBound};

/// `#[stoat::operator(name = "...")]`.
pub(crate) struct Args {
    pub name: Option<LitStr>,
}

impl Args {
    pub fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
        let mut args = Args { name: None };
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("name") {
                if args.name.is_some() {
                    return Err(meta.error("`name` is specified more than once"));
                }
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "the operator name cannot be empty"));
                }
                args.name = Some(lit);
                Ok(())
            } else {
                Err(meta.error("unknown argument; `#[stoat::operator]` takes only `name = \"...\"`"))
            }
        });
        syn::parse::Parser::parse2(parser, tokens)?;
        Ok(args)
    }
}

/// How the function takes an input: by value or by reference.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Value,
    Ref,
}

/// One parameter's role.
#[allow(clippy::large_enum_variant)] // a handful per operator, at compile time
pub(crate) enum Param {
    Key { ty: Type, pass: Pass },
    Value { ty: Type, pass: Pass },
    Record { key: Type, value: Type, pass: Pass },
    State { ty: Type },
    Context { pass: Pass },
}

/// How many outputs one input gives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Many {
    One,
    Option,
    Iter,
}

/// What each output is: a value (the key stays) or a `KeyValue` (a new key).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Item {
    Value(Type),
    Rekey { key: Type, value: Type },
}

pub(crate) struct Output {
    pub fallible: bool,
    pub many: Many,
    pub item: Item,
}

pub(crate) struct Operator {
    pub func: ItemFn,
    pub name: String,
    pub params: Vec<Param>,
    pub output: Output,
}

impl Operator {
    pub fn key_type(&self) -> Option<&Type> {
        self.params.iter().find_map(|p| match p {
            Param::Key { ty, .. } => Some(ty),
            Param::Record { key, .. } => Some(key),
            _ => None,
        })
    }
    pub fn value_type(&self) -> Option<&Type> {
        self.params.iter().find_map(|p| match p {
            Param::Value { ty, .. } => Some(ty),
            Param::Record { value, .. } => Some(value),
            _ => None,
        })
    }
    pub fn state_type(&self) -> Option<&Type> {
        self.params.iter().find_map(|p| match p {
            Param::State { ty } => Some(ty),
            _ => None,
        })
    }

    pub fn analyze(args: Args, func: ItemFn) -> syn::Result<Operator> {
        let sig = &func.sig;
        if let Some(a) = &sig.asyncness {
            return Err(syn::Error::new(
                a.span(),
                "async operators are not supported yet; make the function synchronous",
            ));
        }
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new(
                sig.generics.span(),
                "operators cannot be generic: the topology needs their concrete record types",
            ));
        }
        if let Some(c) = &sig.constness {
            return Err(syn::Error::new(c.span(), "operators cannot be `const fn`"));
        }
        if let Some(v) = &sig.variadic {
            return Err(syn::Error::new(v.span(), "operators cannot be variadic"));
        }
        let mut params = Vec::new();
        let mut record_params = Vec::new();
        let mut errors: Option<syn::Error> = None;
        let mut push_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        for arg in &sig.inputs {
            let pat = match arg {
                FnArg::Receiver(r) => {
                    push_err(syn::Error::new(r.span(), "operators are free functions: remove `self`"));
                    continue;
                }
                FnArg::Typed(pat) => pat,
            };
            match classify(&pat.ty) {
                Ok(Some(param)) => {
                    let kind = |p: &Param| match p {
                        Param::State { .. } => Some("state"),
                        Param::Context { .. } => Some("context"),
                        _ => None,
                    };
                    if let Some(what) = kind(&param) {
                        if params.iter().any(|p| kind(p) == Some(what)) {
                            push_err(syn::Error::new(
                                pat.ty.span(),
                                format!("an operator takes at most one {what} parameter"),
                            ));
                        }
                    }
                    params.push(param);
                }
                Ok(None) => {
                    record_params.push(params.len());
                    params.push(Param::Value { ty: (*pat.ty).clone(), pass: Pass::Value });
                }
                Err(e) => push_err(e),
            }
        }
        let has_record = params.iter().any(|p| matches!(p, Param::Record { .. }));
        match (record_params.len(), has_record) {
            (0, false) => push_err(syn::Error::new(
                sig.paren_token.span.join(),
                "an operator takes the record it processes: add a value parameter (`value: V`), key and value parameters, or a `Record<K, V>`",
            )),
            (0, true) => {}
            (1, false) => {}
            (2, false) => {
                if let Param::Value { ty, .. } = &params[record_params[0]] {
                    let (ty, pass) = strip_ref(ty);
                    params[record_params[0]] = Param::Key { ty, pass };
                }
            }
            (_, true) => push_err(syn::Error::new(
                sig.inputs.span(),
                "an operator that takes a `Record<K, V>` takes no separate key or value parameter",
            )),
            (_, false) => push_err(syn::Error::new(
                sig.inputs.span(),
                "too many record parameters: an operator takes a value, a key and a value, or a `Record<K, V>` (plus optionally `&mut State` and `&Context`)",
            )),
        }
        for i in record_params {
            if let Param::Value { ty, .. } = &params[i] {
                let (ty, pass) = strip_ref(ty);
                params[i] = Param::Value { ty, pass };
            }
        }
        let output = match parse_output(&sig.output, sig.paren_token.span.close()) {
            Ok(o) => Some(o),
            Err(e) => {
                push_err(e);
                None
            }
        };
        if let Some(e) = errors {
            return Err(e);
        }
        let name = args.name.map(|l| l.value()).unwrap_or_else(|| sig.ident.to_string());
        let output = output.ok_or_else(|| syn::Error::new(sig.output.span(), "unsupported return type"))?;
        Ok(Operator { func, name, params, output })
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

fn generic_types(seg: &syn::PathSegment) -> Vec<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `Some` for state, context and whole-record parameters; `None` for a key or value parameter.
fn classify(ty: &Type) -> syn::Result<Option<Param>> {
    let (inner, pass, mutable) = match ty {
        Type::Reference(r) => (&*r.elem, Pass::Ref, r.mutability.is_some()),
        other => (other, Pass::Value, false),
    };
    if let Some(seg) = last_segment(inner) {
        if seg.ident == "Context" {
            if mutable {
                return Err(syn::Error::new(ty.span(), "take the context as `&Context` (it is read-only)"));
            }
            return Ok(Some(Param::Context { pass }));
        }
        if seg.ident == "Record" {
            let args = generic_types(seg);
            if args.len() != 2 || mutable {
                return Err(syn::Error::new(
                    ty.span(),
                    "take a whole record as `Record<K, V>` or `&Record<K, V>`",
                ));
            }
            return Ok(Some(Param::Record { key: args[0].clone(), value: args[1].clone(), pass }));
        }
    }
    if mutable {
        return Ok(Some(Param::State { ty: inner.clone() }));
    }
    if let Type::ImplTrait(_) = inner {
        return Err(syn::Error::new(ty.span(), "operator parameters need concrete types, not `impl Trait`"));
    }
    Ok(None)
}

/// The record type behind a key or value parameter: `&T` reads a `T`, `&str` a `String`,
/// `&[u8]` a `Vec<u8>`.
fn strip_ref(ty: &Type) -> (Type, Pass) {
    match ty {
        Type::Reference(r) => {
            let elem = &*r.elem;
            if matches!(elem, Type::Path(p) if p.path.is_ident("str")) {
                return (syn::parse_quote_spanned!(elem.span()=> ::std::string::String), Pass::Ref);
            }
            if let Type::Slice(s) = elem {
                if matches!(&*s.elem, Type::Path(p) if p.path.is_ident("u8")) {
                    return (syn::parse_quote_spanned!(elem.span()=> ::std::vec::Vec<u8>), Pass::Ref);
                }
            }
            (elem.clone(), Pass::Ref)
        }
        other => (other.clone(), Pass::Value),
    }
}

const RETURN_HELP: &str = "an operator returns what it emits: `T`, `Option<T>`, `Vec<T>` or `impl Iterator<Item = T>`, optionally in `Result<_, E>`; `T` may be `KeyValue<K, V>` to re-key";

fn parse_output(ret: &ReturnType, after_params: proc_macro2::Span) -> syn::Result<Output> {
    let ty = match ret {
        ReturnType::Default => {
            return Err(syn::Error::new(
                after_params,
                format!("the operator returns nothing; {RETURN_HELP} (to emit nothing, return `Option<T>`)"),
            ))
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    let mut fallible = false;
    let mut ty = ty;
    if let Some(seg) = last_segment(ty) {
        if seg.ident == "Result" {
            // `Result<T, E>`, or an alias with the error fixed (`anyhow::Result<T>`,
            // `io::Result<T>`): the generated code needs only `E: Into<BoxError>`.
            let args = generic_types(seg);
            let Some(&first) = args.first() else {
                return Err(syn::Error::new(ty.span(), "name the value type: `Result<T, E>` or `Result<T>`"));
            };
            fallible = true;
            ty = first;
        }
    }
    let (many, item_ty) = match ty {
        Type::ImplTrait(it) => (Many::Iter, iterator_item(it)?),
        _ => match last_segment(ty) {
            Some(seg) if seg.ident == "Option" || seg.ident == "Vec" => {
                let args = generic_types(seg);
                let Some(inner) = args.first() else {
                    return Err(syn::Error::new(ty.span(), RETURN_HELP));
                };
                (if seg.ident == "Option" { Many::Option } else { Many::Iter }, (*inner).clone())
            }
            _ => (Many::One, ty.clone()),
        },
    };
    check_owned(&item_ty)?;
    let item = match last_segment(&item_ty) {
        Some(seg) if seg.ident == "KeyValue" => {
            let args = generic_types(seg);
            if args.len() != 2 {
                return Err(syn::Error::new(item_ty.span(), "a re-keying operator emits `KeyValue<K, V>`"));
            }
            Item::Rekey { key: args[0].clone(), value: args[1].clone() }
        }
        _ => Item::Value(item_ty),
    };
    Ok(Output { fallible, many, item })
}

fn iterator_item(it: &syn::TypeImplTrait) -> syn::Result<Type> {
    for bound in &it.bounds {
        if let TypeParamBound::Trait(t) = bound {
            if let Some(seg) = t.path.segments.last() {
                if seg.ident == "Iterator" || seg.ident == "IntoIterator" {
                    if let PathArguments::AngleBracketed(a) = &seg.arguments {
                        for arg in &a.args {
                            if let GenericArgument::AssocType(assoc) = arg {
                                if assoc.ident == "Item" {
                                    return Ok(assoc.ty.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Err(syn::Error::new(it.span(), RETURN_HELP))
}

fn check_owned(ty: &Type) -> syn::Result<()> {
    match ty {
        Type::Reference(r) => Err(syn::Error::new(
            r.span(),
            "operators emit owned values, not references: return e.g. `String` instead of `&str`",
        )),
        Type::ImplTrait(_) => Err(syn::Error::new(ty.span(), RETURN_HELP)),
        Type::Tuple(t) if t.elems.is_empty() => Err(syn::Error::new(
            ty.span(),
            format!("the operator returns `()`; {RETURN_HELP} (to emit nothing, return `Option<T>`)"),
        )),
        _ => Ok(()),
    }
}
