//! The one error type of the admin APIs, rendered in Elasticsearch's shape.

use serde_json::json;

/// An admin-API error: an HTTP status, an Elasticsearch exception type and a reason.
///
/// Every error the admin APIs answer goes through [`ApiError::to_json`], so that all of them share
/// one shape:
///
/// ```json
/// {"error":{"root_cause":[{"type":"...","reason":"..."}],"type":"...","reason":"..."},"status":400}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct ApiError {
    /// The HTTP status code.
    pub status: u16,
    /// The Elasticsearch exception type, e.g. `illegal_argument_exception`.
    pub kind: &'static str,
    /// A human-readable reason that names the offending input.
    pub reason: String,
    /// The methods allowed on the path, for a 405.
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// A 400 `illegal_argument_exception`.
    pub fn illegal_argument(reason: impl Into<String>) -> Self {
        Self::new(400, "illegal_argument_exception", reason)
    }

    /// A 400 `parse_exception`, for a body that is not valid JSON.
    pub fn parse(reason: impl Into<String>) -> Self {
        Self::new(400, "parse_exception", reason)
    }

    /// A 404 `resource_not_found_exception`.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(404, "resource_not_found_exception", reason)
    }

    /// A 405 for `method` on `path`, listing the allowed methods (also sent as `Allow`).
    pub fn method_not_allowed(path: &str, method: &str, allow: &'static str) -> Self {
        let mut err = Self::new(
            405,
            "method_not_allowed_exception",
            format!(
                "Incorrect HTTP method for uri [{path}] and method [{method}], allowed: [{allow}]"
            ),
        );
        err.allow = Some(allow);
        err
    }

    /// A 413, for a request body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "content_too_long_exception",
            format!("request body is larger than the limit of [{limit}] bytes"),
        )
    }

    /// An error with any `status` and Elasticsearch error `kind` (`security_exception`, ...).
    pub fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            reason: reason.into(),
            allow: None,
        }
    }

    /// The Elasticsearch-shaped JSON body of this error.
    pub fn to_json(&self) -> serde_json::Value {
        let cause = json!({"type": self.kind, "reason": self.reason});
        json!({
            "error": {"root_cause": [cause], "type": self.kind, "reason": self.reason},
            "status": self.status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_elasticsearch_shape() {
        let body = ApiError::not_found("no such route [x]").to_json();
        assert_eq!(
            body.to_string(),
            r#"{"error":{"root_cause":[{"type":"resource_not_found_exception","reason":"no such route [x]"}],"type":"resource_not_found_exception","reason":"no such route [x]"},"status":404}"#
        );
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let err = ApiError::method_not_allowed("/_cat", "POST", "GET, HEAD");
        assert_eq!(err.status, 405);
        assert_eq!(err.allow, Some("GET, HEAD"));
        assert!(err.reason.contains("[/_cat]") && err.reason.contains("[POST]"));
    }
}
