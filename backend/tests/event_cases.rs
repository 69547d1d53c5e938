//! The event cases: each puts its input into the embedded store with the real S3
//! client, hands the pixelator the case's real event JSON, and checks the
//! behaviour the case describes in the processed bucket.

mod pipeline_support;

use pipeline_support::{
    CapturedLogs, PROCESSED, SOURCE, TestStore, assert_probe, case_bytes, case_event,
};
use pixelator::pixelator::event::created_event;
use pixelator::pixelator::{Outcome, SkipReason};
use pixelator_shared::GridShape;
use pixelator_shared::layout::{manifest_key, variant_key};
use pixelator_shared::wire::{ImageFormat, ManifestStatus};

const SIZES: [u32; 5] = [8, 16, 32, 48, 64];

/// Checks the five variants of `source` and returns them decoded, smallest grid
/// first: each `width x height`, in `format`, with its Content-Type and the
/// source's ETag in its metadata.
async fn variants(
    store: &TestStore,
    source: &str,
    format: ImageFormat,
    width: u32,
    height: u32,
) -> Vec<image::RgbaImage> {
    let manifest = store.manifest(source).await;
    assert_eq!(manifest.status, ManifestStatus::Done, "{manifest:?}");
    assert_eq!(manifest.variants.len(), 5);
    let timings = &manifest.timings;
    assert!(
        timings.total_ms > 0.0 && timings.total_ms >= timings.decode_ms + timings.encode_ms,
        "{timings:?}"
    );
    let mut decoded = Vec::new();
    for (size, record) in SIZES.iter().zip(&manifest.variants) {
        let key = variant_key(source, GridShape::new(*size, *size), format);
        assert_eq!(record.key, key);
        assert_eq!(record.size, *size);
        let head = store
            .s3
            .head_object()
            .bucket(PROCESSED)
            .key(&key)
            .send()
            .await
            .expect("variant");
        assert_eq!(head.content_type(), Some(format.mime_type()), "{key}");
        let etag = head
            .metadata()
            .and_then(|metadata| metadata.get("source-etag"));
        assert_eq!(etag, Some(&manifest.source.etag), "{key}");
        let bytes = store.get(PROCESSED, &key).await;
        assert_eq!(bytes.len() as u64, record.bytes);
        let image = pipeline_support::decode(&bytes);
        assert_eq!(image.dimensions(), (width, height), "{key}");
        decoded.push(image);
    }
    decoded
}

fn outcomes(report: &pixelator::pixelator::InvocationReport) -> Vec<Outcome> {
    report
        .records
        .iter()
        .map(|record| record.outcome.clone())
        .collect()
}

#[tokio::test]
async fn c01_event_keys_are_decoded_with_plus_as_space_and_the_real_object_is_read() {
    let store = TestStore::start(false).await;
    let real_key = "uploads/summer trip (1).jpg";
    store
        .put(
            SOURCE,
            real_key,
            case_bytes("c01-summer-trip.jpg"),
            "image/jpeg",
        )
        .await;
    // A decoy under the encoded spelling: reading it would give the wrong picture.
    store
        .put(
            SOURCE,
            "uploads/summer+trip+%281%29.jpg",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;

    let report = store
        .pixelator()
        .handle(case_event("c01-event-key-spaces.json"))
        .await
        .unwrap();

    assert_eq!(outcomes(&report), [Outcome::Processed]);
    assert_eq!(report.records[0].key.as_deref(), Some(real_key));
    for variant in variants(&store, real_key, ImageFormat::Jpeg, 120, 80).await {
        assert_probe(&variant, 15, 10, [255, 0, 0], 12, "red quadrant");
        assert_probe(&variant, 105, 70, [255, 255, 0], 12, "yellow quadrant");
    }
    let written: Vec<String> = store
        .list(PROCESSED)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(written.len(), 6, "{written:?}");
    assert!(
        written
            .iter()
            .all(|key| !key.contains('+') && !key.contains("%28")),
        "{written:?}"
    );
    assert!(written.contains(&"uploads/pixelated-8x8-summer trip (1).jpg".to_owned()));
    let manifest = store.manifest(real_key).await;
    assert_eq!(manifest.source.key, real_key);
    assert_eq!(
        pixelator_shared::layout::display_name(&manifest.source.key),
        "summer trip (1)"
    );
}

#[tokio::test]
async fn c03_events_from_the_output_bucket_are_skipped_without_reading_or_writing() {
    let store = TestStore::start(false).await;
    store
        .put(
            PROCESSED,
            "summer-trip/pixelated-16x16.png",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;
    let before = (store.list(SOURCE).await, store.list(PROCESSED).await);
    let logs = CapturedLogs::default();

    let report = {
        let _capture = logs.install();
        store
            .pixelator()
            .handle(case_event("c03-event-from-output-bucket.json"))
            .await
            .unwrap()
    };

    assert_eq!(
        outcomes(&report),
        [Outcome::Skipped {
            reason: SkipReason::OutputBucket
        }]
    );
    assert_eq!(
        (store.list(SOURCE).await, store.list(PROCESSED).await),
        before
    );
    let lines = logs.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "output_bucket");
    assert_eq!(lines[0]["bucket"], PROCESSED);
    assert_eq!(lines[0]["key"], "summer-trip/pixelated-16x16.png");
}

#[tokio::test]
async fn c03_keys_named_like_output_are_skipped_even_in_the_source_bucket() {
    let store = TestStore::start(false).await;
    let key = "uploads/x/pixelated-16x16-photo.png";
    store
        .put(SOURCE, key, case_bytes("c08-first.png"), "image/png")
        .await;
    let event = created_event(SOURCE, key, 148, "etag", "2025-01-15T10:00:00.000Z");

    let report = store.pixelator().handle(event).await.unwrap();

    assert_eq!(
        outcomes(&report),
        [Outcome::Skipped {
            reason: SkipReason::OutputKey
        }]
    );
    assert!(store.list(PROCESSED).await.is_empty());
}

#[tokio::test]
async fn c04_the_s3_test_event_is_accepted_and_nothing_happens() {
    let store = TestStore::start(false).await;
    let logs = CapturedLogs::default();

    let report = {
        let _capture = logs.install();
        store
            .pixelator()
            .handle(case_event("c04-event-s3-testevent.json"))
            .await
            .unwrap()
    };

    assert_eq!(report.notification, "test_event");
    assert!(report.records.is_empty());
    assert!(store.list(SOURCE).await.is_empty());
    assert!(store.list(PROCESSED).await.is_empty());
    let lines = logs.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "test_event");
    assert_eq!(lines[0]["level"], "INFO");
}

#[tokio::test]
async fn c06_removal_events_are_ignored_without_reading_the_gone_object() {
    let store = TestStore::start(false).await;

    let report = store
        .pixelator()
        .handle(case_event("c06-event-object-removed.json"))
        .await
        .unwrap();

    assert_eq!(
        outcomes(&report),
        [Outcome::Skipped {
            reason: SkipReason::NotACreation
        }]
    );
    assert!(store.list(PROCESSED).await.is_empty());
}

#[tokio::test]
async fn c07_a_multipart_upload_is_processed_like_a_put() {
    let store = TestStore::start(false).await;
    let key = "uploads/multipart.jpg";
    let upload = store
        .s3
        .create_multipart_upload()
        .bucket(SOURCE)
        .key(key)
        .content_type("image/jpeg")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let part = store
        .s3
        .upload_part()
        .bucket(SOURCE)
        .key(key)
        .upload_id(upload_id)
        .part_number(1)
        .body(case_bytes("c07-multipart.jpg").into())
        .send()
        .await
        .unwrap();
    let completed = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    let done = store
        .s3
        .complete_multipart_upload()
        .bucket(SOURCE)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(completed)
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().trim_matches('"').ends_with("-1"));

    let report = store
        .pixelator()
        .handle(case_event("c07-event-multipart.json"))
        .await
        .unwrap();

    assert_eq!(outcomes(&report), [Outcome::Processed]);
    let variants = variants(&store, key, ImageFormat::Jpeg, 160, 120).await;
    assert_probe(&variants[4], 10, 7, [18, 128, 14], 12, "64x64 top left");
    assert_probe(
        &variants[4],
        150,
        112,
        [241, 128, 239],
        12,
        "64x64 bottom right",
    );
}

#[tokio::test]
async fn c08_every_record_is_handled_and_a_corrupt_one_stops_nothing() {
    let store = TestStore::start(false).await;
    store
        .put(
            SOURCE,
            "uploads/first.png",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;
    store
        .put(
            SOURCE,
            "uploads/third-corrupt.png",
            case_bytes("c08-third-corrupt.png"),
            "image/png",
        )
        .await;
    store
        .put(
            SOURCE,
            "uploads/second.jpg",
            case_bytes("c08-second.jpg"),
            "image/jpeg",
        )
        .await;
    let logs = CapturedLogs::default();

    let report = {
        let _capture = logs.install();
        store
            .pixelator()
            .handle(case_event("c08-event-multi-record.json"))
            .await
            .unwrap()
    };

    let outcomes = outcomes(&report);
    assert_eq!(outcomes[0], Outcome::Processed);
    assert!(
        matches!(&outcomes[1], Outcome::Failed { code, .. } if code == "corrupt"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2], Outcome::Processed);

    for variant in variants(&store, "uploads/first.png", ImageFormat::Png, 64, 64).await {
        assert_probe(&variant, 4, 4, [0, 0, 255], 12, "first.png blue quadrant");
    }
    for variant in variants(&store, "uploads/second.jpg", ImageFormat::Jpeg, 64, 48).await {
        assert_probe(&variant, 4, 3, [0, 255, 0], 12, "second.jpg green quadrant");
        assert_probe(&variant, 60, 3, [0, 0, 0], 12, "second.jpg black quadrant");
    }

    // The corrupt upload: a failed manifest with a readable reason, no variant.
    let failed = store.manifest("uploads/third-corrupt.png").await;
    assert_eq!(failed.status, ManifestStatus::Failed);
    assert_eq!(failed.failure.as_deref(), Some("corrupt"));
    assert!(
        failed
            .reason
            .as_deref()
            .is_some_and(|reason| !reason.is_empty())
    );
    let written = store.list(PROCESSED).await;
    assert!(
        !written
            .iter()
            .any(|(key, _)| key.contains("pixelated-") && key.contains("third-corrupt")),
        "{written:?}"
    );
    assert!(written.iter().all(|(_, size)| *size > 0), "{written:?}");
    assert_eq!(written.len(), 5 + 5 + 3);

    // One line per record, the corrupt one at error level with its key.
    let lines = logs.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1]["level"], "ERROR");
    assert_eq!(lines[1]["key"], "uploads/third-corrupt.png");
    assert_eq!(lines[1]["bucket"], SOURCE);
    assert_eq!(lines[1]["outcome"], "corrupt");
    for line in [&lines[0], &lines[2]] {
        assert_eq!(line["outcome"], "processed");
        for field in [
            "bytes",
            "width",
            "height",
            "format",
            "fetch_ms",
            "decode_ms",
            "encode_ms",
            "store_ms",
            "total_ms",
        ] {
            assert!(line.get(field).is_some(), "{field} missing in {line}");
        }
    }
}

#[tokio::test]
async fn c22_variants_get_the_content_type_of_their_bytes_whatever_the_upload_said() {
    let store = TestStore::start(false).await;
    let key = "uploads/octet.png";
    let bytes = case_bytes("c22-octet-stream.png");
    store
        .put(SOURCE, key, bytes, "application/octet-stream")
        .await;
    let event = store.created_event(key).await;

    let report = store.pixelator().handle(event).await.unwrap();

    assert_eq!(outcomes(&report), [Outcome::Processed]);
    for variant in variants(&store, key, ImageFormat::Png, 96, 64).await {
        assert_probe(&variant, 6, 4, [0, 255, 0], 12, "green quadrant");
        assert_probe(&variant, 90, 4, [255, 0, 0], 12, "red quadrant");
    }
    let manifest_type = store.content_type(PROCESSED, &manifest_key(key)).await;
    assert_eq!(manifest_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn a_second_delivery_of_the_same_event_is_skipped_by_its_manifest() {
    let store = TestStore::start(false).await;
    store
        .put(
            SOURCE,
            "uploads/first.png",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;
    store
        .put(
            SOURCE,
            "uploads/second.jpg",
            case_bytes("c08-second.jpg"),
            "image/jpeg",
        )
        .await;
    store
        .put(
            SOURCE,
            "uploads/third-corrupt.png",
            case_bytes("c08-third-corrupt.png"),
            "image/png",
        )
        .await;
    let pixelator = store.pixelator();
    pixelator
        .handle(case_event("c08-event-multi-record.json"))
        .await
        .unwrap();
    let first_run = store.list(PROCESSED).await;
    let manifest = store.manifest("uploads/first.png").await;

    let again = pixelator
        .handle(case_event("c08-event-multi-record.json"))
        .await
        .unwrap();

    let skipped = Outcome::Skipped {
        reason: SkipReason::AlreadyProcessed,
    };
    assert_eq!(
        outcomes(&again),
        [skipped.clone(), skipped.clone(), skipped]
    );
    assert_eq!(store.list(PROCESSED).await, first_run);
    assert_eq!(store.manifest("uploads/first.png").await, manifest);
}

#[tokio::test]
async fn an_overwritten_source_is_processed_again_for_its_new_etag() {
    let store = TestStore::start(false).await;
    let key = "uploads/photo.png";
    store
        .put(SOURCE, key, case_bytes("c08-first.png"), "image/png")
        .await;
    let pixelator = store.pixelator();
    let event = |etag: &str| created_event(SOURCE, key, 148, etag, "2025-01-15T10:00:00.000Z");
    let head = store
        .s3
        .head_object()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await
        .unwrap();
    pixelator
        .handle(event(head.e_tag().unwrap()))
        .await
        .unwrap();

    store
        .put(SOURCE, key, case_bytes("c22-octet-stream.png"), "image/png")
        .await;
    let head = store
        .s3
        .head_object()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await
        .unwrap();
    let report = pixelator
        .handle(event(head.e_tag().unwrap()))
        .await
        .unwrap();

    assert_eq!(outcomes(&report), [Outcome::Processed]);
    let manifest = store.manifest(key).await;
    assert_eq!(
        manifest.source.etag,
        head.e_tag().unwrap().trim_matches('"')
    );
    assert_eq!(
        manifest.image.map(|image| (image.width, image.height)),
        Some((96, 64))
    );
}

#[tokio::test]
async fn zero_byte_uploads_get_a_failed_manifest_without_being_read() {
    let store = TestStore::start(false).await;
    let key = "uploads/empty.jpg";
    store.put(SOURCE, key, Vec::new(), "image/jpeg").await;
    let event = created_event(
        SOURCE,
        key,
        0,
        "d41d8cd98f00b204e9800998ecf8427e",
        "2025-01-15T10:00:00.000Z",
    );

    let report = store.pixelator().handle(event).await.unwrap();

    assert!(
        matches!(&report.records[0].outcome, Outcome::Failed { code, .. } if code == "empty"),
        "{report:?}"
    );
    let manifest = store.manifest(key).await;
    assert_eq!(manifest.status, ManifestStatus::Failed);
    assert!(manifest.variants.is_empty());
    assert_eq!(store.list(PROCESSED).await.len(), 1);
}

#[tokio::test]
async fn events_for_objects_deleted_since_are_skipped() {
    let store = TestStore::start(false).await;
    let event = created_event(
        SOURCE,
        "uploads/gone.jpg",
        10,
        "abc",
        "2025-01-15T10:00:00.000Z",
    );

    let report = store.pixelator().handle(event).await.unwrap();

    assert_eq!(
        outcomes(&report),
        [Outcome::Skipped {
            reason: SkipReason::Vanished
        }]
    );
    assert!(store.list(PROCESSED).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_store_fails_the_invocation_so_it_is_retried() {
    let store = TestStore::start(false).await;
    let endpoint = store.store.endpoint();
    store.store.shutdown().await;
    let s3 = pixelator::s3::client_for_endpoint(
        &endpoint,
        pipeline_support::REGION,
        &pipeline_support::keys(),
    );
    let pixelator = pixelator::pixelator::Pixelator::new(
        s3,
        pixelator::pixelator::PixelatorSettings::from_config(&pixelator::config::Config::default()),
    );

    let error = pixelator
        .handle(case_event("c01-event-key-spaces.json"))
        .await
        .unwrap_err();

    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn records_that_cannot_be_read_are_skipped_and_the_others_handled() {
    let store = TestStore::start(false).await;
    store
        .put(
            SOURCE,
            "uploads/first.png",
            case_bytes("c08-first.png"),
            "image/png",
        )
        .await;
    let mut event = case_event("c08-event-multi-record.json");
    let records = event["Records"].as_array_mut().unwrap();
    records.truncate(1);
    records.insert(
        0,
        serde_json::json!({"eventName": "ObjectCreated:Put", "s3": "garbage"}),
    );
    records.push(serde_json::json!({
        "eventName": "ObjectCreated:Put",
        "eventTime": "2025-01-15T10:00:00.000Z",
        "userIdentity": {}, "requestParameters": {},
        "s3": {"bucket": {"name": SOURCE}, "object": {"key": "uploads/bad%zz", "size": 3}}
    }));

    let report = store.pixelator().handle(event).await.unwrap();

    assert_eq!(
        outcomes(&report),
        [
            Outcome::Skipped {
                reason: SkipReason::UnreadableRecord
            },
            Outcome::Processed,
            Outcome::Skipped {
                reason: SkipReason::UndecodableKey
            },
        ]
    );
}
