//! Code generation: the route's `static` metadata, its inventory entry, and the `wrap`s that
//! install the `Track` middleware (outermost) and `Capture` (innermost) on each actix resource.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{LitStr, Meta};

use crate::parse::{ActixArgs, Route};

pub(crate) fn expand(route: Route) -> syn::Result<TokenStream> {
    let Route {
        mut item,
        id,
        actix,
        doc,
    } = route;
    let fn_name = &item.sig.ident;
    let static_name = format_ident!("__UNDERSCORE_ROUTE_{}", fn_name);

    for (mount, attr) in actix.iter().enumerate() {
        let span = attr.path.span();
        let track = LitStr::new(
            &format!("::underscore_actix::__private::Track::new(&{static_name}, {mount})"),
            span,
        );
        let capture = LitStr::new("::underscore_actix::__private::Capture", span);
        let Meta::List(list) = &mut item.attrs[attr.attr_index].meta else {
            unreachable!("parse only accepts list attributes")
        };
        // Parsed once already: this cannot fail.
        let ActixArgs { path, pairs } = syn::parse2(list.tokens.clone())?;
        // actix applies `wrap`s in order, the first innermost: `Capture` comes before the
        // user's own (it must see the request as they leave it), `Track` after them all.
        list.tokens = quote!(#path, wrap = #capture, #(#pairs,)* wrap = #track);
    }

    let mut methods: Vec<String> = Vec::new();
    for m in actix.iter().flat_map(|a| a.methods.iter()) {
        if !methods.contains(m) {
            methods.push(m.clone());
        }
    }
    let paths: Vec<&LitStr> = actix.iter().map(|a| &a.path).collect();
    let fn_str = fn_name.to_string();
    let line = quote_spanned!(fn_name.span()=> ::core::line!());

    Ok(quote! {
        #item

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #static_name: ::underscore_actix::__private::RouteMeta =
            ::underscore_actix::__private::RouteMeta {
                name: #id,
                handler: ::core::concat!(::core::module_path!(), "::", #fn_str),
                methods: &[#(#methods),*],
                paths: &[#(#paths),*],
                file: ::core::file!(),
                line: #line,
                doc: #doc,
                state: ::underscore_actix::__private::RouteState::new(),
            };

        ::underscore_actix::__private::inventory::submit! {
            ::underscore_actix::__private::RouteRef(&#static_name)
        }
    })
}
