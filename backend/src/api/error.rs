//! The API's errors: each is answered as a JSON [`ApiError`] with a stable code and
//! a fitting HTTP status.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pixelator_shared::wire::ApiError;

use crate::s3::StoreError;

/// Why a request was not answered as asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// The request is malformed (unreadable JSON, a missing field). Sending it again
    /// unchanged cannot help.
    #[error("{0}")]
    InvalidRequest(String),
    /// The request body is larger than the API reads.
    #[error("the request body is too large")]
    RequestTooLarge,
    /// The declared media type is not one the pipeline reads.
    #[error("{message}")]
    UnsupportedType {
        /// What to tell the person.
        message: String,
    },
    /// The declared size is over the limit.
    #[error("the file has {size} bytes; the largest accepted is {limit} bytes")]
    FileTooLarge {
        /// The declared size.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The declared size is zero.
    #[error("the file is empty")]
    EmptyFile,
    /// The pagination cursor was not made by this API.
    #[error("the cursor is not valid; start again without one")]
    InvalidCursor,
    /// The page size is out of range.
    #[error("limit must be between 1 and {max}")]
    InvalidLimit {
        /// The largest page size.
        max: u32,
    },
    /// Nothing is known under that key or path.
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The store failed. Retrying later can help when it was unavailable.
    #[error("the image store could not answer; try again later")]
    Store(#[from] StoreError),
    /// Presigning a URL failed (a configuration problem).
    #[error("could not sign the URL: {0}")]
    Presign(String),
}

impl ApiFailure {
    /// The stable code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            ApiFailure::InvalidRequest(_) => "invalid_request",
            ApiFailure::RequestTooLarge => "request_too_large",
            ApiFailure::UnsupportedType { .. } => "unsupported_type",
            ApiFailure::FileTooLarge { .. } => "file_too_large",
            ApiFailure::EmptyFile => "empty_file",
            ApiFailure::InvalidCursor => "invalid_cursor",
            ApiFailure::InvalidLimit { .. } => "invalid_limit",
            ApiFailure::NotFound(_) => "not_found",
            ApiFailure::MethodNotAllowed => "method_not_allowed",
            ApiFailure::Store(error) if error.is_retryable() => "store_unavailable",
            ApiFailure::Store(_) => "store_error",
            ApiFailure::Presign(_) => "presign_failed",
        }
    }

    /// The HTTP status answered.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiFailure::InvalidRequest(_)
            | ApiFailure::EmptyFile
            | ApiFailure::InvalidCursor
            | ApiFailure::InvalidLimit { .. } => StatusCode::BAD_REQUEST,
            ApiFailure::UnsupportedType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiFailure::FileTooLarge { .. } | ApiFailure::RequestTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiFailure::NotFound(_) => StatusCode::NOT_FOUND,
            ApiFailure::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiFailure::Store(error) if error.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            ApiFailure::Store(_) | ApiFailure::Presign(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request can succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ApiFailure::Store(error) if error.is_retryable())
    }
}

impl From<JsonRejection> for ApiFailure {
    fn from(rejection: JsonRejection) -> ApiFailure {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiFailure::RequestTooLarge
        } else {
            ApiFailure::InvalidRequest(rejection.body_text())
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The detail (bucket, key, what the store said) goes to the log only.
            let detail = std::error::Error::source(&self).map(ToString::to_string);
            tracing::error!(code = self.code(), error = %self, detail, "API request failed");
        } else {
            tracing::debug!(code = self.code(), error = %self, "API request refused");
        }
        let body = ApiError {
            code: self.code().to_owned(),
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}
