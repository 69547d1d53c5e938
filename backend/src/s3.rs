//! S3 clients for the pipeline's parts.
//!
//! On AWS and against any other S3-compatible store, the client comes from the AWS
//! SDK's standard environment: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`),
//! `AWS_REGION` and the credential chain. The local pipeline builds its client
//! for the embedded store explicitly instead (endpoint, region and local keys), so
//! a stray variable can never point it at a real account.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The region assumed when none is configured.
pub const DEFAULT_REGION: &str = "us-east-1";

/// A client configured from the standard AWS environment, with path-style
/// addressing when `path_style` (what most self-hosted stores need).
pub async fn client_from_env(path_style: bool) -> Client {
    let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared).force_path_style(path_style);
    if shared.region().is_none() {
        builder = builder.region(Region::new(DEFAULT_REGION));
    }
    Client::from_conf(builder.build())
}

/// Static keys for a store that is not AWS: the local one, or a test's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticKeys {
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
}

/// A client for the store at `endpoint` (such as `http://127.0.0.1:9000`) with
/// static keys, path-style addressing and nothing read from the environment.
pub fn client_for_endpoint(endpoint: &str, region: &str, keys: &StaticKeys) -> Client {
    let credentials = Credentials::new(
        keys.access_key.clone(),
        keys.secret_key.clone(),
        None,
        None,
        "pixelator-static",
    );
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// Why a request to the store failed, sorted by whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (S3's 404 for an object). Retrying will not make it
    /// appear; for a source this means it was deleted after its event.
    #[error("{operation} s3://{bucket}/{key}: no such object")]
    NotFound {
        /// The S3 operation, such as `GetObject`.
        operation: &'static str,
        /// The bucket asked.
        bucket: String,
        /// The key asked.
        key: String,
    },
    /// The store could not be reached, timed out, asked to slow down or answered
    /// with a server error. Retrying later can help.
    #[error("{operation} s3://{bucket}/{key}: the store is unavailable: {detail}")]
    Unavailable {
        /// The S3 operation.
        operation: &'static str,
        /// The bucket asked.
        bucket: String,
        /// The key asked.
        key: String,
        /// What the client or store reported.
        detail: String,
    },
    /// The store refused the request (access denied, no such bucket, a request it
    /// cannot accept). Retrying cannot help until the configuration changes.
    #[error("{operation} s3://{bucket}/{key}: refused with {code}: {detail}")]
    Refused {
        /// The S3 operation.
        operation: &'static str,
        /// The bucket asked.
        bucket: String,
        /// The key asked.
        key: String,
        /// S3's error code, such as `AccessDenied`.
        code: String,
        /// What the store reported.
        detail: String,
    },
}

impl StoreError {
    /// Sorts an SDK error by what it means for a retry.
    pub fn from_sdk<E>(
        operation: &'static str,
        bucket: &str,
        key: &str,
        error: SdkError<E>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let detail = DisplayErrorContext(&error).to_string();
        let SdkError::ServiceError(service) = &error else {
            // Construction failures are bugs in our requests, not in the store: the
            // others (timeouts, dispatch failures, unreadable answers) are transient.
            return match error {
                SdkError::ConstructionFailure(_) => StoreError::Refused {
                    operation,
                    bucket,
                    key,
                    code: "RequestConstruction".to_owned(),
                    detail,
                },
                _ => StoreError::Unavailable {
                    operation,
                    bucket,
                    key,
                    detail,
                },
            };
        };
        let status = service.raw().status().as_u16();
        let code = service.err().code().unwrap_or("").to_owned();
        const TRANSIENT_CODES: [&str; 7] = [
            "SlowDown",
            "Throttling",
            "ThrottlingException",
            "RequestTimeout",
            "RequestTimeTooSkewed",
            "InternalError",
            "ServiceUnavailable",
        ];
        if status == 404 && code != "NoSuchBucket" {
            StoreError::NotFound {
                operation,
                bucket,
                key,
            }
        } else if status >= 500 || status == 429 || TRANSIENT_CODES.contains(&code.as_str()) {
            StoreError::Unavailable {
                operation,
                bucket,
                key,
                detail,
            }
        } else {
            let code = if code.is_empty() {
                format!("HTTP {status}")
            } else {
                code
            };
            StoreError::Refused {
                operation,
                bucket,
                key,
                code,
                detail,
            }
        }
    }

    /// A failure while reading a response body: the connection broke midway.
    pub fn body(operation: &'static str, bucket: &str, key: &str, detail: String) -> StoreError {
        StoreError::Unavailable {
            operation,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            detail,
        }
    }

    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    /// Whether the object asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Whether the store refused for lack of permission. S3 answers a missing
    /// object this way too when the caller may not list the bucket.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, StoreError::Refused { code, .. } if code == "AccessDenied")
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    fn answered(status: u16, code: &str) -> StoreError {
        let error = GetObjectError::generic(ErrorMetadata::builder().code(code).build());
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        StoreError::from_sdk(
            "GetObject",
            "bucket",
            "key",
            SdkError::service_error(error, response),
        )
    }

    #[test]
    fn store_answers_are_sorted_by_whether_a_retry_helps() {
        assert!(answered(404, "NoSuchKey").is_not_found());
        assert!(answered(503, "SlowDown").is_retryable());
        assert!(answered(500, "InternalError").is_retryable());
        assert!(answered(400, "RequestTimeout").is_retryable());
        assert!(answered(429, "").is_retryable());

        let denied = answered(403, "AccessDenied");
        assert!(!denied.is_retryable() && denied.is_access_denied());
        let no_bucket = answered(404, "NoSuchBucket");
        assert!(!no_bucket.is_not_found() && !no_bucket.is_retryable());
        assert!(
            no_bucket.to_string().contains("NoSuchBucket"),
            "{no_bucket}"
        );
    }

    #[test]
    fn failures_without_an_answer_are_transient() {
        let error: SdkError<GetObjectError> = SdkError::timeout_error("took too long");
        assert!(StoreError::from_sdk("GetObject", "b", "k", error).is_retryable());
        let error: SdkError<GetObjectError> = SdkError::construction_failure("bad request");
        assert!(!StoreError::from_sdk("GetObject", "b", "k", error).is_retryable());
    }
}
