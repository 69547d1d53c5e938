//! Delivering bucket events to the pixelator when no platform does it for us.
//!
//! The local pipeline's store (and the worker's reconciliation) put event documents
//! on a bounded queue; [`run`] takes them off at most `concurrency` at a time and
//! hands each to the pixelator, retrying with exponential backoff while the
//! failure is one a retry can fix. A full queue makes the producer wait, which in
//! local mode holds back the upload's response: back-pressure, not loss.
//!
//! Nothing queued survives the process, so [`reconcile`] walks the source bucket at
//! start and queues every source without a manifest for its current ETag. Together
//! with the pixelator's idempotence that makes killing the process at any moment
//! harmless: whatever was uploaded is processed after the next start, once.

use std::sync::Arc;
use std::time::Duration;

use pixelator_shared::layout::is_output_key;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::config::DeliveryConfig;
use crate::pixelator::event::{bare_etag, created_event};
use crate::pixelator::{Pixelator, now_rfc3339};
use crate::s3::StoreError;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Takes events off `queue` until it is closed and every event taken is
/// finished, handling at most `config.concurrency` at a time.
pub async fn run(pixelator: Pixelator, mut queue: mpsc::Receiver<Value>, config: DeliveryConfig) {
    let slots = Arc::new(Semaphore::new(config.concurrency));
    let mut in_flight = JoinSet::new();
    loop {
        // A slot first, then an event: while every slot is busy the queue fills
        // up and its producers wait.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            Some(finished) = in_flight.join_next(), if !in_flight.is_empty() => {
                log_panic(finished);
                continue;
            }
        };
        let Some(event) = queue.recv().await else {
            break;
        };
        let pixelator = pixelator.clone();
        let config = config.clone();
        in_flight.spawn(async move {
            deliver(&pixelator, event, &config).await;
            drop(slot);
        });
    }
    while let Some(finished) = in_flight.join_next().await {
        log_panic(finished);
    }
}

fn log_panic(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        tracing::error!(error = %error, "an event delivery task stopped unexpectedly");
    }
}

/// Hands one event to the pixelator, retrying transient failures with
/// exponential backoff. Returns whether it was handled.
pub async fn deliver(pixelator: &Pixelator, event: Value, config: &DeliveryConfig) -> bool {
    for attempt in 1..=config.max_attempts {
        let error = match pixelator.handle(event.clone()).await {
            Ok(_) => return true,
            Err(error) => error,
        };
        if !error.is_retryable() {
            tracing::error!(
                attempt,
                error = %error,
                "event delivery failed and retrying cannot help; the source is queued again \
                 at the next start"
            );
            return false;
        }
        if attempt == config.max_attempts {
            tracing::error!(
                attempts = attempt,
                error = %error,
                "event delivery gave up; the source is queued again at the next start"
            );
            return false;
        }
        let wait = backoff(config.retry_base, attempt);
        tracing::warn!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            error = %error,
            "event delivery failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
    false
}

/// The wait after failed attempt `attempt` (1-based): the base doubled for each
/// earlier attempt, at most [`MAX_BACKOFF`], with up to a quarter more at random
/// so that retries of many events spread out.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let doubled = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let capped = doubled.min(MAX_BACKOFF);
    let jitter = getrandom::u32().unwrap_or(0) % 256;
    capped + capped * jitter / 1024
}

/// What a reconciliation pass found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Sources seen under the prefix.
    pub sources: usize,
    /// Sources queued because they had no manifest for their ETag.
    pub queued: usize,
}

/// Queues an event for every source under the prefix that has no manifest for its
/// current ETag. Stops early (with what it found so far) only when the queue is
/// closed.
pub async fn reconcile(
    pixelator: &Pixelator,
    queue: &mpsc::Sender<Value>,
) -> Result<Reconciled, StoreError> {
    let settings = pixelator.settings();
    let source_bucket = &settings.buckets.source;
    let prefix = &settings.source_prefix;
    let s3 = pixelator.s3();
    let mut found = Reconciled::default();
    let mut pages = s3
        .list_objects_v2()
        .bucket(source_bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(|error| StoreError::from_sdk("ListObjectsV2", source_bucket, prefix, error))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if is_output_key(key) || key.ends_with('/') {
                continue;
            }
            found.sources += 1;
            let etag = bare_etag(object.e_tag().unwrap_or(""));
            if pixelator.manifest_etag(key).await?.as_deref() == Some(etag) {
                continue;
            }
            let size = object
                .size()
                .and_then(|size| u64::try_from(size).ok())
                .unwrap_or(0);
            let event = created_event(source_bucket, key, size, etag, &now_rfc3339());
            if queue.send(event).await.is_err() {
                return Ok(found);
            }
            found.queued += 1;
        }
    }
    tracing::info!(
        bucket = %source_bucket,
        prefix = %prefix,
        sources = found.sources,
        queued = found.queued,
        "reconciliation finished"
    );
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        let base = Duration::from_millis(100);
        let first = backoff(base, 1);
        assert!(first >= base && first <= base * 5 / 4, "{first:?}");
        let third = backoff(base, 3);
        assert!(third >= base * 4 && third <= base * 5, "{third:?}");
        let late = backoff(base, 40);
        assert!(
            late >= MAX_BACKOFF && late <= MAX_BACKOFF * 5 / 4,
            "{late:?}"
        );
    }
}
