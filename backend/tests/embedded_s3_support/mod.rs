//! Shared set-up for the tests that drive the embedded S3 server with the real AWS SDK
//! client and plain HTTP.

#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use pixelator::embedded::{self, EmbeddedS3, EmbeddedS3Config, EventKind, NotificationTarget};
use serde_json::Value;
use tokio::sync::mpsc;

pub const ACCESS_KEY: &str = "pixelator-test";
pub const SECRET_KEY: &str = "pixelator-test-secret";
pub const REGION: &str = "us-east-1";
pub const SOURCE: &str = "pixelator-source";
pub const PROCESSED: &str = "pixelator-processed";
pub const WEB_ORIGIN: &str = "http://localhost:8080";
pub const CONFIGURATION_ID: &str = "pixelate-on-upload";

/// A running server, its event queue and a client for it.
pub struct TestS3 {
    pub server: EmbeddedS3,
    pub events: mpsc::Receiver<Value>,
    pub client: Client,
}

impl TestS3 {
    /// Starts a server over `data_dir` with both buckets, CORS for [`WEB_ORIGIN`], and every
    /// event of the source bucket sent to `events`.
    pub async fn start(data_dir: &Path) -> Self {
        let (sink, events) = mpsc::channel(64);
        let config = EmbeddedS3Config {
            data_dir: data_dir.to_owned(),
            listen: ([127, 0, 0, 1], 0).into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: REGION.into(),
            buckets: vec![SOURCE.into(), PROCESSED.into()],
            cors_origins: vec![WEB_ORIGIN.into()],
            notifications: vec![NotificationTarget {
                configuration_id: CONFIGURATION_ID.into(),
                bucket: SOURCE.into(),
                prefix: String::new(),
                suffix: String::new(),
                events: vec![EventKind::ObjectCreated, EventKind::ObjectRemoved],
                sink,
            }],
        };
        let server = embedded::start(config).await.expect("embedded S3 starts");
        let client = client(&server.endpoint(), SECRET_KEY);
        Self {
            server,
            events,
            client,
        }
    }

    /// The next event document, waiting a few seconds at most.
    pub async fn next_event(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("an event arrives in time")
            .expect("the event queue is open")
    }

    /// Fails if an event is waiting.
    pub fn assert_no_event(&mut self) {
        if let Ok(event) = self.events.try_recv() {
            panic!("unexpected event: {event}");
        }
    }
}

/// An SDK client for the server at `endpoint`, signing with `secret`: explicit endpoint,
/// region and credentials, path-style addressing, nothing read from the environment.
pub fn client(endpoint: &str, secret: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(ACCESS_KEY, secret, None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// The S3 error code of a failed SDK call.
pub fn error_code<E, R>(error: &aws_sdk_s3::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    error.code().map(str::to_owned)
}

/// The HTTP status of a failed SDK call.
pub fn error_status<E>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<u16> {
    error.raw_response().map(|r| r.status().as_u16())
}

/// Reads a whole object.
pub async fn get_bytes(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("object exists");
    object
        .body
        .collect()
        .await
        .expect("body reads")
        .into_bytes()
        .to_vec()
}

/// Every key of a bucket, following continuation tokens.
pub async fn all_keys(client: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token)
            .send()
            .await
            .expect("listing works");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return keys,
        }
    }
}

/// A file of the shared failure cases, as copied into the test data.
pub fn case_file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/cases/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Lowercase hex of an MD5.
pub fn md5_hex(data: &[u8]) -> String {
    use s3s::crypto::{Checksum as _, Md5};
    hex(&Md5::checksum(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Files in the data folder's tmp/ (leftovers of refused or interrupted uploads).
pub fn temp_files(data_dir: &Path) -> usize {
    std::fs::read_dir(data_dir.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}
