//! The webhook worker: S3-format event JSON posted by a store (as MinIO, Ceph or
//! Garage do) with a bearer token reaches the pixelator; without the token
//! nothing happens. The last test runs the real `pixelator worker` command
//! against the embedded store through the standard AWS variables only.

mod pipeline_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use pipeline_support::{SOURCE, TestStore, case_bytes, case_event};
use pixelator::worker::{self, WorkerState};
use pixelator_shared::layout::manifest_key;
use pixelator_shared::wire::ManifestStatus;
use serde_json::{Value, json};

const TOKEN: &str = "a-test-token-0123456789";

/// Serves a worker for `store` on a free port; answers its base URL.
async fn start_worker(store: &TestStore) -> String {
    let state = WorkerState::new(store.pixelator(), TOKEN, 2);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("free port");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        axum::serve(listener, worker::router(state))
            .await
            .expect("worker");
    });
    base
}

async fn post(base: &str, token: Option<&str>, body: String) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/events"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /events");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_event_the_store_sent_is_processed_when_posted_with_the_token() {
    let mut store = TestStore::start(true).await;
    let base = start_worker(&store).await;
    store
        .put(
            SOURCE,
            "uploads/w/first.png",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;
    let event = store.events.as_mut().unwrap().recv().await.unwrap();

    let (status, report) = post(&base, Some(TOKEN), event.to_string()).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["records"][0]["outcome"], "processed");
    assert_eq!(
        store.manifest("uploads/w/first.png").await.status,
        ManifestStatus::Done
    );

    // The same delivery again (webhooks are at least once): skipped.
    let (status, report) = post(&base, Some(TOKEN), event.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(report["records"][0]["reason"], "already_processed");
}

#[tokio::test]
async fn events_without_the_right_token_are_refused_and_change_nothing() {
    let store = TestStore::start(false).await;
    store
        .put(
            SOURCE,
            "uploads/first.png",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;
    let base = start_worker(&store).await;
    let event = case_event("c08-event-multi-record.json").to_string();

    for token in [
        None,
        Some("wrong-token-0123456789"),
        Some("a-test-token-012345678"),
    ] {
        let (status, body) = post(&base, token, event.clone()).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(body["code"], "unauthorized");
    }
    let response = reqwest::Client::new()
        .post(format!("{base}/events"))
        .header("authorization", format!("Basic {TOKEN}"))
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert!(store.list(pipeline_support::PROCESSED).await.is_empty());

    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let store = TestStore::start(false).await;
    let base = start_worker(&store).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = reqwest::Client::new()
            .post(format!("{base}/events"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .header("content-type", "application/json")
            .body(case_event("c04-event-s3-testevent.json").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn minio_webhook_events_and_test_events_are_understood() {
    let store = TestStore::start(false).await;
    let key = "uploads/minio dir/photo.png";
    let bytes = case_bytes("c08-first.png");
    let size = bytes.len();
    store.put(SOURCE, key, bytes, "image/png").await;
    let etag = store
        .s3
        .head_object()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await
        .unwrap();
    let base = start_worker(&store).await;
    // MinIO's webhook body: its own top-level fields, an "s3:" event name, and
    // the key with its slashes escaped too.
    let event = json!({
        "EventName": "s3:ObjectCreated:Put",
        "Key": format!("{SOURCE}/{key}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2025-01-15T10:00:00.123Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "minioadmin"},
            "requestParameters": {"principalId": "minioadmin", "region": "", "sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "17A8B2C3D4E5F601", "x-minio-origin-endpoint": "http://127.0.0.1:9000"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": SOURCE, "ownerIdentity": {"principalId": "minioadmin"}, "arn": format!("arn:aws:s3:::{SOURCE}")},
                "object": {
                    "key": "uploads%2Fminio+dir%2Fphoto.png",
                    "size": size,
                    "eTag": etag.e_tag().unwrap().trim_matches('"'),
                    "contentType": "image/png",
                    "userMetadata": {"content-type": "image/png"},
                    "sequencer": "17A8B2C3D4E5F601"
                }
            },
            "source": {"host": "127.0.0.1", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70"}
        }]
    });

    let (status, report) = post(&base, Some(TOKEN), event.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["records"][0]["key"], key);
    assert_eq!(report["records"][0]["outcome"], "processed");

    let (status, report) = post(
        &base,
        Some(TOKEN),
        case_event("c04-event-s3-testevent.json").to_string(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(report["notification"], "test_event");

    let (status, body) = post(&base, Some(TOKEN), "{not json".to_owned()).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_event");
}

#[tokio::test]
async fn an_unreachable_store_answers_503_so_the_sender_retries() {
    let store = TestStore::start(false).await;
    let base = start_worker(&store).await;
    store.store.shutdown().await;

    let (status, body) = post(
        &base,
        Some(TOKEN),
        case_event("c01-event-key-spaces.json").to_string(),
    )
    .await;

    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "store_unavailable");
}

/// Kills the child process when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_command_reaches_any_s3_store_through_the_standard_aws_variables() {
    let mut store = TestStore::start(true).await;
    // A source whose event never reached any worker: --reconcile finds it.
    store
        .put(
            SOURCE,
            "uploads/cli/missed.png",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;
    store.events.as_mut().unwrap().recv().await.unwrap();
    let keys = pipeline_support::keys();
    let child = Command::new(env!("CARGO_BIN_EXE_pixelator"))
        .args(["worker", "--reconcile"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", store.store.endpoint())
        .env("AWS_ACCESS_KEY_ID", &keys.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &keys.secret_key)
        .env("AWS_REGION", pipeline_support::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PIXELATOR_WORKER_TOKEN", TOKEN)
        .env("PIXELATOR_WORKER_PORT", "0")
        .env("PIXELATOR_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("pixelator worker starts");
    let mut child = Child(child);

    // The worker logs the address it listens on; what it printed before is kept
    // for the failure message should it stop without one.
    let stderr = child.0.stderr.take().unwrap();
    let (found, address) = tokio::sync::oneshot::channel();
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let log = printed.clone();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.lock().unwrap().push_str(&format!("{line}\n"));
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            // Only the line with the address takes the sender: the reconciliation
            // pass may log before the listener does.
            if let Some(address) = entry["address"].as_str()
                && let Some(found) = found.take()
            {
                let _ = found.send(address.to_owned());
            }
        }
    });
    let address = match tokio::time::timeout(Duration::from_secs(60), address).await {
        Ok(Ok(address)) => address,
        _ => {
            let printed = printed.lock().unwrap().clone();
            panic!("the worker printed no address; it printed:\n{printed}")
        }
    };

    store
        .put(
            SOURCE,
            "uploads/cli/second.jpg",
            case_bytes("c08-second.jpg"),
            "image/jpeg",
        )
        .await;
    let event = store.events.as_mut().unwrap().recv().await.unwrap();
    let (status, report) = post(&format!("http://{address}"), Some(TOKEN), event.to_string()).await;

    assert_eq!(status, 200, "{report}");
    assert_eq!(report["records"][0]["outcome"], "processed");
    let manifest = store.manifest("uploads/cli/second.jpg").await;
    assert_eq!(manifest.variants.len(), 5);
    let missed = manifest_key("uploads/cli/missed.png");
    pipeline_support::wait_for(Duration::from_secs(60), "the missed source", || async {
        store
            .exists(pipeline_support::PROCESSED, &missed)
            .await
            .then_some(())
    })
    .await;
}
