//! The pixelator function: the S3 event handler that writes the variants.
//!
//! [`Pixelator::handle`] takes one notification document as S3 (or an S3-compatible
//! store, or the local pipeline) sends it and handles each of its records on its
//! own: the object named by an `ObjectCreated` record in the source bucket is read,
//! pixelated by [`crate::codec::pixelate`] on a blocking thread, and its variants
//! are written to the processed bucket, each with its own Content-Type and the
//! source's ETag in its metadata; the manifest is written last, so a reader never
//! sees a partial set.
//!
//! What a record leads to:
//! - a source already processed at the same ETag, anything that is not a creation,
//!   anything from the processed bucket or named like output, anything outside the
//!   source prefix: skipped and logged, nothing read or written;
//! - an input that can never succeed (not an image, corrupt, truncated, too large,
//!   empty, an unsupported format): a manifest with status `failed` and a reason a
//!   person can read, and the record counts as handled;
//! - a store that cannot be reached or refuses: the invocation fails once every
//!   record has been tried, so the platform delivers the event again (records
//!   already done are then skipped by their manifest).
//!
//! Each record gives exactly one log line with its bucket, key, bytes, dimensions,
//! format, milliseconds per stage and outcome.

pub mod error;
pub mod event;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime, DateTimeFormat};
use bytes::Bytes;
use futures::future::try_join_all;
use pixelator_shared::layout::{is_output_key, manifest_key, variant_key};
use pixelator_shared::wire::{
    ImageFormat, Manifest, ManifestStatus, SourceRecord, Timings, VariantRecord,
};
use serde::Serialize;
use serde_json::Value;

use crate::codec::{self, CodecError, Limits, PixelateOptions, Pixelated};
use crate::config::{Buckets, Config};
use crate::s3::StoreError;
pub use error::PixelatorError;
use event::{ChangeKind, Notification, bare_etag, decode_key, parse_record};

/// The user-metadata key (`x-amz-meta-source-etag`) under which variants and
/// manifests carry the ETag of the source they were made from.
pub const SOURCE_ETAG_METADATA: &str = "source-etag";

/// The layout version of the manifests written here.
pub const MANIFEST_VERSION: u32 = 1;

/// The failure code recorded when the decoder stopped unexpectedly.
const INTERNAL_FAILURE: &str = "internal";

/// What the pixelator needs to know besides its S3 client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PixelatorSettings {
    /// Where sources are read and output written.
    pub buckets: Buckets,
    /// Only keys under this prefix are processed.
    pub source_prefix: String,
    /// Grid sizes, mode and limits for the codec.
    pub options: PixelateOptions,
}

impl PixelatorSettings {
    /// The settings a configuration describes.
    pub fn from_config(config: &Config) -> PixelatorSettings {
        PixelatorSettings {
            buckets: config.buckets.clone(),
            source_prefix: config.source_prefix.clone(),
            options: PixelateOptions {
                sizes: config.grid_sizes.clone(),
                mode: config.grid_mode,
                limits: Limits {
                    max_pixels: config.max_pixels,
                    max_dimension: config.max_dimension,
                    max_input_bytes: config.max_upload_bytes,
                },
            },
        }
    }
}

/// The S3 event handler. Cheap to clone: clones share the client and settings.
#[derive(Clone, Debug)]
pub struct Pixelator {
    s3: Client,
    settings: Arc<PixelatorSettings>,
}

/// What one invocation did, record by record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvocationReport {
    /// The shape of the notification: `records`, `test_event` or `unrecognised`.
    pub notification: &'static str,
    /// One entry per record, in the order of the document.
    pub records: Vec<RecordReport>,
}

/// What happened to one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordReport {
    /// The bucket the record names, if it could be read.
    pub bucket: Option<String>,
    /// The decoded key (or the key as sent, when it could not be decoded).
    pub key: Option<String>,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The outcome of one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Variants and manifest were written.
    Processed,
    /// The input can never be processed; a failed manifest was written.
    Failed {
        /// The stable failure code, such as `corrupt`.
        code: String,
        /// The reason, for a person.
        reason: String,
    },
    /// Nothing was read or written.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
    /// The store failed; the record is left for a retry.
    Error {
        /// Whether retrying can help.
        retryable: bool,
        /// What failed.
        message: String,
    },
}

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The record could not be read as an S3 event record.
    UnreadableRecord,
    /// Not an `ObjectCreated` event (a removal, a restore, ...).
    NotACreation,
    /// The event comes from the processed bucket, the pixelator's own output.
    OutputBucket,
    /// The event comes from a bucket that is not the source bucket.
    OtherBucket,
    /// The key is named like the pixelator's output (a variant or manifest).
    OutputKey,
    /// The key is outside the source prefix.
    OutsidePrefix,
    /// The key in the event is not a valid URL-encoded UTF-8 key.
    UndecodableKey,
    /// The key is a folder marker (ends with `/`).
    FolderMarker,
    /// A manifest for the same ETag already exists.
    AlreadyProcessed,
    /// The object no longer exists.
    Vanished,
}

impl SkipReason {
    fn as_str(self) -> &'static str {
        match self {
            SkipReason::UnreadableRecord => "unreadable_record",
            SkipReason::NotACreation => "not_a_creation",
            SkipReason::OutputBucket => "output_bucket",
            SkipReason::OtherBucket => "other_bucket",
            SkipReason::OutputKey => "output_key",
            SkipReason::OutsidePrefix => "outside_prefix",
            SkipReason::UndecodableKey => "undecodable_key",
            SkipReason::FolderMarker => "folder_marker",
            SkipReason::AlreadyProcessed => "already_processed",
            SkipReason::Vanished => "vanished",
        }
    }
}

/// What is known about a record so far, for its log line.
#[derive(Debug)]
struct RecordTrace {
    started: Instant,
    event: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    bytes: Option<u64>,
    width: Option<u32>,
    height: Option<u32>,
    format: Option<ImageFormat>,
    timings: Timings,
    detail: Option<String>,
}

impl RecordTrace {
    fn new() -> RecordTrace {
        RecordTrace {
            started: Instant::now(),
            event: None,
            bucket: None,
            key: None,
            bytes: None,
            width: None,
            height: None,
            format: None,
            timings: Timings::default(),
            detail: None,
        }
    }

    /// The timings so far, with the total up to now: what a manifest records.
    fn timings_now(&self) -> Timings {
        Timings {
            total_ms: millis(self.started.elapsed()),
            ..self.timings.clone()
        }
    }
}

/// The source object as read from the store.
enum Fetched {
    /// Its bytes and ETag.
    Read { bytes: Bytes, etag: String },
    /// It is larger than the limit, so was not read.
    TooLarge { size: u64, etag: String },
}

/// Why an input can never be processed, as its failed manifest records it.
struct Refusal {
    code: String,
    reason: String,
}

impl From<&CodecError> for Refusal {
    fn from(error: &CodecError) -> Refusal {
        Refusal {
            code: error.code().to_owned(),
            reason: error.to_string(),
        }
    }
}

impl Pixelator {
    /// A pixelator reading and writing through `s3`.
    pub fn new(s3: Client, settings: PixelatorSettings) -> Pixelator {
        Pixelator {
            s3,
            settings: Arc::new(settings),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &PixelatorSettings {
        &self.settings
    }

    /// Handles one notification document. Fails only when the store failed for
    /// some record, after every record has been tried.
    pub async fn handle(&self, event: Value) -> Result<InvocationReport, PixelatorError> {
        let records = match Notification::classify(&event) {
            Notification::Test { bucket } => {
                tracing::info!(
                    bucket = bucket.as_deref(),
                    outcome = "test_event",
                    "s3 test event: notifications are configured; nothing to do"
                );
                return Ok(InvocationReport {
                    notification: "test_event",
                    records: Vec::new(),
                });
            }
            Notification::Unrecognised => {
                tracing::error!(
                    outcome = "unrecognised",
                    "not an S3 notification (no Records, not a test event); ignored"
                );
                return Ok(InvocationReport {
                    notification: "unrecognised",
                    records: Vec::new(),
                });
            }
            Notification::Records(records) => records,
        };

        let mut reports = Vec::with_capacity(records.len());
        let mut failures = Vec::new();
        for record in &records {
            let (report, failure) = self.handle_record(record).await;
            reports.push(report);
            failures.extend(failure);
        }

        let total = reports.len();
        let retryable = failures.iter().any(StoreError::is_retryable);
        let failed = failures.len();
        match failures.into_iter().next() {
            None => Ok(InvocationReport {
                notification: "records",
                records: reports,
            }),
            Some(first) => Err(PixelatorError::Store {
                failed,
                total,
                retryable,
                first,
            }),
        }
    }

    /// Handles one record and writes its log line.
    async fn handle_record(&self, record: &Value) -> (RecordReport, Option<StoreError>) {
        let mut trace = RecordTrace::new();
        let result = self.process_record(record, &mut trace).await;
        trace.timings.total_ms = millis(trace.started.elapsed());

        let (outcome, failure) = match result {
            Ok(outcome) => (outcome, None),
            Err(error) => {
                let outcome = Outcome::Error {
                    retryable: error.is_retryable(),
                    message: error.to_string(),
                };
                (outcome, Some(error))
            }
        };
        log_record(&trace, &outcome);
        let report = RecordReport {
            bucket: trace.bucket,
            key: trace.key,
            outcome,
        };
        (report, failure)
    }

    /// Decides what to do with a record and does it.
    async fn process_record(
        &self,
        record: &Value,
        trace: &mut RecordTrace,
    ) -> Result<Outcome, StoreError> {
        let skip = |reason| Ok(Outcome::Skipped { reason });
        let record = match parse_record(record) {
            Ok(record) => record,
            Err(error) => {
                trace.detail = Some(error.to_string());
                return skip(SkipReason::UnreadableRecord);
            }
        };
        let object = record.s3.object;
        let bucket = record.s3.bucket.name.unwrap_or_default();
        let encoded_key = object.key.unwrap_or_default();
        let decoded_key = decode_key(&encoded_key);
        trace.event = record.event_name.clone();
        trace.bucket = Some(bucket.clone());
        trace.key = Some(decoded_key.clone().unwrap_or_else(|_| encoded_key.clone()));
        trace.bytes = object.size.and_then(|size| u64::try_from(size).ok());

        // Guards, cheapest first; none of them reads or writes anything.
        let event_name = record.event_name.as_deref().unwrap_or("");
        if ChangeKind::of_event_name(event_name) != ChangeKind::Created {
            return skip(SkipReason::NotACreation);
        }
        let buckets = &self.settings.buckets;
        if bucket == buckets.processed {
            return skip(SkipReason::OutputBucket);
        }
        if bucket != buckets.source {
            return skip(SkipReason::OtherBucket);
        }
        let key = match decoded_key {
            Ok(key) => key,
            Err(error) => {
                trace.detail = Some(error.to_string());
                return skip(SkipReason::UndecodableKey);
            }
        };
        if is_output_key(&key) {
            return skip(SkipReason::OutputKey);
        }
        if !key.starts_with(&self.settings.source_prefix) {
            return skip(SkipReason::OutsidePrefix);
        }
        if key.ends_with('/') {
            return skip(SkipReason::FolderMarker);
        }

        // At-least-once delivery: a manifest for this very ETag means done.
        let event_etag = object.e_tag.as_deref().map(bare_etag).map(str::to_owned);
        let started = Instant::now();
        let manifest_etag = self.manifest_etag(&key).await?;
        if event_etag.is_some() && manifest_etag == event_etag {
            return skip(SkipReason::AlreadyProcessed);
        }

        // What the event's size already tells, without reading the object.
        let limit = self.settings.options.limits.max_input_bytes;
        if let (Some(size), Some(etag)) = (trace.bytes, event_etag.as_deref()) {
            let refusal = if size == 0 {
                Some(CodecError::Empty)
            } else if size > limit {
                Some(too_large(size, limit))
            } else {
                None
            };
            if let Some(refusal) = refusal {
                let refusal = Refusal::from(&refusal);
                return self.record_failure(&key, etag, size, refusal, trace).await;
            }
        }

        let (bytes, etag) = match self.fetch(&key, limit).await {
            Ok(Fetched::Read { bytes, etag }) => (bytes, etag),
            Ok(Fetched::TooLarge { size, etag }) => {
                trace.bytes = Some(size);
                let refusal = Refusal::from(&too_large(size, limit));
                return self.record_failure(&key, &etag, size, refusal, trace).await;
            }
            Err(error) if error.is_not_found() => return skip(SkipReason::Vanished),
            Err(error) => return Err(error),
        };
        trace.timings.fetch_ms = millis(started.elapsed());
        let size = bytes.len() as u64;
        trace.bytes = Some(size);
        if manifest_etag.as_deref() == Some(etag.as_str()) {
            return skip(SkipReason::AlreadyProcessed);
        }

        let pixelated = match self.pixelate(bytes).await {
            Ok(pixelated) => pixelated,
            Err(refusal) => return self.record_failure(&key, &etag, size, refusal, trace).await,
        };
        let source = pixelated.source;
        trace.width = Some(source.width);
        trace.height = Some(source.height);
        trace.format = Some(source.format);
        trace.timings.decode_ms = millis(pixelated.timings.decode);
        trace.timings.encode_ms = millis(pixelated.timings.encode);
        if let Some(empty) = pixelated
            .variants
            .iter()
            .find(|variant| variant.bytes.is_empty())
        {
            // Never publish a zero-byte object: an encoder bug is recorded as such.
            let refusal = Refusal {
                code: INTERNAL_FAILURE.to_owned(),
                reason: format!("the {} variant came out empty", empty.shape),
            };
            return self.record_failure(&key, &etag, size, refusal, trace).await;
        }

        let stored = Instant::now();
        let variants = self.store_variants(&key, &etag, pixelated).await?;
        trace.timings.store_ms = millis(stored.elapsed());
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            source: self.source_record(&key, &etag, size),
            status: ManifestStatus::Done,
            reason: None,
            failure: None,
            image: Some(source.record()),
            grid_mode: self.settings.options.mode,
            variants,
            timings: trace.timings_now(),
            processed_at: now_rfc3339(),
            pixelator_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        self.store_manifest(&key, &manifest).await?;
        trace.timings.store_ms = millis(stored.elapsed());
        Ok(Outcome::Processed)
    }

    /// The S3 client in use.
    pub fn s3(&self) -> &Client {
        &self.s3
    }

    /// The ETag recorded in the manifest of the source `key`, if it has a
    /// readable one.
    pub async fn manifest_etag(&self, key: &str) -> Result<Option<String>, StoreError> {
        let bucket = &self.settings.buckets.processed;
        let manifest_key = manifest_key(key);
        let response = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(&manifest_key)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(error) => {
                let error = StoreError::from_sdk("GetObject", bucket, &manifest_key, error);
                if error.is_access_denied() {
                    // A policy that lets the pixelator write the processed bucket
                    // but not read it: the work is redone (same keys, same bytes)
                    // instead of failing every event.
                    tracing::warn!(
                        bucket = %bucket,
                        key = %manifest_key,
                        "cannot read manifests (access denied), so duplicate deliveries are \
                         processed again; grant s3:GetObject on the manifests and \
                         s3:ListBucket on the processed bucket"
                    );
                    return Ok(None);
                }
                return if error.is_not_found() {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|error| {
                StoreError::body("GetObject", bucket, &manifest_key, error.to_string())
            })?
            .into_bytes();
        match serde_json::from_slice::<Manifest>(&body) {
            Ok(manifest) => Ok(Some(manifest.source.etag)),
            Err(error) => {
                // An unreadable manifest is replaced by processing again.
                tracing::warn!(
                    bucket = %bucket,
                    key = %manifest_key,
                    error = %error,
                    "existing manifest is unreadable; the source is processed again"
                );
                Ok(None)
            }
        }
    }

    /// Reads the source. An object over `limit` bytes is not read: its ETag and
    /// size come back instead.
    async fn fetch(&self, key: &str, limit: u64) -> Result<Fetched, StoreError> {
        let bucket = &self.settings.buckets.source;
        let output = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| StoreError::from_sdk("GetObject", bucket, key, error))?;
        let etag = bare_etag(output.e_tag().unwrap_or("")).to_owned();
        let declared = output
            .content_length()
            .and_then(|length| u64::try_from(length).ok())
            .unwrap_or(0);
        if declared > limit {
            return Ok(Fetched::TooLarge {
                size: declared,
                etag,
            });
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|error| StoreError::body("GetObject", bucket, key, error.to_string()))?
            .into_bytes();
        Ok(Fetched::Read { bytes, etag })
    }

    /// Runs the codec on a blocking thread. A panic inside it is recorded as a
    /// permanent failure of this input: the same bytes would panic again.
    async fn pixelate(&self, bytes: Bytes) -> Result<Pixelated, Refusal> {
        let settings = Arc::clone(&self.settings);
        let job = tokio::task::spawn_blocking(move || codec::pixelate(&bytes, &settings.options));
        match job.await {
            Ok(result) => result.map_err(|error| Refusal::from(&error)),
            Err(join_error) => Err(Refusal {
                code: INTERNAL_FAILURE.to_owned(),
                reason: format!("the image could not be processed: {join_error}"),
            }),
        }
    }

    /// Writes every variant, each with its Content-Type and the source ETag.
    async fn store_variants(
        &self,
        key: &str,
        etag: &str,
        pixelated: Pixelated,
    ) -> Result<Vec<VariantRecord>, StoreError> {
        let bucket = &self.settings.buckets.processed;
        let writes = pixelated.variants.into_iter().map(|variant| async move {
            let variant_key = variant_key(key, variant.shape, variant.format);
            let record = VariantRecord {
                size: variant.size,
                grid: variant.shape,
                key: variant_key.clone(),
                format: variant.format,
                content_type: variant.format.mime_type().to_owned(),
                bytes: variant.bytes.len() as u64,
            };
            self.s3
                .put_object()
                .bucket(bucket)
                .key(&variant_key)
                .content_type(variant.format.mime_type())
                .metadata(SOURCE_ETAG_METADATA, etag)
                .body(ByteStream::from(variant.bytes))
                .send()
                .await
                .map_err(|error| StoreError::from_sdk("PutObject", bucket, &variant_key, error))?;
            Ok(record)
        });
        let mut records = try_join_all(writes).await?;
        records.sort_by_key(|record| record.size);
        Ok(records)
    }

    /// Writes a source's manifest, the last object of its set.
    async fn store_manifest(&self, key: &str, manifest: &Manifest) -> Result<(), StoreError> {
        let bucket = &self.settings.buckets.processed;
        let manifest_key = manifest_key(key);
        let body = serde_json::to_vec(manifest).expect("a manifest always serialises to JSON");
        self.s3
            .put_object()
            .bucket(bucket)
            .key(&manifest_key)
            .content_type("application/json")
            .metadata(SOURCE_ETAG_METADATA, &manifest.source.etag)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| StoreError::from_sdk("PutObject", bucket, &manifest_key, error))?;
        Ok(())
    }

    /// Records an input that can never be processed: a manifest with status
    /// `failed`, its reason, and no variants.
    async fn record_failure(
        &self,
        key: &str,
        etag: &str,
        size: u64,
        refusal: Refusal,
        trace: &mut RecordTrace,
    ) -> Result<Outcome, StoreError> {
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            source: self.source_record(key, etag, size),
            status: ManifestStatus::Failed,
            reason: Some(refusal.reason.clone()),
            failure: Some(refusal.code.clone()),
            image: None,
            grid_mode: self.settings.options.mode,
            variants: Vec::new(),
            timings: trace.timings_now(),
            processed_at: now_rfc3339(),
            pixelator_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        self.store_manifest(key, &manifest).await?;
        Ok(Outcome::Failed {
            code: refusal.code,
            reason: refusal.reason,
        })
    }

    fn source_record(&self, key: &str, etag: &str, size: u64) -> SourceRecord {
        SourceRecord {
            bucket: self.settings.buckets.source.clone(),
            key: key.to_owned(),
            etag: etag.to_owned(),
            size,
        }
    }
}

/// The refusal for an object over the byte limit.
fn too_large(size: u64, limit: u64) -> CodecError {
    CodecError::TooLarge {
        detail: format!("the file has {size} bytes, more than the limit of {limit}"),
    }
}

/// Writes the one log line of a record: `info` when it went as it should,
/// `error` when the input or the store failed.
fn log_record(trace: &RecordTrace, outcome: &Outcome) {
    macro_rules! line {
        ($level:ident, $outcome:expr, $detail:expr, $message:literal) => {
            tracing::$level!(
                event = trace.event.as_deref(),
                bucket = trace.bucket.as_deref(),
                key = trace.key.as_deref(),
                bytes = trace.bytes,
                width = trace.width,
                height = trace.height,
                format = trace.format.map(ImageFormat::name),
                fetch_ms = trace.timings.fetch_ms,
                decode_ms = trace.timings.decode_ms,
                encode_ms = trace.timings.encode_ms,
                store_ms = trace.timings.store_ms,
                total_ms = trace.timings.total_ms,
                outcome = $outcome,
                detail = $detail,
                $message
            )
        };
    }
    let detail = trace.detail.as_deref();
    match outcome {
        Outcome::Processed => line!(info, "processed", detail, "record processed"),
        Outcome::Failed { code, reason } => {
            let detail = Some(reason.as_str());
            line!(error, code.as_str(), detail, "record failed permanently")
        }
        Outcome::Skipped { reason } => match reason {
            SkipReason::UnreadableRecord | SkipReason::UndecodableKey => {
                line!(
                    error,
                    reason.as_str(),
                    detail,
                    "record skipped: it is malformed"
                )
            }
            SkipReason::Vanished => {
                line!(
                    warn,
                    reason.as_str(),
                    detail,
                    "record skipped: the object is gone"
                )
            }
            _ => line!(info, reason.as_str(), detail, "record skipped"),
        },
        Outcome::Error { message, .. } => {
            let detail = Some(message.as_str());
            line!(error, "store_error", detail, "record left for a retry")
        }
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The current time as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    DateTime::from(SystemTime::now())
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
