//! The two Lambda bootstraps under a real Lambda runtime emulator.
//!
//! `cargo lambda watch` serves the Lambda runtime API to `lambda-pixelator` and
//! `lambda-api`, which take their invocations from it one at a time as on AWS
//! Lambda, with their S3 client pointed by the standard AWS variables at an
//! embedded S3 server this test starts. The
//! pixelator is invoked with `cargo lambda invoke --data-file` and the event files of
//! the shared failure cases, or with the very event the store emitted for an upload;
//! the API is called over HTTP through the emulator's function URLs. What lands in
//! the processed bucket is then read back with the AWS SDK.
//!
//! Everything listens on 127.0.0.1. The test needs cargo-lambda on PATH (the tools
//! cache's `bin/`, see scripts/setup), so a plain `cargo nextest run` skips it;
//! scripts/test runs it with `--run-ignored only`.

mod embedded_s3_support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use embedded_s3_support::{ACCESS_KEY, PROCESSED, REGION, SECRET_KEY, SOURCE, TestS3};
use embedded_s3_support::{all_keys, case_file, get_bytes};
use pixelator_shared::wire::{ImagePage, ImageStatus, ImageView, Manifest, ManifestStatus};
use pixelator_shared::wire::{UploadRequest, UploadTicket};
use serde_json::Value;
use tokio::process::{Child, Command};

const PIXELATOR: &str = "lambda-pixelator";
const API: &str = "lambda-api";
const GRID_SIZES: [u32; 5] = [8, 16, 32, 48, 64];

/// cargo-lambda's runtime emulator and the two functions it serves, all stopped when
/// dropped.
///
/// The emulator runs with `--only-lambda-apis`: it serves the Lambda runtime API,
/// invocations and function URLs, and the test starts the two bootstraps cargo
/// built for it ([`env!`]`("CARGO_BIN_EXE_...")`), each pointed at the runtime API
/// under its own function name, in an environment as bare as Lambda's. So the very
/// binaries under test run, and the emulator does not build a second copy.
struct Emulator {
    watch: Child,
    functions: Vec<Child>,
    address: SocketAddr,
    logs: Vec<PathBuf>,
}

impl Emulator {
    /// Starts the emulator on a free loopback port and both functions, their S3
    /// client aimed at `s3_endpoint`.
    async fn start(s3_endpoint: &str, scratch: &Path) -> Result<Emulator> {
        let address = free_loopback_address()?;
        let watch_log = scratch.join("cargo-lambda-watch.log");
        let log_file = std::fs::File::create(&watch_log)?;
        let watch = Command::new("cargo")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &address.port().to_string()])
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context("cargo lambda watch starts (is cargo-lambda on PATH? see scripts/setup)")?;
        let mut emulator = Emulator {
            watch,
            functions: Vec::new(),
            address,
            logs: vec![watch_log],
        };

        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(address).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "the emulator never listened on {address}\n{}",
                    emulator.log_tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let bootstraps = [
            (PIXELATOR, env!("CARGO_BIN_EXE_lambda-pixelator")),
            (API, env!("CARGO_BIN_EXE_lambda-api")),
        ];
        for (name, binary) in bootstraps {
            let log = scratch.join(format!("{name}.log"));
            let log_file = std::fs::File::create(&log)?;
            let function = Command::new(binary)
                .env_clear()
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://{address}/.rt/{name}"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", name)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                .env("AWS_ENDPOINT_URL", s3_endpoint)
                .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
                .env("AWS_REGION", REGION)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("PIXELATOR_SOURCE_BUCKET", SOURCE)
                .env("PIXELATOR_PROCESSED_BUCKET", PROCESSED)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file)
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("{binary} starts"))?;
            emulator.functions.push(function);
            emulator.logs.push(log);
        }
        Ok(emulator)
    }

    /// Invokes `function` with the JSON in `event_file`; the function's answer.
    async fn invoke(&self, function: &str, event_file: &Path) -> Result<Value> {
        let output = Command::new("cargo")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["lambda", "invoke", function, "--output-format", "json"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.address.port().to_string()])
            .arg("--data-file")
            .arg(event_file)
            .stdin(Stdio::null())
            .output()
            .await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "invoking {function} with {} failed: {}{}\n{}",
            event_file.display(),
            stdout,
            String::from_utf8_lossy(&output.stderr),
            self.log_tails()
        );
        serde_json::from_str(stdout.trim())
            .with_context(|| format!("{function} answered something other than JSON: {stdout}"))
    }

    /// The emulator's URL of `path` on the function URL of `function`.
    fn function_url(&self, function: &str, path: &str) -> String {
        format!("http://{}/lambda-url/{function}{path}", self.address)
    }

    /// The last lines of the emulator's and the functions' logs.
    fn log_tails(&self) -> String {
        let mut tails = String::new();
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            tails.push_str(&format!("--- {} ---\n{tail}\n", log.display()));
        }
        tails
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for function in &mut self.functions {
            let _ = function.start_kill();
        }
        // Whatever the emulator started runs in its process group.
        if let Some(pid) = self.watch.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.watch.start_kill();
    }
}

fn free_loopback_address() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A case's event file, as copied into the test data.
fn case_event(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cases")
        .join(name)
}

/// The outcome of each record in the pixelator's answer, as (key, outcome).
fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|record| {
                    let field = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
                    let outcome = match record["reason"].as_str() {
                        Some(reason) if field("outcome") == "skipped" => {
                            format!("skipped:{reason}")
                        }
                        _ => field("outcome"),
                    };
                    (field("key"), outcome)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pair(key: &str, outcome: &str) -> (String, String) {
    (key.to_owned(), outcome.to_owned())
}

/// The manifest of `source_key` in the processed bucket.
async fn manifest(s3: &TestS3, source_key: &str) -> Manifest {
    let key = pixelator_shared::layout::manifest_key(source_key);
    let bytes = get_bytes(&s3.client, PROCESSED, &key).await;
    serde_json::from_slice(&bytes).expect("the manifest is JSON")
}

/// Checks that `source_key` has a done manifest and five variants of `width x
/// height` whose block at `probe` has roughly `colour`.
async fn assert_variants(
    s3: &TestS3,
    source_key: &str,
    (width, height): (u32, u32),
    probes: &[((u32, u32), [u8; 3])],
) {
    let manifest = manifest(s3, source_key).await;
    assert_eq!(
        manifest.status,
        ManifestStatus::Done,
        "{source_key}: {manifest:?}"
    );
    let sizes: Vec<u32> = manifest
        .variants
        .iter()
        .map(|variant| variant.size)
        .collect();
    assert_eq!(sizes, GRID_SIZES, "{source_key}");
    for variant in &manifest.variants {
        let head = s3
            .client
            .head_object()
            .bucket(PROCESSED)
            .key(&variant.key)
            .send()
            .await
            .expect("the variant exists");
        assert_eq!(
            head.content_type(),
            Some(variant.content_type.as_str()),
            "{}",
            variant.key
        );

        let bytes = get_bytes(&s3.client, PROCESSED, &variant.key).await;
        let image = image::load_from_memory(&bytes)
            .expect("the variant decodes")
            .to_rgb8();
        assert_eq!(image.dimensions(), (width, height), "{}", variant.key);
        for &((x, y), colour) in probes {
            let found = image.get_pixel(x, y).0;
            let close = found.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 12);
            assert!(
                close,
                "{} at ({x}, {y}): {found:?}, expected {colour:?}",
                variant.key
            );
        }
    }
}

/// Writes an event document to a file for `cargo lambda invoke --data-file`.
fn event_file(scratch: &Path, name: &str, event: &Value) -> PathBuf {
    let path = scratch.join(name);
    std::fs::write(&path, event.to_string()).expect("the event file is written");
    path
}

/// Drops the events the store emitted for uploads the test made by hand.
fn drain_events(s3: &mut TestS3) {
    while s3.events.try_recv().is_ok() {}
}

async fn put(s3: &TestS3, key: &str, case: &str, content_type: &str) {
    s3.client
        .put_object()
        .bucket(SOURCE)
        .key(key)
        .content_type(content_type)
        .body(ByteStream::from(case_file(case)))
        .send()
        .await
        .expect("the upload is stored");
}

#[tokio::test]
#[ignore = "needs cargo-lambda on PATH; scripts/test runs it"]
async fn lambda_bootstraps_handle_real_events_and_requests_under_the_emulator() {
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let mut s3 = TestS3::start(&scratch.path().join("s3")).await;
    let emulator = Emulator::start(&s3.server.endpoint(), scratch.path())
        .await
        .expect("the emulator starts");

    // C01: the key arrives URL-encoded with `+` for spaces; the object is read and
    // the variants are named with the decoded key.
    let summer = "uploads/summer trip (1).jpg";
    put(&s3, summer, "c01-summer-trip.jpg", "image/jpeg").await;
    let report = emulator
        .invoke(PIXELATOR, &case_event("c01-event-key-spaces.json"))
        .await
        .expect("the pixelator answers");
    assert_eq!(outcomes(&report), [pair(summer, "processed")]);
    assert_variants(
        &s3,
        summer,
        (120, 80),
        &[((15, 10), [255, 0, 0]), ((105, 70), [255, 255, 0])],
    )
    .await;
    let first_variant = "uploads/pixelated-8x8-summer trip (1).jpg";
    assert!(
        all_keys(&s3.client, PROCESSED)
            .await
            .contains(&first_variant.to_owned())
    );

    // Delivered again: already processed at this ETag, nothing rewritten.
    let written_before = manifest(&s3, summer).await.processed_at;
    let report = emulator
        .invoke(PIXELATOR, &case_event("c01-event-key-spaces.json"))
        .await
        .expect("the pixelator answers");
    assert_eq!(
        outcomes(&report),
        [pair(summer, "skipped:already_processed")]
    );
    assert_eq!(manifest(&s3, summer).await.processed_at, written_before);

    // C03, C04, C06: the pipeline's own output, S3's test event and a removal are
    // answered with success and change nothing.
    let processed_before = all_keys(&s3.client, PROCESSED).await;
    let report = emulator
        .invoke(PIXELATOR, &case_event("c03-event-from-output-bucket.json"))
        .await
        .expect("the pixelator answers");
    assert_eq!(
        outcomes(&report),
        [pair(
            "summer-trip/pixelated-16x16.png",
            "skipped:output_bucket"
        )]
    );
    let report = emulator
        .invoke(PIXELATOR, &case_event("c04-event-s3-testevent.json"))
        .await
        .expect("the pixelator answers");
    assert_eq!(report["notification"], "test_event");
    let report = emulator
        .invoke(PIXELATOR, &case_event("c06-event-object-removed.json"))
        .await
        .expect("the pixelator answers");
    assert_eq!(
        outcomes(&report),
        [pair("uploads/old-photo.jpg", "skipped:not_a_creation")]
    );
    assert_eq!(all_keys(&s3.client, PROCESSED).await, processed_before);

    // C07: an upload completed as a one-part multipart upload.
    let multipart = "uploads/multipart.jpg";
    let upload = s3
        .client
        .create_multipart_upload()
        .bucket(SOURCE)
        .key(multipart)
        .content_type("image/jpeg")
        .send()
        .await
        .expect("a multipart upload starts");
    let upload_id = upload.upload_id().expect("an upload id");
    let part = s3
        .client
        .upload_part()
        .bucket(SOURCE)
        .key(multipart)
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(case_file("c07-multipart.jpg")))
        .send()
        .await
        .expect("the part is stored");
    let parts = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .set_e_tag(part.e_tag().map(str::to_owned))
                .build(),
        )
        .build();
    s3.client
        .complete_multipart_upload()
        .bucket(SOURCE)
        .key(multipart)
        .upload_id(upload_id)
        .multipart_upload(parts)
        .send()
        .await
        .expect("the multipart upload completes");
    let report = emulator
        .invoke(PIXELATOR, &case_event("c07-event-multipart.json"))
        .await
        .expect("the pixelator answers");
    assert_eq!(outcomes(&report), [pair(multipart, "processed")]);
    assert_variants(&s3, multipart, (160, 120), &[]).await;

    // C08: three records, the middle one corrupt; every record is handled and the
    // invocation succeeds.
    put(&s3, "uploads/first.png", "c08-first.png", "image/png").await;
    put(
        &s3,
        "uploads/third-corrupt.png",
        "c08-third-corrupt.png",
        "image/png",
    )
    .await;
    put(&s3, "uploads/second.jpg", "c08-second.jpg", "image/jpeg").await;
    let report = emulator
        .invoke(PIXELATOR, &case_event("c08-event-multi-record.json"))
        .await
        .expect("the pixelator answers");
    assert_eq!(
        outcomes(&report),
        [
            pair("uploads/first.png", "processed"),
            pair("uploads/third-corrupt.png", "failed"),
            pair("uploads/second.jpg", "processed"),
        ]
    );
    assert_variants(&s3, "uploads/first.png", (64, 64), &[((4, 4), [0, 0, 255])]).await;
    assert_variants(
        &s3,
        "uploads/second.jpg",
        (64, 48),
        &[((4, 3), [0, 255, 0])],
    )
    .await;
    let corrupt = manifest(&s3, "uploads/third-corrupt.png").await;
    assert_eq!(corrupt.status, ManifestStatus::Failed);
    assert!(corrupt.variants.is_empty());
    let processed = all_keys(&s3.client, PROCESSED).await;
    assert!(
        !processed
            .iter()
            .any(|key| key.contains("pixelated-") && key.contains("third-corrupt"))
    );

    // C22: stored as application/octet-stream; the event is the one the store
    // emitted, and the variants say what they hold.
    drain_events(&mut s3);
    put(
        &s3,
        "uploads/octet.png",
        "c22-octet-stream.png",
        "application/octet-stream",
    )
    .await;
    let event = s3.next_event().await;
    let report = emulator
        .invoke(
            PIXELATOR,
            &event_file(scratch.path(), "c22-event.json", &event),
        )
        .await
        .expect("the pixelator answers");
    assert_eq!(outcomes(&report), [pair("uploads/octet.png", "processed")]);
    assert_variants(&s3, "uploads/octet.png", (96, 64), &[((6, 4), [0, 255, 0])]).await;
    let octet = manifest(&s3, "uploads/octet.png").await;
    assert!(
        octet
            .variants
            .iter()
            .all(|variant| variant.content_type == "image/png")
    );

    // The API through the emulator's function URL: health, then a presigned upload
    // the way the page makes it, processed from the event the store emitted, then
    // the image as the gallery sees it.
    let http = reqwest::Client::new();
    let health = http
        .get(emulator.function_url(API, "/api/health"))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(health.status(), 200);

    let photo = case_file("c23-upload.jpg");
    let request = UploadRequest {
        file_name: "c23 upload.jpg".to_owned(),
        content_type: "image/jpeg".to_owned(),
        size: photo.len() as u64,
    };
    let response = http
        .post(emulator.function_url(API, "/api/uploads"))
        .json(&request)
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 201);
    let ticket: UploadTicket = response.json().await.expect("an upload ticket");
    assert!(ticket.key.starts_with("uploads/"), "{}", ticket.key);
    assert!(
        ticket.url.starts_with(&s3.server.endpoint()),
        "presigned for the store"
    );

    drain_events(&mut s3);
    // The signed headers, as the page sends them; the client sets the length itself.
    let mut put_request = http.put(&ticket.url).body(photo);
    for (name, value) in &ticket.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            put_request = put_request.header(name, value);
        }
    }
    let stored = put_request.send().await.expect("the store answers");
    assert_eq!(stored.status(), 200, "{:?}", stored.text().await);
    let event = s3.next_event().await;
    let report = emulator
        .invoke(
            PIXELATOR,
            &event_file(scratch.path(), "upload-event.json", &event),
        )
        .await
        .expect("the pixelator answers");
    assert_eq!(outcomes(&report), [pair(&ticket.key, "processed")]);

    let encoded_key: String = ticket
        .key
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect();
    let view: ImageView = http
        .get(emulator.function_url(API, &format!("/api/images/{encoded_key}")))
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("an image view");
    assert_eq!(view.status, ImageStatus::Done, "{view:?}");
    assert_eq!((view.width, view.height), (Some(64), Some(64)));
    assert_eq!(view.variants.len(), GRID_SIZES.len());
    let variant = http
        .get(&view.variants[0].url)
        .send()
        .await
        .expect("the store answers");
    assert_eq!(variant.status(), 200);
    assert_eq!(variant.headers()["content-type"], "image/jpeg");

    let page: ImagePage = http
        .get(emulator.function_url(API, "/api/images"))
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("a page of images");
    let listed: Vec<&str> = page.images.iter().map(|image| image.key.as_str()).collect();
    for key in [summer, multipart, "uploads/octet.png", ticket.key.as_str()] {
        assert!(listed.contains(&key), "{key} is not in {listed:?}");
    }

    drop(emulator);
    s3.server.shutdown().await;
}
