//! Rendered response bodies: JSON and YAML documents, with `pretty` and `filter_path`
//! applied. The `_cat` tables ([`cat`](crate::cat)) render through this module, never the
//! other way round.

use serde_json::Value;

use crate::params::Format;
use crate::{filter_path, yaml, ApiError};

/// A rendered response body and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Rendered {
    /// A `text/plain; charset=utf-8` body.
    pub fn text(body: String) -> Self {
        Self {
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
        }
    }
}

/// Renders `value` as JSON (compact, or indented with `pretty`) or YAML, after `filter_path`.
///
/// # Errors
///
/// A 400 for a malformed `filter_path`, or for `format=text` (this document has no text form).
pub fn document(
    value: Value,
    format: Format,
    pretty: bool,
    filter: Option<&str>,
) -> Result<Rendered, ApiError> {
    let value = match filter {
        Some(filter) => filter_path::apply(value, filter)?,
        None => value,
    };
    match format {
        Format::Json => {
            let body = if pretty {
                let mut body =
                    serde_json::to_vec_pretty(&value).expect("a Value always serializes");
                body.push(b'\n');
                body
            } else {
                serde_json::to_vec(&value).expect("a Value always serializes")
            };
            Ok(Rendered {
                content_type: "application/json",
                body,
            })
        }
        Format::Yaml => Ok(Rendered {
            content_type: "application/yaml",
            body: yaml::to_string(&value).into_bytes(),
        }),
        Format::Text => Err(ApiError::illegal_argument(
            "this API has no text format, use [format=json] or [format=yaml]",
        )),
    }
}

/// The parameters of a JSON document endpoint: `format`, `pretty` and `filter_path`.
#[derive(Debug)]
pub(crate) struct DocParams {
    format: Format,
    pretty: bool,
    filter: Option<String>,
}

impl DocParams {
    /// Takes them out of `query`, and rejects whatever else it holds.
    pub(crate) fn take(mut query: crate::params::Query, path: &str) -> Result<Self, ApiError> {
        let params = Self::take_from(&mut query)?;
        query.finish(path)?;
        Ok(params)
    }

    /// Takes them out of `query`, leaving the endpoint's own parameters.
    pub(crate) fn take_from(query: &mut crate::params::Query) -> Result<Self, ApiError> {
        Ok(Self {
            format: query.take_format(Format::Json)?,
            pretty: query.take_bool("pretty")?,
            filter: query.take("filter_path"),
        })
    }

    /// Renders `value` as they ask.
    pub(crate) fn render(&self, value: Value) -> Result<Rendered, ApiError> {
        document(value, self.format, self.pretty, self.filter.as_deref())
    }
}
