//! `pixelator worker`: the pixelator as a long-running service for self-hosted
//! stores that deliver bucket notifications by webhook (MinIO, Ceph, Garage and
//! others send the same S3 event JSON).
//!
//! `POST /events` takes one notification document and answers once every record
//! has been handled: 200 with the per-record report, or 503 when the store failed
//! in a way a retry can fix (so the sender delivers the event again), or 500 when
//! it refused. Every request must carry `Authorization: Bearer <token>`, compared
//! in constant time. At most `concurrency` events are handled at a time; a request
//! that cannot get a slot within [`SLOT_WAIT`] is answered 503 with `Retry-After`,
//! so several workers behind one address share the work. `GET /health` answers
//! without a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pixelator_shared::wire::{ApiError, Health};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::pixelator::Pixelator;

/// The largest event document accepted.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// How long a request waits for a free slot before it is turned away.
pub const SLOT_WAIT: Duration = Duration::from_secs(30);

/// What the worker's handlers share.
#[derive(Clone, Debug)]
pub struct WorkerState {
    pixelator: Pixelator,
    token: Arc<str>,
    slots: Arc<Semaphore>,
}

impl WorkerState {
    /// A worker handing events to `pixelator`, for senders presenting `token`,
    /// `concurrency` events at a time.
    pub fn new(pixelator: Pixelator, token: &str, concurrency: usize) -> WorkerState {
        WorkerState {
            pixelator,
            token: Arc::from(token),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }
}

/// The worker's router.
pub fn router(state: WorkerState) -> Router {
    let events = Router::new()
        .route("/events", post(receive_event))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(MAX_EVENT_BYTES));
    Router::new()
        .route("/health", get(health))
        .merge(events)
        .fallback(|| async { failure(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
}

/// A new random token of 32 hex digits, for a worker started without one.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Runs the worker on `address` until Ctrl-C or SIGTERM.
pub async fn run(state: WorkerState, address: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "worker listening for events on /events");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(crate::serve::shutdown_signal())
        .await
}

async fn require_token(
    State(state): State<WorkerState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(token) if same_secret(token.as_bytes(), state.token.as_bytes()) => {
            next.run(request).await
        }
        _ => {
            tracing::warn!("event refused: missing or wrong bearer token");
            let mut response = failure(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(presented: &[u8], expected: &[u8]) -> bool {
    if presented.len() != expected.len() {
        return false;
    }
    presented
        .iter()
        .zip(expected)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

async fn receive_event(
    State(state): State<WorkerState>,
    event: Result<Json<Value>, JsonRejection>,
) -> Response {
    let Json(event) = match event {
        Ok(event) => event,
        Err(rejection) => {
            return failure(
                StatusCode::BAD_REQUEST,
                "invalid_event",
                &rejection.body_text(),
            );
        }
    };
    let slot = tokio::time::timeout(SLOT_WAIT, Arc::clone(&state.slots).acquire_owned()).await;
    let Ok(Ok(_slot)) = slot else {
        let mut response = failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "every slot is busy; deliver the event again later",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    match state.pixelator.handle(event).await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(error) if error.is_retryable() => failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store is unavailable; deliver the event again later",
        ),
        Err(_) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            "the store refused a request; see the worker's log",
        ),
    }
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

fn failure(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ApiError {
        code: code.to_owned(),
        message: message.to_owned(),
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!same_secret(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_secret(b"", b"0123456789abcdef"));
    }

    #[test]
    fn made_up_tokens_are_long_and_differ() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
