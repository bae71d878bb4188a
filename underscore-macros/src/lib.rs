//! The `#[underscore_route]` attribute of the underscore admin APIs for actix-web.
//!
//! Use it through [`underscore-actix`](https://docs.rs/underscore-actix), which re-exports it
//! (`underscore_actix::underscore_route`) and provides the items its expansion refers to;
//! depend on `underscore-actix` alone.
//!
//! # Examples
//!
//! The attribute goes **above** the actix-web routing attribute:
//!
//! ```ignore
//! use actix_web::{get, web, Responder};
//! use underscore_actix::underscore_route;
//!
//! /// Greets someone by name.
//! #[underscore_route]
//! #[get("/hello/{name}")]
//! async fn hello(name: web::Path<String>) -> impl Responder {
//!     format!("Hello {name}!")
//! }
//! ```
//!
//! (`ignore`: the expansion names `underscore_actix`, which depends on this crate, so the
//! example cannot be built here; `underscore-actix`'s crate docs compile and run the same one.
//! Every accepted form and every rejected one is a trybuild test of `underscore-actix`.)

#![deny(missing_docs)]

mod expand;
mod parse;

use proc_macro::TokenStream;

/// Registers an actix-web handler with the underscore admin APIs.
///
/// Put it **above** the actix-web routing attribute (`#[get]`, `#[post]`, `#[put]`,
/// `#[delete]`, `#[patch]`, `#[head]`, `#[options]`, `#[trace]`, `#[connect]`, `#[route]` or
/// `#[routes]` with its helpers). It records, at compile time, the route's id, handler path,
/// methods, path pattern, file, line and the first line of the doc comment, and adds the
/// underscore `Track` middleware to the resource, so the route is counted, listed and steerable.
///
/// The id is the fn name, or the `name` given here (`#[underscore_route(name = "greet")]`), or
/// else the actix attribute's own `name = "..."`. An id is made of ASCII letters, digits, `_`,
/// `-` and `.`, so it can be typed in a URL as it is.
///
/// ```ignore
/// use actix_web::{get, web, Responder};
/// use underscore_actix::underscore_route;
///
/// /// Greets someone.
/// #[underscore_route]
/// #[get("/hello/{name}")]
/// async fn hello(name: web::Path<String>) -> impl Responder {
///     format!("Hello {name}!")
/// }
/// ```
#[proc_macro_attribute]
pub fn underscore_route(args: TokenStream, item: TokenStream) -> TokenStream {
    let item2: proc_macro2::TokenStream = item.into();
    match parse::parse(args.into(), item2.clone()).and_then(expand::expand) {
        Ok(tokens) => tokens.into(),
        Err(err) => {
            // Keep the item as written, so the rest of the crate (and IDEs) still see the handler.
            let mut out = item2;
            out.extend(err.into_compile_error());
            out.into()
        }
    }
}
