//! What the pipeline's integration tests share: an embedded S3 store on a free
//! loopback port with both buckets, the real `aws-sdk-s3` client for it, the case
//! files, and pixel probes.
//!
//! Every client here has an explicit endpoint, region and keys, so no test ever
//! looks for credentials or contacts an instance metadata address.

#![allow(dead_code, unreachable_pub)]

pub mod process;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use pixelator::config::Config;
use pixelator::embedded::{self, EmbeddedS3, EmbeddedS3Config, EventKind, NotificationTarget};
use pixelator::pixelator::{Pixelator, PixelatorSettings};
use pixelator::s3::{StaticKeys, client_for_endpoint};
use pixelator_shared::wire::UploadTicket;
use serde_json::Value;
use tokio::sync::mpsc;

pub const SOURCE: &str = "pixelator-source";
pub const PROCESSED: &str = "pixelator-processed";
pub const REGION: &str = "us-east-1";

/// The keys every test store accepts.
pub fn keys() -> StaticKeys {
    StaticKeys {
        access_key: "test-access".to_owned(),
        secret_key: "test-secret-key".to_owned(),
    }
}

/// A running store, its client, and (when asked for) the queue of its events.
pub struct TestStore {
    pub store: EmbeddedS3,
    pub s3: Client,
    pub events: Option<mpsc::Receiver<Value>>,
    _data: tempfile::TempDir,
}

impl TestStore {
    /// A store with both buckets; with `events`, ObjectCreated events of the
    /// source bucket's `uploads/` prefix go to [`TestStore::events`].
    pub async fn start(events: bool) -> TestStore {
        let data = tempfile::tempdir().expect("temporary data folder");
        let (sink, receiver) = mpsc::channel(64);
        let notifications = if events {
            vec![NotificationTarget {
                configuration_id: "test".to_owned(),
                bucket: SOURCE.to_owned(),
                prefix: "uploads/".to_owned(),
                suffix: String::new(),
                events: vec![EventKind::ObjectCreated],
                sink,
            }]
        } else {
            Vec::new()
        };
        let keys = keys();
        let store = embedded::start(EmbeddedS3Config {
            data_dir: data.path().join("s3"),
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            access_key: keys.access_key.clone(),
            secret_key: keys.secret_key.clone(),
            region: REGION.to_owned(),
            buckets: vec![SOURCE.to_owned(), PROCESSED.to_owned()],
            cors_origins: vec!["http://localhost:8080".to_owned()],
            notifications,
        })
        .await
        .expect("embedded store starts");
        let s3 = client_for_endpoint(&store.endpoint(), REGION, &keys);
        TestStore {
            store,
            s3,
            events: events.then_some(receiver),
            _data: data,
        }
    }

    /// A pixelator with the default configuration, reading and writing here.
    pub fn pixelator(&self) -> Pixelator {
        Pixelator::new(
            self.s3.clone(),
            PixelatorSettings::from_config(&Config::default()),
        )
    }

    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap_or_else(|error| panic!("put {bucket}/{key}: {error:?}"));
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let output = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|error| panic!("get {bucket}/{key}: {error:?}"));
        output
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes()
            .to_vec()
    }

    pub async fn content_type(&self, bucket: &str, key: &str) -> Option<String> {
        let head = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("head");
        head.content_type().map(str::to_owned)
    }

    pub async fn exists(&self, bucket: &str, key: &str) -> bool {
        self.s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// Every key of a bucket with its size, in key order.
    pub async fn list(&self, bucket: &str) -> Vec<(String, i64)> {
        list_all(&self.s3, bucket).await
    }

    /// Serves the API over this store on a free loopback port.
    pub async fn api(&self, config: Config) -> TestApi {
        let state = pixelator::api::ApiState::new(self.s3.clone(), Arc::new(config));
        let router = pixelator::api::router(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("free port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("API server");
        });
        TestApi {
            base,
            http: reqwest::Client::new(),
            task,
        }
    }

    pub async fn manifest(&self, source_key: &str) -> pixelator_shared::wire::Manifest {
        let key = pixelator_shared::layout::manifest_key(source_key);
        serde_json::from_slice(&self.get(PROCESSED, &key).await).expect("manifest JSON")
    }

    /// The ObjectCreated:Put event S3 would send for `key` of the source bucket as it
    /// is stored now (its size and ETag).
    pub async fn created_event(&self, key: &str) -> Value {
        let head = self
            .s3
            .head_object()
            .bucket(SOURCE)
            .key(key)
            .send()
            .await
            .expect("HEAD of the source");
        let size = head.content_length().expect("a stored size");
        pixelator::pixelator::event::created_event(
            SOURCE,
            key,
            u64::try_from(size).expect("a size is never negative"),
            head.e_tag().expect("an ETag"),
            "2025-01-15T10:00:00.000Z",
        )
    }
}

/// The API of a test, served on a loopback port.
pub struct TestApi {
    pub base: String,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApi {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Asks for an upload ticket, expecting one.
    pub async fn ticket(&self, file_name: &str, content_type: &str, size: usize) -> UploadTicket {
        let response = self
            .http
            .post(self.url("/api/uploads"))
            .json(&serde_json::json!({
                "file_name": file_name,
                "content_type": content_type,
                "size": size,
            }))
            .send()
            .await
            .expect("POST /api/uploads");
        assert_eq!(response.status(), 201, "ticket for {file_name}");
        response.json().await.expect("ticket JSON")
    }

    /// Uploads `bytes` with a new ticket, as a browser would, returning the key.
    pub async fn upload(&self, file_name: &str, content_type: &str, bytes: Vec<u8>) -> String {
        let ticket = self.ticket(file_name, content_type, bytes.len()).await;
        let status = put_ticket(&self.http, &ticket, bytes).await;
        assert_eq!(status, 200, "PUT of {file_name}");
        ticket.key
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Sends `bytes` to a ticket's presigned URL with the ticket's headers (less the
/// length, which the HTTP client sets, as a browser does).
pub async fn put_ticket(http: &reqwest::Client, ticket: &UploadTicket, bytes: Vec<u8>) -> u16 {
    try_put_ticket(http, ticket, bytes).await.expect("PUT")
}

/// [`put_ticket`], for a store that may be gone.
pub async fn try_put_ticket(
    http: &reqwest::Client,
    ticket: &UploadTicket,
    bytes: Vec<u8>,
) -> Result<u16, reqwest::Error> {
    let mut request = http.put(&ticket.url).body(bytes);
    for (name, value) in &ticket.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            request = request.header(name, value);
        }
    }
    Ok(request.send().await?.status().as_u16())
}

/// A configuration with the defaults and `vars` set.
pub fn config_with(vars: &[(&str, &str)]) -> Config {
    let vars: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Config::from_lookup(|name| vars.get(name).cloned()).expect("valid configuration")
}

/// Every key of a bucket with its size, in key order.
pub async fn list_all(s3: &Client, bucket: &str) -> Vec<(String, i64)> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for object in page.expect("listing").contents() {
            keys.push((
                object.key().unwrap_or("").to_owned(),
                object.size().unwrap_or(-1),
            ));
        }
    }
    keys
}

pub fn case_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cases")
        .join(name)
}

pub fn case_bytes(name: &str) -> Vec<u8> {
    std::fs::read(case_path(name)).unwrap_or_else(|error| panic!("case file {name}: {error}"))
}

pub fn case_event(name: &str) -> Value {
    serde_json::from_slice(&case_bytes(name)).expect("case event JSON")
}

/// The folder of the bench photos: `PIXELATOR_BENCH_IMAGES` (relative to the
/// repository root), by default `../shared/bench-images`.
pub fn bench_images_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::var_os("PIXELATOR_BENCH_IMAGES") {
        Some(dir) => root.join(dir),
        None => root.join("../shared/bench-images"),
    }
}

/// Decodes an image into RGBA pixels.
pub fn decode(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes)
        .expect("decodable image")
        .to_rgba8()
}

/// Asserts that the pixel at `(x, y)` is within `tolerance` of `expected` in
/// each of red, green and blue.
pub fn assert_probe(
    image: &image::RgbaImage,
    x: u32,
    y: u32,
    expected: [u8; 3],
    tolerance: u8,
    what: &str,
) {
    let pixel = image.get_pixel(x, y).0;
    let close = (0..3).all(|channel| pixel[channel].abs_diff(expected[channel]) <= tolerance);
    assert!(
        close,
        "{what}: ({x},{y}) is {pixel:?}, expected {expected:?} ±{tolerance}"
    );
}

/// Log lines captured while a test runs on the current thread.
///
/// One global subscriber writes every INFO-and-above event as a JSON line to the
/// buffer installed on the thread that emits it. (A thread-local default
/// subscriber per test would be simpler, but tracing caches per call site whether
/// anyone listens, and tests running on other threads then make it drop events.)
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<CapturedLogs>> = const { std::cell::RefCell::new(None) };
}

/// Stops capturing on this thread when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

/// Where the global subscriber writes: the current thread's capture, if any.
struct ThreadCapture;

impl std::io::Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(logs) = capture.borrow().as_ref() {
                logs.0.lock().expect("log buffer").extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Captures the JSON log lines of the current thread until the guard drops.
    pub fn install(&self) -> CaptureGuard {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_max_level(tracing::Level::INFO)
                .with_writer(|| ThreadCapture)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        });
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(self.clone()));
        CaptureGuard(())
    }

    /// The captured lines that report an outcome (the pixelator's own), parsed.
    pub fn lines(&self) -> Vec<Value> {
        self.all_lines()
            .into_iter()
            .filter(|line| line.get("outcome").is_some())
            .collect()
    }

    /// Every captured line, parsed.
    pub fn all_lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("log buffer").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .collect()
    }
}

/// Polls `check` every 50 ms until it answers `Some`, for at most `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
