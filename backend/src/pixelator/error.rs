//! How an invocation of the pixelator fails.
//!
//! Only the store can make an invocation fail: problems with an input are recorded
//! in its manifest and count as handled. Whether the platform should deliver the
//! event again depends on what the store said, which [`PixelatorError::is_retryable`]
//! tells.

use crate::s3::StoreError;

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum PixelatorError {
    /// The store failed for some records; the others were handled. Delivering the
    /// event again redoes only what is missing, since finished records are skipped
    /// by their manifest.
    #[error("{failed} of {total} records could not be handled: {first}")]
    Store {
        /// How many records failed.
        failed: usize,
        /// How many records the event held.
        total: usize,
        /// Whether any failure is one a retry can fix.
        retryable: bool,
        /// The first failure.
        #[source]
        first: StoreError,
    },
}

impl PixelatorError {
    /// Whether delivering the event again later can succeed: true when the store
    /// was unavailable, false when it refused (a configuration problem that a
    /// person has to fix).
    pub fn is_retryable(&self) -> bool {
        match self {
            PixelatorError::Store { retryable, .. } => *retryable,
        }
    }
}

impl From<PixelatorError> for lambda_runtime::Diagnostic {
    fn from(error: PixelatorError) -> lambda_runtime::Diagnostic {
        let error_type = if error.is_retryable() {
            "StoreUnavailable"
        } else {
            "StoreRefused"
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: error.to_string(),
        }
    }
}
