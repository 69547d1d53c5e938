//! One upload from start to finish: a presigned PUT, then the pipeline's verdict.
//!
//! The API chooses the key and signs a PUT for the file's exact type and length;
//! the page sends the raw bytes there with `XMLHttpRequest` (the only browser API
//! that reports upload progress) carrying exactly the signed headers, then asks
//! the API about the key until its manifest exists. Every way this can fail ends
//! in an [`UploadFailure`]; nothing but the API's `done` ends in
//! [`UploadState::Done`].

use std::fmt;

use js_sys::Promise;
use pixelator_shared::wire::{ImageFormat, ImageStatus, ImageView, UploadRequest, UploadTicket};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, ProgressEvent, XmlHttpRequest};

use crate::api::{self, ApiFailure};
use crate::browser::{describe, now, sleep};

/// Where a file's upload is.
#[derive(Clone, Debug, PartialEq)]
pub enum UploadState {
    /// Accepted and waiting for the person to upload it.
    Ready,
    /// Asking the API where to send it.
    Requesting,
    /// Sending the bytes to the store.
    Sending {
        /// Bytes sent so far.
        sent: f64,
        /// Bytes in all.
        total: f64,
    },
    /// Stored; the pipeline has not written its manifest yet.
    Processing {
        /// The source key the API chose.
        key: String,
        /// When the bytes were stored, on the page's clock.
        since: f64,
    },
    /// The pipeline wrote every variant.
    Done(Box<ImageView>),
    /// It went wrong, for this reason.
    Failed(UploadFailure),
}

impl UploadState {
    /// Whether the upload is under way (neither waiting to start nor finished).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            UploadState::Requesting | UploadState::Sending { .. } | UploadState::Processing { .. }
        )
    }

    /// A short, stable name for the state, used in the page's `data-state`.
    pub fn name(&self) -> &'static str {
        match self {
            UploadState::Ready => "ready",
            UploadState::Requesting => "requesting",
            UploadState::Sending { .. } => "uploading",
            UploadState::Processing { .. } => "processing",
            UploadState::Done(_) => "done",
            UploadState::Failed(_) => "failed",
        }
    }
}

/// Why an upload did not end in `done`.
#[derive(Clone, Debug, PartialEq)]
pub enum UploadFailure {
    /// The API refused or could not be reached.
    Api(ApiFailure),
    /// The store answered the PUT with an error.
    Store {
        /// HTTP status.
        status: u16,
        /// S3 error code, such as `SignatureDoesNotMatch`.
        code: String,
        /// S3's message.
        message: String,
    },
    /// The PUT never got an answer.
    Network(String),
    /// The pipeline gave up on the file.
    Pipeline {
        /// The source key it was stored under.
        key: String,
        /// The pipeline's reason.
        reason: String,
    },
    /// The API stopped answering while the page waited for the result.
    LostContact(ApiFailure),
}

impl fmt::Display for UploadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadFailure::Api(failure) => write!(f, "upload refused: {failure}"),
            UploadFailure::Store {
                status,
                code,
                message,
            } => {
                let expired = code == "AccessDenied" && message.to_lowercase().contains("expired");
                if expired {
                    write!(
                        f,
                        "the upload link expired before the upload (HTTP {status} {code})"
                    )
                } else if code == "SignatureDoesNotMatch" {
                    write!(
                        f,
                        "the store refused the upload: its signature does not match (HTTP {status} {code})"
                    )
                } else if code.is_empty() {
                    write!(f, "the store refused the upload (HTTP {status})")
                } else {
                    write!(
                        f,
                        "the store refused the upload: {message} (HTTP {status} {code})"
                    )
                }
            }
            UploadFailure::Network(what) => write!(f, "network error: {what}"),
            UploadFailure::Pipeline { reason, .. } => {
                write!(f, "the pipeline could not process it: {reason}")
            }
            UploadFailure::LostContact(failure) => {
                write!(f, "lost track of the upload: {failure}")
            }
        }
    }
}

/// Uploads `file` as `format` and follows it until the pipeline is done with it,
/// reporting every step through `report`. Returns the final state (done or failed).
pub async fn upload(
    file: &File,
    format: ImageFormat,
    report: impl Fn(UploadState) + Clone + 'static,
) -> UploadState {
    report(UploadState::Requesting);
    let request = UploadRequest {
        file_name: file.name(),
        content_type: format.mime_type().to_owned(),
        size: file.size() as u64,
    };
    let ticket = match api::request_upload(&request).await {
        Ok(ticket) => ticket,
        Err(failure) => return UploadState::Failed(UploadFailure::Api(failure)),
    };

    let total = file.size();
    report(UploadState::Sending { sent: 0.0, total });
    let progress = {
        let report = report.clone();
        move |sent: f64| report(UploadState::Sending { sent, total })
    };
    if let Err(failure) = put(&ticket, file, progress).await {
        return UploadState::Failed(failure);
    }

    report(UploadState::Processing {
        key: ticket.key.clone(),
        since: now(),
    });
    follow(&ticket.key).await
}

/// Headers a page may not set itself; the browser sends them, with the values the
/// signature expects since the body is the file as it is.
const BROWSER_HEADERS: [&str; 3] = ["content-length", "host", "connection"];

/// Sends the file's raw bytes to the presigned URL with exactly the signed headers,
/// calling `progress` with the bytes sent so far.
pub async fn put(
    ticket: &UploadTicket,
    file: &File,
    progress: impl Fn(f64) + 'static,
) -> Result<(), UploadFailure> {
    let failed_to_start = |error: JsValue| UploadFailure::Network(describe(&error));
    let request = XmlHttpRequest::new().map_err(failed_to_start)?;
    request
        .open(&ticket.method, &ticket.url)
        .map_err(failed_to_start)?;
    for (name, value) in &ticket.headers {
        if !BROWSER_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            request
                .set_request_header(name, value)
                .map_err(failed_to_start)?;
        }
    }

    // The handler must outlive the request; it is detached and dropped below.
    let on_progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |event: ProgressEvent| {
        progress(event.loaded());
    });
    let upload = request.upload().map_err(failed_to_start)?;
    upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));

    // Each way the request can end resolves the promise with its name.
    let ended = Promise::new(&mut |resolve, _reject| {
        let tagged = |tag: &str| -> js_sys::Function {
            resolve
                .bind1(&JsValue::NULL, &JsValue::from_str(tag))
                .unchecked_into()
        };
        request.set_onload(Some(&tagged("load")));
        request.set_onerror(Some(&tagged("error")));
        request.set_ontimeout(Some(&tagged("timeout")));
        request.set_onabort(Some(&tagged("abort")));
    });
    let sent = request.send_with_opt_blob(Some(file));
    let outcome = match sent {
        Ok(()) => JsFuture::from(ended)
            .await
            .ok()
            .and_then(|tag| tag.as_string()),
        Err(error) => Some(describe(&error)),
    };
    upload.set_onprogress(None);
    drop(on_progress);

    match outcome.as_deref() {
        Some("load") => {
            let status = request.status().unwrap_or(0);
            if (200..300).contains(&status) {
                return Ok(());
            }
            let body = request.response_text().ok().flatten().unwrap_or_default();
            Err(UploadFailure::Store {
                status,
                code: xml_element(&body, "Code").unwrap_or_default(),
                message: xml_element(&body, "Message").unwrap_or_default(),
            })
        }
        Some("timeout") => Err(UploadFailure::Network("the upload timed out".into())),
        Some("abort") => Err(UploadFailure::Network("the upload was cancelled".into())),
        Some("error") | None => Err(UploadFailure::Network(
            "the store could not be reached (offline, or it does not accept this page's origin)"
                .into(),
        )),
        Some(other) => Err(UploadFailure::Network(other.to_owned())),
    }
}

/// How long the page waits for the pipeline before saying it is slow, in ms.
pub const SLOW_AFTER_MS: f64 = 60_000.0;

/// Asks the API about `key` until the pipeline has written its manifest.
///
/// The API may not know the key for a moment after the PUT, and the network may
/// drop a request: both are tried again, a limited number of times in a row.
pub async fn follow(key: &str) -> UploadState {
    const TOLERATED_FAILURES: u32 = 15;
    let mut failures = 0;
    let mut wait = 300;
    loop {
        sleep(wait).await;
        wait = (wait * 3 / 2).min(2_000);
        match api::image(key).await {
            Ok(view) => {
                failures = 0;
                match view.status {
                    ImageStatus::Processing => continue,
                    ImageStatus::Done => return UploadState::Done(Box::new(view)),
                    ImageStatus::Failed => {
                        let reason = view
                            .reason
                            .unwrap_or_else(|| "no reason was given".to_owned());
                        return UploadState::Failed(UploadFailure::Pipeline {
                            key: key.to_owned(),
                            reason,
                        });
                    }
                }
            }
            Err(failure) => {
                let may_pass = failure.is_transient()
                    || matches!(failure, ApiFailure::Status { status: 404, .. });
                failures += 1;
                if !may_pass || failures > TOLERATED_FAILURES {
                    return UploadState::Failed(UploadFailure::LostContact(failure));
                }
            }
        }
    }
}

/// The text of the first `<name>` element of a small XML document, as S3 errors
/// are written.
pub fn xml_element(document: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = document.find(&open)? + open.len();
    let end = start + document[start..].find(&close)?;
    let text = document[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(text)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn s3_error_documents_give_their_code_and_message() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                    <Message>Request has expired</Message><Key>a &amp; b.jpg</Key></Error>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(xml_element(body, "Key").as_deref(), Some("a & b.jpg"));
        assert_eq!(xml_element(body, "RequestId"), None);
        let failure = UploadFailure::Store {
            status: 403,
            code: "AccessDenied".into(),
            message: "Request has expired".into(),
        };
        assert_eq!(
            failure.to_string(),
            "the upload link expired before the upload (HTTP 403 AccessDenied)"
        );
    }

    #[test]
    fn a_signature_mismatch_is_named() {
        let failure = UploadFailure::Store {
            status: 403,
            code: "SignatureDoesNotMatch".into(),
            message: "The request signature we calculated does not match".into(),
        };
        assert!(failure.to_string().contains("signature does not match"));
        assert!(failure.to_string().contains("403"));
    }
}
