//! Query-string parsing with Elasticsearch's strictness: strict booleans, no unknown or
//! duplicate parameters, and clear errors for malformed percent-encoding.

use crate::ApiError;

/// The output format of a response (`format=text|json|yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned plain text, for humans (the default of `_cat`).
    Text,
    /// JSON (the default elsewhere).
    Json,
    /// YAML, as Elasticsearch writes it: a `---` line, then the document.
    Yaml,
}

/// The decoded query string of one request. Handlers take the parameters they know with the
/// `take_*` methods, then call [`Query::finish`], which rejects whatever is left.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `raw` (the part after `?`, without it).
    ///
    /// # Errors
    ///
    /// A 400 for malformed percent-encoding, bytes that are not UTF-8, or a parameter given twice.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in raw.split('&').filter(|item| !item.is_empty()) {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let key = decode(key)?;
            let value = decode(value)?;
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(ApiError::illegal_argument(format!(
                    "request contains parameter [{key}] more than once"
                )));
            }
            pairs.push((key, value));
        }
        Ok(Self { pairs })
    }

    /// Removes and returns the value of `key`, if given.
    pub fn take(&mut self, key: &str) -> Option<String> {
        let pos = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(pos).1)
    }

    /// Removes `key` and parses it as a boolean: absent is `false`; `?key`, `key=` and
    /// `key=true` are `true`; `key=false` is `false`.
    ///
    /// # Errors
    ///
    /// A 400 for any other value, as Elasticsearch answers.
    pub fn take_bool(&mut self, key: &str) -> Result<bool, ApiError> {
        match self.take(key).as_deref() {
            None => Ok(false),
            Some("" | "true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ApiError::illegal_argument(format!(
                "Failed to parse value [{other}] of parameter [{key}] as only [true] or [false] are allowed."
            ))),
        }
    }

    /// Removes `format` and parses it, falling back to `default` when absent.
    ///
    /// # Errors
    ///
    /// A 400 for a value other than `text`, `json` or `yaml`.
    pub fn take_format(&mut self, default: Format) -> Result<Format, ApiError> {
        match self.take("format").as_deref() {
            None => Ok(default),
            Some("text" | "txt") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some("yaml") => Ok(Format::Yaml),
            Some(other) => Err(ApiError::illegal_argument(format!(
                "invalid value [{other}] for parameter [format], expected one of [text, json, yaml]"
            ))),
        }
    }

    /// Rejects any parameter nobody took, naming the first one as Elasticsearch does.
    ///
    /// # Errors
    ///
    /// A 400 `request [<path>] contains unrecognized parameter: [<key>]`.
    pub fn finish(self, path: &str) -> Result<(), ApiError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((key, _)) => Err(ApiError::illegal_argument(format!(
                "request [{path}] contains unrecognized parameter: [{key}]"
            ))),
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` text strictly: `+` is a space, `%XX` a byte, and
/// the result must be UTF-8.
fn decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::illegal_argument(format!(
                            "invalid percent-encoding in query string near [{}]",
                            text[i..].chars().take(3).collect::<String>()
                        ))
                    })?;
                out.push(hex);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::illegal_argument("query string is not valid UTF-8 once decoded"))
}

/// Splits a comma-separated list, rejecting empty items (`a,,b`, `a,`).
///
/// # Errors
///
/// A 400 naming the parameter.
pub fn split_list<'a>(param: &str, value: &'a str) -> Result<Vec<&'a str>, ApiError> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err(ApiError::illegal_argument(format!(
            "parameter [{param}] has an empty item in [{value}]"
        )));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_strict() {
        let mut q = Query::parse("v&help=&pretty=true&x=false&y=yes").unwrap();
        assert!(q.take_bool("v").unwrap());
        assert!(q.take_bool("help").unwrap());
        assert!(q.take_bool("pretty").unwrap());
        assert!(!q.take_bool("x").unwrap());
        assert!(!q.take_bool("absent").unwrap());
        let err = q.take_bool("y").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.reason.contains("[yes]"), "{}", err.reason);
    }

    #[test]
    fn unknown_parameter_is_named() {
        let mut q = Query::parse("v&foo=1").unwrap();
        q.take_bool("v").unwrap();
        let err = q.finish("/_cat/routes").unwrap_err();
        assert_eq!(
            err.reason,
            "request [/_cat/routes] contains unrecognized parameter: [foo]"
        );
    }

    #[test]
    fn percent_decoding_is_strict() {
        let mut q = Query::parse("h=id%2Cpath&s=a+b").unwrap();
        assert_eq!(q.take("h").as_deref(), Some("id,path"));
        assert_eq!(q.take("s").as_deref(), Some("a b"));
        assert_eq!(Query::parse("h=%zz").unwrap_err().status, 400);
        assert_eq!(Query::parse("h=%4").unwrap_err().status, 400);
        assert_eq!(Query::parse("h=%ff%fe").unwrap_err().status, 400);
        assert_eq!(
            Query::parse("h=%e2%82%ac").unwrap().take("h").as_deref(),
            Some("€")
        );
    }

    #[test]
    fn duplicate_parameters_are_rejected() {
        assert_eq!(Query::parse("v&v=false").unwrap_err().status, 400);
    }

    #[test]
    fn lists_reject_empty_items() {
        assert_eq!(split_list("h", "a,b").unwrap(), ["a", "b"]);
        for bad in ["", ",", "a,", ",a", "a,,b"] {
            assert!(split_list("h", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn format_values() {
        assert_eq!(
            Query::parse("").unwrap().take_format(Format::Text).unwrap(),
            Format::Text
        );
        assert_eq!(
            Query::parse("format=yaml")
                .unwrap()
                .take_format(Format::Text)
                .unwrap(),
            Format::Yaml
        );
        assert_eq!(
            Query::parse("format=xml")
                .unwrap()
                .take_format(Format::Json)
                .unwrap_err()
                .status,
            400
        );
    }
}
