//! Reading an operator: its arguments, where its function is (a free function, or the one
//! method of an `impl` block for operators built from a value), which parameter is the record,
//! which the key, and which are operator parameters. Roles are positional and syntactic only
//! where Rust's types cannot decide them (`#[key]`, `&` vs `&mut`); what each type *is* (a value
//! or a whole record, a state struct or a context, a value or a re-keying output) is left to the
//! traits the expansion names.

use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, ReturnType, Signature, Type};

/// `#[stoat::operator(name = "...", crate = "...")]`.
pub(crate) struct Args {
    pub name: Option<LitStr>,
    pub krate: Option<syn::Path>,
    pub version: Option<u32>,
    /// `expire_after = "30m"`: key-scoped state not written for that long is deleted.
    pub expire_after: Option<(i64, proc_macro2::Span)>,
    /// `expire_on = "wall_clock"` (default `"stream_time"`).
    pub expire_on_wall_clock: Option<bool>,
    /// Settings of an async operator, each with where it is written.
    pub run: Vec<(RunSetting, proc_macro2::Span)>,
}

/// A setting of an async operator (`concurrency = 64`, `timeout = "2s"`, ...).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunSetting {
    Concurrency(u64),
    Limit(u64),
    TimeoutMs(i64),
    Retries(u32),
    BackoffMs(i64),
    MaxBackoffMs(i64),
}

impl RunSetting {
    fn name(self) -> &'static str {
        match self {
            RunSetting::Concurrency(_) => "concurrency",
            RunSetting::Limit(_) => "limit",
            RunSetting::TimeoutMs(_) => "timeout",
            RunSetting::Retries(_) => "retries",
            RunSetting::BackoffMs(_) => "backoff",
            RunSetting::MaxBackoffMs(_) => "max_backoff",
        }
    }
}

/// Milliseconds of a duration written `<n>ms`, `<n>s`, `<n>m`, `<n>h` or `<n>d`.
fn duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor).filter(|&ms| ms > 0)
}

impl Args {
    pub fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
        let mut args = Args {
            name: None,
            krate: None,
            version: None,
            expire_after: None,
            expire_on_wall_clock: None,
            run: Vec::new(),
        };
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
            } else if meta.path.is_ident("crate") {
                if args.krate.is_some() {
                    return Err(meta.error("`crate` is specified more than once"));
                }
                let lit: LitStr = meta.value()?.parse()?;
                args.krate = Some(lit.parse()?);
                Ok(())
            } else if meta.path.is_ident("version") {
                if args.version.is_some() {
                    return Err(meta.error("`version` is specified more than once"));
                }
                let lit: syn::LitInt = meta.value()?.parse()?;
                let version = lit.base10_parse::<u32>()?;
                if version == 0 {
                    return Err(syn::Error::new(lit.span(), "store versions start at 1"));
                }
                args.version = Some(version);
                Ok(())
            } else if meta.path.is_ident("expire_after") {
                if args.expire_after.is_some() {
                    return Err(meta.error("`expire_after` is specified more than once"));
                }
                let lit: LitStr = meta.value()?.parse()?;
                let ms =
                    duration_ms(&lit.value()).ok_or_else(|| syn::Error::new(lit.span(), DURATION_HELP))?;
                args.expire_after = Some((ms, lit.span()));
                Ok(())
            } else if meta.path.is_ident("expire_on") {
                if args.expire_on_wall_clock.is_some() {
                    return Err(meta.error("`expire_on` is specified more than once"));
                }
                let lit: LitStr = meta.value()?.parse()?;
                args.expire_on_wall_clock = Some(match lit.value().as_str() {
                    "stream_time" => false,
                    "wall_clock" => true,
                    _ => {
                        return Err(syn::Error::new(
                            lit.span(),
                            "`expire_on` is \"stream_time\" or \"wall_clock\"",
                        ))
                    }
                });
                Ok(())
            } else if let Some(setting) = run_setting(&meta)? {
                if args.run.iter().any(|(s, _)| s.name() == setting.name()) {
                    return Err(meta.error(format!("`{}` is specified more than once", setting.name())));
                }
                args.run.push((setting, meta.path.span()));
                Ok(())
            } else {
                Err(meta.error(
                    "unknown argument; `#[stoat::operator]` takes `name = \"...\"`, `version = N`, `expire_after = \"<duration>\"`, `expire_on = \"stream_time\"|\"wall_clock\"`, `crate = \"...\"`, and for an `async fn` `concurrency = N`, `limit = N`, `timeout = \"<duration>\"`, `retries = N`, `backoff = \"<duration>\"`, `max_backoff = \"<duration>\"`",
                ))
            }
        });
        syn::parse::Parser::parse2(parser, tokens)?;
        Ok(args)
    }
}

const DURATION_HELP: &str =
    "write a positive duration such as \"500ms\", \"30s\", \"15m\", \"12h\" or \"7d\"";

/// An async operator's setting, if `meta` is one.
fn run_setting(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<Option<RunSetting>> {
    let count = |meta: &syn::meta::ParseNestedMeta<'_>, min: u64| -> syn::Result<u64> {
        let lit: syn::LitInt = meta.value()?.parse()?;
        let n = lit.base10_parse::<u64>()?;
        if n < min {
            return Err(syn::Error::new(lit.span(), format!("must be at least {min}")));
        }
        Ok(n)
    };
    let duration = |meta: &syn::meta::ParseNestedMeta<'_>| -> syn::Result<i64> {
        let lit: LitStr = meta.value()?.parse()?;
        duration_ms(&lit.value()).ok_or_else(|| syn::Error::new(lit.span(), DURATION_HELP))
    };
    let path = &meta.path;
    Ok(Some(if path.is_ident("concurrency") {
        RunSetting::Concurrency(count(meta, 1)?)
    } else if path.is_ident("limit") {
        RunSetting::Limit(count(meta, 1)?)
    } else if path.is_ident("timeout") {
        RunSetting::TimeoutMs(duration(meta)?)
    } else if path.is_ident("retries") {
        let n = count(meta, 0)?;
        RunSetting::Retries(u32::try_from(n).map_err(|_| meta.error("too many retries"))?)
    } else if path.is_ident("backoff") {
        RunSetting::BackoffMs(duration(meta)?)
    } else if path.is_ident("max_backoff") {
        RunSetting::MaxBackoffMs(duration(meta)?)
    } else {
        return Ok(None);
    }))
}

/// How a parameter is passed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    Value,
    Ref,
    Mut,
}

/// A parameter's type without its reference, and how it is passed.
pub(crate) struct Arg {
    pub ty: Type,
    pub pass: Pass,
}

impl Arg {
    fn of(ty: &Type) -> Arg {
        match ty {
            Type::Reference(r) => Arg {
                ty: (*r.elem).clone(),
                pass: if r.mutability.is_some() { Pass::Mut } else { Pass::Ref },
            },
            other => Arg { ty: other.clone(), pass: Pass::Value },
        }
    }
}

/// What the function returns, and the marker that pins the outer shape where the type is
/// written as one (an `Option<u64>` is a record value too; written out, it means "zero or one").
pub(crate) enum Ret {
    /// A nameable type, read through `Output`.
    Named { ty: Type, pin: Option<Pin> },
    /// `impl Iterator<Item = T>`: not nameable; its item type is read through `Single`.
    Iter { item: Type },
}

/// A pinned outer shape: `Option`, `Vec`, or `Result` of another.
pub(crate) enum Pin {
    Maybe,
    Many,
    Fallible(Option<Box<Pin>>),
}

/// Where the function lives.
pub(crate) enum Host {
    /// A free function: the marker struct is named after it, with its visibility.
    Free { vis: syn::Visibility },
    /// The one method of `impl Self { fn m(&self, ...) }`: `Self` is the operator.
    Method { self_ty: Type },
}

pub(crate) struct Operator {
    pub sig: Signature,
    pub host: Host,
    pub name: String,
    pub krate: syn::Path,
    /// The schema version of its `Keyed` store.
    pub version: u32,
    /// `(ms, wall clock)`: its key-scoped state expires after that long without a write.
    pub expiry: Option<(i64, bool)>,
    pub key: Option<Arg>,
    pub input: Arg,
    pub params: Vec<Arg>,
    pub ret: Ret,
    /// `Some` for an `async fn`: its settings.
    pub run: Option<Vec<RunSetting>>,
}

/// Removes `#[key]` from the function's parameters; returns the position of the one that had it.
pub(crate) fn take_key_attribute(sig: &mut Signature) -> syn::Result<Option<usize>> {
    let mut found = None;
    let mut errors: Option<syn::Error> = None;
    for (i, arg) in sig.inputs.iter_mut().enumerate() {
        let FnArg::Typed(pat) = arg else { continue };
        let before = pat.attrs.len();
        let mut bad = None;
        pat.attrs.retain(|a| {
            if a.path().is_ident("key") {
                if !matches!(a.meta, syn::Meta::Path(_)) {
                    bad = Some(syn::Error::new(a.span(), "`#[key]` takes no arguments"));
                }
                false
            } else {
                true
            }
        });
        if let Some(e) = bad {
            combine(&mut errors, e);
        }
        if pat.attrs.len() < before {
            if found.is_some() {
                combine(&mut errors, syn::Error::new(pat.span(), "only one parameter can be the `#[key]`"));
            }
            found = Some(i);
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

const INPUT_HELP: &str = "an operator takes the record it processes first: its value (`value: V` or `&V`), the whole record (`Record<K, V>` or `&Record<K, V>`), or `#[key] key: K` then the value";

impl Operator {
    /// Reads the signature of a free function (`host = Free`) or of an operator's method.
    pub fn analyze(args: Args, mut sig: Signature, host: Host) -> syn::Result<Operator> {
        let key_at = take_key_attribute(&mut sig)?;
        let is_async = sig.asyncness.is_some();
        if let (false, Some((setting, span))) = (is_async, args.run.first()) {
            return Err(syn::Error::new(
                *span,
                format!("`{}` sets how an async operator runs; this function is not `async`", setting.name()),
            ));
        }
        if let (true, Some((_, span))) = (is_async, args.expire_after) {
            return Err(syn::Error::new(
                span,
                "an async operator keeps no key-scoped state to expire: keep state in a synchronous operator before or after it",
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
        let mut errors: Option<syn::Error> = None;
        let mut typed = Vec::new();
        for (i, arg) in sig.inputs.iter().enumerate() {
            match (arg, &host) {
                (FnArg::Receiver(r), Host::Free { .. }) => combine(
                    &mut errors,
                    syn::Error::new(
                        r.span(),
                        "a free operator function has no `self`; for an operator with settings, put the method in `#[stoat::operator] impl YourType { ... }`",
                    ),
                ),
                (FnArg::Receiver(r), Host::Method { .. }) => {
                    if i != 0 || r.reference.is_none() || r.mutability.is_some() {
                        combine(&mut errors, syn::Error::new(r.span(), "an operator method takes `&self`"));
                    }
                }
                (FnArg::Typed(pat), _) => typed.push((i, pat)),
            }
        }
        if let Host::Method { .. } = host {
            if !matches!(sig.inputs.first(), Some(FnArg::Receiver(_))) {
                combine(
                    &mut errors,
                    syn::Error::new(sig.ident.span(), "an operator method takes `&self` first"),
                );
            }
        }
        let mut key = None;
        let mut input = None;
        let mut params = Vec::new();
        for (i, pat) in typed {
            let arg = Arg::of(&pat.ty);
            if let Type::ImplTrait(_) = &arg.ty {
                combine(
                    &mut errors,
                    syn::Error::new(
                        pat.ty.span(),
                        "operator parameters need concrete types, not `impl Trait`",
                    ),
                );
                continue;
            }
            if Some(i) == key_at {
                if input.is_some() {
                    combine(
                        &mut errors,
                        syn::Error::new(pat.span(), "the `#[key]` parameter comes before the record's value"),
                    );
                } else if arg.pass == Pass::Mut {
                    combine(
                        &mut errors,
                        syn::Error::new(pat.ty.span(), "take the key as `K` or `&K`: it is read-only"),
                    );
                } else {
                    key = Some(arg);
                }
            } else if input.is_none() {
                if arg.pass == Pass::Mut {
                    combine(
                        &mut errors,
                        syn::Error::new(pat.ty.span(), format!("the first parameter is the record, taken as `V` or `&V`, not `&mut`; {INPUT_HELP}")),
                    );
                }
                input = Some(arg);
            } else if is_async {
                if arg.pass != Pass::Ref {
                    let what = if arg.pass == Pass::Mut {
                        "an async operator cannot take `&mut` parameters: a call that awaits must not hold a lane's state; keep state in a synchronous operator before or after it, and take"
                    } else {
                        "this parameter comes after the record (the first parameter), so it is taken by reference:"
                    };
                    combine(
                        &mut errors,
                        syn::Error::new(
                            pat.ty.span(),
                            format!("{what} shared resources as `&Res<T>` (provided with `Topology::provide`) and `&Context`"),
                        ),
                    );
                }
                params.push(arg);
            } else {
                if arg.pass == Pass::Value {
                    let hint = if params.is_empty() && key.is_none() {
                        "; to take the key and then the value, mark the key's parameter `#[key]`"
                    } else {
                        ""
                    };
                    combine(
                        &mut errors,
                        syn::Error::new(
                            pat.ty.span(),
                            format!("this parameter comes after the record (the first parameter), so it is an operator parameter, taken by reference: `&S`/`&mut S` (a `#[stoat::state]` struct), `&Context` or `&mut Keyed<V>`{hint}"),
                        ),
                    );
                }
                params.push(arg);
            }
        }
        let ret = match parse_ret(&sig.output, sig.paren_token.span.close()) {
            Ok(r) => Some(r),
            Err(e) => {
                combine(&mut errors, e);
                None
            }
        };
        if input.is_none() && errors.is_none() {
            combine(&mut errors, syn::Error::new(sig.paren_token.span.join(), INPUT_HELP));
        }
        if let Some(e) = errors {
            return Err(e);
        }
        let (Some(input), Some(ret)) = (input, ret) else {
            return Err(syn::Error::new(sig.span(), INPUT_HELP));
        };
        let name = args.name.map(|l| l.value()).unwrap_or_else(|| sig.ident.to_string());
        let krate = args.krate.unwrap_or_else(|| syn::parse_quote!(::stoat));
        let version = args.version.unwrap_or(1);
        if let (None, Some(_)) = (args.expire_after, args.expire_on_wall_clock) {
            return Err(syn::Error::new(
                sig.ident.span(),
                "`expire_on` goes with `expire_after = \"<duration>\"`",
            ));
        }
        if let (Some((_, span)), None) = (args.expire_after, &key) {
            return Err(syn::Error::new(
                span,
                "`expire_after` expires the state of a key: the operator takes its `#[key]`",
            ));
        }
        let expiry = args.expire_after.map(|(ms, _)| (ms, args.expire_on_wall_clock.unwrap_or(false)));
        let run = is_async.then(|| args.run.iter().map(|(s, _)| *s).collect());
        Ok(Operator { sig, host, name, krate, version, expiry, key, input, params, ret, run })
    }
}

/// The function of a free operator.
pub(crate) fn free(args: Args, func: &ItemFn) -> syn::Result<Operator> {
    Operator::analyze(args, func.sig.clone(), Host::Free { vis: func.vis.clone() })
}

const RETURN_HELP: &str = "an operator returns what it emits: `T`, `Option<T>`, `Vec<T>` or `impl Iterator<Item = T>`, optionally in `Result<_, E>`; `T` is a value, `KeyValue<K, V>` (re-keying) or `Emit<K, V>` (setting timestamp and headers)";

fn parse_ret(ret: &ReturnType, after_params: proc_macro2::Span) -> syn::Result<Ret> {
    let ty = match ret {
        ReturnType::Default => {
            return Err(syn::Error::new(
                after_params,
                format!("the operator returns nothing; {RETURN_HELP} (to emit nothing, return `Option<T>`)"),
            ))
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    match ty {
        Type::ImplTrait(it) => Ok(Ret::Iter { item: iterator_item(it)? }),
        Type::Reference(r) => Err(syn::Error::new(
            r.span(),
            "operators emit owned values, not references: return e.g. `String` instead of `&str`",
        )),
        Type::Tuple(t) if t.elems.is_empty() => Err(syn::Error::new(
            ty.span(),
            format!("the operator returns `()`; {RETURN_HELP} (to emit nothing, return `Option<T>`)"),
        )),
        _ if bytes_as_many(ty) => Err(syn::Error::new(
            ty.span(),
            "`Vec<u8>` here would emit every byte as a record of its own: to emit the bytes as one value, return `Option<Vec<u8>>` (`Some(bytes)`); to emit bytes as records, return `impl Iterator<Item = u8>`",
        )),
        _ => Ok(Ret::Named { ty: ty.clone(), pin: pin(ty) }),
    }
}

/// Whether the return type is `Vec<u8>` (also in `Result<_, E>`), whose `Vec` is read as "many
/// records": almost always meant as one value of bytes.
fn bytes_as_many(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(seg) = p.path.segments.last() else { return false };
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else { return false };
    let Some(first) = args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    }) else {
        return false;
    };
    match seg.ident.to_string().as_str() {
        "Vec" => matches!(first, Type::Path(e) if e.path.is_ident("u8")),
        "Result" => bytes_as_many(first),
        _ => false,
    }
}

/// The outer shape as written, if it is one: `Option<..>`, `Vec<..>`, `Result<..>` (also an
/// alias such as `anyhow::Result<T>`, read by its first argument). An alias named otherwise is
/// read by its type alone.
fn pin(ty: &Type) -> Option<Pin> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &seg.arguments else { return None };
    let first = args.args.iter().find_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    })?;
    match seg.ident.to_string().as_str() {
        "Option" => Some(Pin::Maybe),
        "Vec" => Some(Pin::Many),
        "Result" => Some(Pin::Fallible(pin(first).map(Box::new))),
        _ => None,
    }
}

fn iterator_item(it: &syn::TypeImplTrait) -> syn::Result<Type> {
    for bound in &it.bounds {
        if let syn::TypeParamBound::Trait(t) = bound {
            if let Some(seg) = t.path.segments.last() {
                if let syn::PathArguments::AngleBracketed(a) = &seg.arguments {
                    for arg in &a.args {
                        if let syn::GenericArgument::AssocType(assoc) = arg {
                            if assoc.ident == "Item" {
                                return Ok(assoc.ty.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    Err(syn::Error::new(it.span(), RETURN_HELP))
}
