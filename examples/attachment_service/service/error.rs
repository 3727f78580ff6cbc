//! Every failure leaves as `{"error": "<code>", "message": "<text>"}` with a status code.
//! Internal details (database, disk, a corrupted object) are logged on stderr and answered
//! with a generic 500: no path, key id or stack reaches the client, and no message anywhere
//! carries a password, a token or key material.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A JSON error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn unauthorized() -> Self {
        let mut err = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing, invalid or expired bearer token",
        );
        err.headers
            .push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        err
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// The tenant's key was destroyed: its attachments are gone for good.
    pub(crate) fn shredded() -> Self {
        Self::new(
            StatusCode::GONE,
            "tenant_shredded",
            "this tenant was crypto-shredded: its attachments can never be decrypted again",
        )
    }

    /// The password hashing memory budget is full: come back in a second.
    pub(crate) fn busy() -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many logins at once; retry in a second",
        );
        err.headers
            .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        err
    }

    /// `416` for a `Range` outside an object of `len` bytes.
    pub(crate) fn range_not_satisfiable(len: u64) -> Self {
        let mut err = Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the attachment has {len} bytes"),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
            err.headers.push((header::CONTENT_RANGE, value));
        }
        err
    }

    /// Logs `err` (which must not contain secrets: ours never do) and answers a generic 500.
    pub(crate) fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        eprintln!("internal error: {context}: {err}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (logged on the server)",
        )
    }

    /// Maps an error of the encrypted store: missing objects, shredded keys, tampering.
    pub(crate) fn from_store(err: &object_store::Error) -> Self {
        if let object_store::Error::NotFound { .. } = err {
            return Self::not_found("no such attachment");
        }
        let Some(ours) = atrest::store::Error::from_object_store(err) else {
            return Self::internal("object store", err);
        };
        match ours.unavailable_reason() {
            Some(atrest::envelope::KeyUnavailable::Destroyed) => return Self::shredded(),
            Some(reason) => {
                return Self::new(
                    StatusCode::CONFLICT,
                    "key_unavailable",
                    format!("the tenant's key cannot decrypt this attachment: {reason}"),
                );
            }
            None => {}
        }
        if ours.is_authentication() {
            // Modified, truncated or misplaced ciphertext: an integrity alarm, not a 404.
            return Self::internal("attachment failed authentication", ours);
        }
        Self::internal("encrypted store", ours)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        Self::internal("database", &err)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            _ => "invalid_json",
        };
        // The rejection's text names the field and the problem, never the value.
        Self::new(status, code, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}
