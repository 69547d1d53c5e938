//! The HTTP API over the embedded store, through real HTTP: upload tickets and
//! their presigned PUTs (C23), validation, safe names, the gallery's pages and
//! statuses, CORS, errors, config and health.

mod pipeline_support;

use std::time::Duration;

use pipeline_support::{CapturedLogs, SOURCE, TestStore, case_bytes, config_with, put_ticket};
use pixelator::config::Config;
use pixelator_shared::wire::{ImagePage, ImageStatus, ImageView};

fn json_request(api: &pipeline_support::TestApi, body: &str) -> reqwest::RequestBuilder {
    api.http
        .post(api.url("/api/uploads"))
        .header("content-type", "application/json")
        .body(body.to_owned())
}

#[tokio::test]
async fn c23_the_presigned_put_accepts_only_the_signed_type_and_length_in_time() {
    let mut store = TestStore::start(true).await;
    let api = store
        .api(config_with(&[("PIXELATOR_UPLOAD_URL_SECONDS", "2")]))
        .await;
    let scenario: serde_json::Value =
        serde_json::from_slice(&case_bytes("c23-presign-scenario.json")).unwrap();
    let bytes = case_bytes("c23-upload.jpg");
    let ticket = api
        .ticket("c23-upload.jpg", "image/jpeg", bytes.len())
        .await;
    let mut events = store.events.take().unwrap();

    // The refused attempts first, so none of them can hide behind a success.
    let send = |content_type: &str, body: Vec<u8>| {
        api.http
            .put(&ticket.url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = {
        let mut body = b"------x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c23-upload.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n------x--\r\n");
        body
    };
    let attempts = [
        (
            "form-data",
            send("multipart/form-data; boundary=----x", form)
                .await
                .unwrap(),
        ),
        (
            "browser-default",
            send("application/x-www-form-urlencoded", bytes.clone())
                .await
                .unwrap(),
        ),
        (
            "another length",
            send("image/jpeg", bytes[..bytes.len() - 1].to_vec())
                .await
                .unwrap(),
        ),
    ];
    for (name, response) in attempts {
        assert_eq!(response.status(), 403, "{name}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("<Code>SignatureDoesNotMatch</Code>"),
            "{name}: {body}"
        );
    }
    assert!(!store.exists(SOURCE, &ticket.key).await);
    assert!(events.try_recv().is_err(), "a refused upload made an event");

    // The matching upload: 200, one event, and five 64x64 variants from it.
    let status = put_ticket(&api.http, &ticket, bytes.clone()).await;
    assert_eq!(status, scenario["attempts"][0]["expect_status"]);
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(events.try_recv().is_err(), "one upload, one event");
    let report = store.pixelator().handle(event).await.unwrap();
    assert_eq!(report.records[0].key.as_deref(), Some(ticket.key.as_str()));
    let manifest = store.manifest(&ticket.key).await;
    assert_eq!(manifest.variants.len(), 5);
    assert_eq!(
        manifest.image.map(|image| (image.width, image.height)),
        Some((64, 64))
    );

    // After expiry (a 2 s lifetime here, 300 s by default), the URL is refused.
    let late = api
        .ticket("c23-upload.jpg", "image/jpeg", bytes.len())
        .await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let response = api
        .http
        .put(&late.url)
        .header("content-type", "image/jpeg")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(!store.exists(SOURCE, &late.key).await);
    assert!(
        events.try_recv().is_err(),
        "an expired upload made an event"
    );
}

#[tokio::test]
async fn a_refused_upload_is_logged_once_without_its_signature() {
    let store = TestStore::start(false).await;
    let api = store.api(Config::default()).await;
    let bytes = case_bytes("c23-upload.jpg");
    let ticket = api
        .ticket("c23-upload.jpg", "image/jpeg", bytes.len())
        .await;
    let logs = CapturedLogs::default();
    let status = {
        let _capture = logs.install();
        api.http
            .put(&ticket.url)
            .header("content-type", "image/png")
            .body(bytes)
            .send()
            .await
            .unwrap()
            .status()
    };

    assert_eq!(status, 403);
    let refusals: Vec<_> = logs
        .all_lines()
        .into_iter()
        .filter(|line| line["message"] == "S3 request refused")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    let line = &refusals[0];
    assert_eq!(
        (line["level"].as_str(), line["status"].as_u64()),
        (Some("INFO"), Some(403))
    );
    assert_eq!(line["method"], "PUT");
    let path = line["path"].as_str().unwrap();
    assert!(path.ends_with("/c23-upload.jpg"), "{path}");
    assert!(!path.contains('?') && !path.contains("Signature"), "{path}");
}

#[tokio::test]
async fn upload_requests_are_validated_with_stable_error_codes() {
    let store = TestStore::start(false).await;
    let api = store
        .api(config_with(&[("PIXELATOR_MAX_UPLOAD_BYTES", "1000")]))
        .await;

    let cases = [
        (
            r#"{"file_name":"a.jpg","content_type":"image/jpeg","size":1001}"#,
            413,
            "file_too_large",
        ),
        (
            r#"{"file_name":"a.jpg","content_type":"image/jpeg","size":0}"#,
            400,
            "empty_file",
        ),
        (
            r#"{"file_name":"a.heic","content_type":"image/heic","size":10}"#,
            415,
            "unsupported_type",
        ),
        (
            r#"{"file_name":"a.txt","content_type":"text/plain","size":10}"#,
            415,
            "unsupported_type",
        ),
        (
            r#"{"file_name":"a.jpg","content_type":"image/jpeg"}"#,
            400,
            "invalid_request",
        ),
        (
            r#"{"file_name":"a.jpg","content_type":"image/jpeg","size":-1}"#,
            400,
            "invalid_request",
        ),
        ("not json", 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let response = json_request(&api, body).send().await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{body}"
        );
        let error: pixelator_shared::wire::ApiError = response.json().await.unwrap();
        assert_eq!(error.code, code, "{body}");
        assert!(!error.message.is_empty());
    }

    let heic = json_request(
        &api,
        r#"{"file_name":"a.heic","content_type":"image/heic","size":10}"#,
    )
    .send()
    .await
    .unwrap();
    let error: pixelator_shared::wire::ApiError = heic.json().await.unwrap();
    assert!(error.message.contains("HEIC"), "{}", error.message);

    let huge = format!(
        r#"{{"file_name":"{}","content_type":"image/jpeg","size":1}}"#,
        "x".repeat(64 * 1024)
    );
    let response = json_request(&api, &huge).send().await.unwrap();
    assert_eq!(
        response.status(),
        413,
        "bodies over the API's limit are refused"
    );
}

#[tokio::test]
async fn the_server_chooses_safe_keys_under_the_upload_prefix() {
    let store = TestStore::start(false).await;
    let api = store.api(Config::default()).await;
    let bytes = case_bytes("c23-upload.jpg");

    let names = [
        ("../../etc/passwd", "passwd.jpg"),
        ("..\\..\\boot.ini.jpg", "boot.ini.jpg"),
        ("a\u{0}b\r\nc.jpg", "abc.jpg"),
        ("evil\u{202E}gpj.exe", "evilgpj.exe.jpg"),
        ("pixelated-8x8-cat.jpg", "upload-pixelated-8x8-cat.jpg"),
        ("manifests/x.json", "x.json.jpg"),
        ("", "image.jpg"),
        ("summer trip (1).jpg", "summer trip (1).jpg"),
    ];
    let mut keys = Vec::new();
    for (raw, safe) in names {
        let key = api.upload(raw, "image/jpeg", bytes.clone()).await;
        let (prefix, rest) = key.split_at("uploads/".len());
        assert_eq!(prefix, "uploads/");
        let (id, name) = rest.split_once('/').unwrap();
        assert_eq!(id.len(), 26, "{key}");
        assert_eq!(name, safe, "{raw:?}");
        keys.push(key);
    }
    let long = api
        .upload(&format!("{}.jpg", "ü".repeat(500)), "image/jpeg", bytes)
        .await;
    assert!(long.len() <= "uploads/".len() + 27 + 100, "{long}");

    let stored: Vec<String> = store
        .list(SOURCE)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for key in &keys {
        assert!(stored.contains(key), "{key} not stored as named");
    }
}

#[tokio::test]
async fn the_gallery_pages_newest_first_with_a_cursor() {
    let store = TestStore::start(false).await;
    let api = store.api(Config::default()).await;
    let mut uploaded = Vec::new();
    for index in 0..5 {
        let key = api
            .upload(
                &format!("photo-{index}.jpg"),
                "image/jpeg",
                case_bytes("c23-upload.jpg"),
            )
            .await;
        uploaded.push(key);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    uploaded.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/images?limit=2&cursor={cursor}"),
            None => "/api/images?limit=2".to_owned(),
        };
        let (status, body) = api.get_json(&path).await;
        assert_eq!(status, 200);
        let page: ImagePage = serde_json::from_value(body).unwrap();
        pages += 1;
        assert!(page.images.len() <= 2);
        seen.extend(page.images.iter().map(|image| image.key.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, uploaded, "newest first, each once");
    assert_eq!(pages, 3);

    let (status, body) = api.get_json("/api/images").await;
    assert_eq!(status, 200);
    let page: ImagePage = serde_json::from_value(body).unwrap();
    assert_eq!(page.images.len(), 5);
    assert_eq!(page.next_cursor, None);

    for (path, code) in [
        ("/api/images?cursor=zz", "invalid_cursor"),
        ("/api/images?cursor=6d616e69666573747320", "invalid_cursor"),
        ("/api/images?limit=0", "invalid_limit"),
        ("/api/images?limit=101", "invalid_limit"),
        ("/api/images?limit=many", "invalid_request"),
    ] {
        let (status, body) = api.get_json(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["code"], code, "{path}");
    }
}

#[tokio::test]
async fn one_image_is_processing_until_its_manifest_then_done_with_working_urls() {
    let store = TestStore::start(false).await;
    let api = store.api(Config::default()).await;
    let bytes = case_bytes("c01-summer-trip.jpg");
    let key = api
        .upload("summer trip (1).jpg", "image/jpeg", bytes.clone())
        .await;
    let encoded = key.replace('/', "%2F").replace(' ', "%20");

    let (status, body) = api.get_json(&format!("/api/images/{encoded}")).await;
    assert_eq!(status, 200);
    let view: ImageView = serde_json::from_value(body).unwrap();
    assert_eq!(view.status, ImageStatus::Processing);
    assert_eq!(view.name, "summer trip (1)");
    assert!(view.variants.is_empty());

    let event = store.created_event(&key).await;
    store.pixelator().handle(event).await.unwrap();

    // The same image by the rest of the path, unencoded but for the spaces.
    let (status, body) = api
        .get_json(&format!("/api/images/{}", key.replace(' ', "%20")))
        .await;
    assert_eq!(status, 200);
    let view: ImageView = serde_json::from_value(body).unwrap();
    assert_eq!(view.status, ImageStatus::Done);
    assert_eq!((view.width, view.height), (Some(120), Some(80)));
    assert_eq!(view.variants.len(), 5);
    assert_eq!(
        view.variants
            .iter()
            .map(|variant| variant.size)
            .collect::<Vec<_>>(),
        [8, 16, 32, 48, 64]
    );

    let original = api
        .http
        .get(view.original_url.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(original.status(), 200);
    assert_eq!(original.bytes().await.unwrap().as_ref(), bytes.as_slice());
    for variant in &view.variants {
        let response = api.http.get(&variant.url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", variant.key);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(response.bytes().await.unwrap().len() as u64, variant.bytes);
    }

    // Polling again gives the same URLs, so the browser's cache keeps working.
    let (_, again) = api.get_json(&format!("/api/images/{encoded}")).await;
    let again: ImageView = serde_json::from_value(again).unwrap();
    assert_eq!(again.original_url, view.original_url);
    assert_eq!(again.variants, view.variants);

    for missing in [
        "/api/images/uploads%2Fnope.jpg",
        "/api/images/manifests%2Fuploads%2Fx.json",
        "/api/images/elsewhere.jpg",
        "/api/images/uploads/pixelated-8x8-summer.jpg",
    ] {
        let (status, body) = api.get_json(missing).await;
        assert_eq!(status, 404, "{missing}");
        assert_eq!(body["code"], "not_found", "{missing}");
    }
}

#[tokio::test]
async fn a_corrupt_upload_shows_as_failed_with_its_reason() {
    let store = TestStore::start(false).await;
    let api = store.api(Config::default()).await;
    let bytes = case_bytes("c08-third-corrupt.png");
    let key = api.upload("broken.png", "image/png", bytes.clone()).await;
    let event = store.created_event(&key).await;
    store.pixelator().handle(event).await.unwrap();

    let (_, body) = api.get_json("/api/images").await;
    let page: ImagePage = serde_json::from_value(body).unwrap();
    assert_eq!(page.images.len(), 1);
    assert_eq!(page.images[0].status, ImageStatus::Failed);
    assert!(
        page.images[0]
            .reason
            .as_deref()
            .is_some_and(|reason| !reason.is_empty())
    );
    assert!(page.images[0].variants.is_empty());
}

#[tokio::test]
async fn cors_admits_the_configured_origin_only() {
    let store = TestStore::start(false).await;
    let api = store
        .api(config_with(&[(
            "PIXELATOR_WEB_ORIGINS",
            "https://pixelator.example.com",
        )]))
        .await;

    let preflight = |origin: &'static str| {
        api.http
            .request(reqwest::Method::OPTIONS, api.url("/api/uploads"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://pixelator.example.com").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://pixelator.example.com"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");

    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let get = api
        .http
        .get(api.url("/api/config"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(get.headers().get("access-control-allow-origin").is_none());
    let get = api
        .http
        .get(api.url("/api/config"))
        .header("origin", "https://pixelator.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://pixelator.example.com"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let store = TestStore::start(false).await;
    let api = store.api(Config::default()).await;

    let (status, body) = api.get_json("/api/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");

    let response = api
        .http
        .delete(api.url("/api/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn config_tells_the_page_the_grids_and_limits() {
    let store = TestStore::start(false).await;
    let api = store
        .api(config_with(&[
            ("PIXELATOR_GRID_SIZES", "4,12"),
            ("PIXELATOR_GRID_MODE", "square"),
        ]))
        .await;

    let (status, body) = api.get_json("/api/config").await;

    assert_eq!(status, 200);
    let config: pixelator_shared::wire::ClientConfig = serde_json::from_value(body).unwrap();
    assert_eq!(config.grid_sizes, [4, 12]);
    assert_eq!(config.grid_mode, pixelator_shared::GridMode::Square);
    assert!(config.accepted_types.contains(&"image/jpeg".to_owned()));
    assert_eq!(config.max_upload_bytes, Config::default().max_upload_bytes);
}

#[tokio::test]
async fn health_says_whether_both_buckets_answer() {
    let store = TestStore::start(false).await;
    let api = store.api(Config::default()).await;
    let (status, body) = api.get_json("/api/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");

    let other = store
        .api(config_with(&[(
            "PIXELATOR_PROCESSED_BUCKET",
            "no-such-bucket",
        )]))
        .await;
    let (status, body) = other.get_json("/api/health").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "unavailable");

    store.store.shutdown().await;
    let (status, _) = api.get_json("/api/health").await;
    assert_eq!(status, 503);
}
