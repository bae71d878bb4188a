//! Parsing and validation: find the actix-web attribute(s), read path, methods and name.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, ItemFn, Lit, LitStr, Meta, MetaNameValue, Token};

/// actix-web's single-method routing attributes and the method each one routes.
const METHOD_ATTRS: &[(&str, &str)] = &[
    ("get", "GET"),
    ("post", "POST"),
    ("put", "PUT"),
    ("delete", "DELETE"),
    ("patch", "PATCH"),
    ("head", "HEAD"),
    ("options", "OPTIONS"),
    ("trace", "TRACE"),
    ("connect", "CONNECT"),
];

/// One actix-web routing attribute on the handler.
pub(crate) struct ActixAttr {
    /// Index into the fn's attributes.
    pub attr_index: usize,
    pub path: LitStr,
    pub methods: Vec<String>,
    /// `name = "..."` of the actix attribute, if any.
    pub resource_name: Option<LitStr>,
}

/// A validated handler, ready to expand.
pub(crate) struct Route {
    pub item: ItemFn,
    pub id: String,
    pub actix: Vec<ActixAttr>,
    pub doc: String,
}

/// `name = "..."`, the only argument of `#[underscore_route]`.
struct Args {
    name: Option<LitStr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let metas = Punctuated::<MetaNameValue, Token![,]>::parse_terminated(input)?;
        let mut name: Option<LitStr> = None;
        let mut errors: Option<syn::Error> = None;
        let mut push = |err: syn::Error| match &mut errors {
            Some(e) => e.combine(err),
            None => errors = Some(err),
        };
        for meta in metas {
            if !meta.path.is_ident("name") {
                push(syn::Error::new_spanned(
                    &meta.path,
                    "unknown argument of #[underscore_route]; the only argument is `name = \"...\"`",
                ));
                continue;
            }
            match lit_str(&meta.value) {
                Some(lit) if name.is_none() => name = Some(lit),
                Some(_) => push(syn::Error::new_spanned(
                    &meta.path,
                    "`name` is given more than once",
                )),
                None => push(syn::Error::new_spanned(
                    &meta.value,
                    "`name` expects a string literal",
                )),
            }
        }
        match errors {
            Some(err) => Err(err),
            None => Ok(Self { name }),
        }
    }
}

fn lit_str(expr: &Expr) -> Option<LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        _ => None,
    }
}

/// Whether `id` is a valid route id: non-empty ASCII letters, digits, `_`, `-`, `.`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "_all"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn last_ident(attr: &Attribute) -> Option<String> {
    attr.path().segments.last().map(|s| s.ident.to_string())
}

/// The arguments of an actix routing attribute: a path literal, then `key = value` pairs.
pub(crate) struct ActixArgs {
    pub path: LitStr,
    pub pairs: Vec<MetaNameValue>,
}

impl Parse for ActixArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let path: LitStr = input.parse()?;
        let mut pairs = Vec::new();
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            pairs.push(input.parse()?);
        }
        Ok(Self { path, pairs })
    }
}

fn parse_actix(
    attr: &Attribute,
    attr_index: usize,
    method: Option<&str>,
) -> syn::Result<ActixAttr> {
    let Meta::List(list) = &attr.meta else {
        return Err(syn::Error::new_spanned(
            attr,
            "expected a path, as in #[get(\"/path\")]",
        ));
    };
    let args = ActixArgs::parse.parse2(list.tokens.clone())?;
    let mut methods: Vec<String> = method.map(str::to_owned).into_iter().collect();
    let mut resource_name = None;
    for pair in &args.pairs {
        if pair.path.is_ident("method") {
            if let Some(lit) = lit_str(&pair.value) {
                methods.push(lit.value());
            }
        } else if pair.path.is_ident("name") {
            resource_name = lit_str(&pair.value);
        }
    }
    Ok(ActixAttr {
        attr_index,
        path: args.path,
        methods,
        resource_name,
    })
}

pub(crate) fn parse(args: TokenStream, item: TokenStream) -> syn::Result<Route> {
    let item: ItemFn = syn::parse2(item).map_err(|err| {
        syn::Error::new(
            err.span(),
            "#[underscore_route] applies to an async handler fn with an actix-web routing attribute",
        )
    })?;
    let args: Args = syn::parse2(args)?;
    let mut errors: Vec<syn::Error> = Vec::new();

    if item.sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            item.sig.fn_token,
            "#[underscore_route] handlers must be `async fn`",
        ));
    }

    let is_routes = item
        .attrs
        .iter()
        .any(|a| last_ident(a).as_deref() == Some("routes"));
    let mut actix = Vec::new();
    for (index, attr) in item.attrs.iter().enumerate() {
        let Some(ident) = last_ident(attr) else {
            continue;
        };
        let method = METHOD_ATTRS
            .iter()
            .find(|(name, _)| *name == ident)
            .map(|(_, m)| *m);
        let parsed = match (ident.as_str(), method) {
            // Under `#[routes]`, actix only takes bare helper attributes such as `#[get(..)]`.
            (_, Some(method)) if !is_routes || attr.path().get_ident().is_some() => {
                parse_actix(attr, index, Some(method))
            }
            ("route", None) => parse_actix(attr, index, None),
            _ => continue,
        };
        match parsed {
            Ok(parsed) => actix.push(parsed),
            Err(err) => errors.push(err),
        }
    }
    if actix.is_empty() && errors.is_empty() {
        errors.push(syn::Error::new(
            Span::call_site(),
            "#[underscore_route] must be placed above an actix-web routing attribute, \
             e.g. #[underscore_route] #[get(\"/path\")] async fn handler() ...",
        ));
    }

    let declared = match &args.name {
        Some(lit) => Some(lit.clone()),
        None => actix.iter().find_map(|a| a.resource_name.clone()),
    };
    let id = match declared {
        Some(lit) => {
            if !valid_id(&lit.value()) {
                errors.push(syn::Error::new_spanned(
                    &lit,
                    "a route id is made of ASCII letters, digits, `_`, `-` and `.` (and is not `_all`)",
                ));
            }
            lit.value()
        }
        None => {
            // `r#type` is the id `type`; a fn name outside ASCII cannot be typed in a URL.
            let id = syn::ext::IdentExt::unraw(&item.sig.ident).to_string();
            if !valid_id(&id) {
                errors.push(syn::Error::new_spanned(
                    &item.sig.ident,
                    "this fn name is not a valid route id (ASCII letters, digits, `_`, `-`, `.`): \
                     give one with #[underscore_route(name = \"...\")]",
                ));
            }
            id
        }
    };

    let doc = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => lit_str(&nv.value).map(|s| s.value()),
            _ => None,
        })
        .flat_map(|s| s.lines().map(|l| l.trim().to_owned()).collect::<Vec<_>>())
        .find(|l| !l.is_empty())
        .unwrap_or_default();

    let mut errors = errors.into_iter();
    if let Some(mut first) = errors.next() {
        first.extend(errors);
        return Err(first);
    }
    Ok(Route {
        item,
        id,
        actix,
        doc,
    })
}
