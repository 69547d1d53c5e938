//! `pixelator serve` in-process: uploads through the API's presigned URLs reach
//! the pixelator through the store's own events; the web app and the API share
//! one port; a reconciliation pass picks up sources whose events were lost.

mod pipeline_support;

use std::path::Path;
use std::time::{Duration, Instant};

use pipeline_support::{case_bytes, config_with, list_all, put_ticket, wait_for};
use pixelator::embedded::{self, EmbeddedS3Config};
use pixelator::serve::{self, Serving};
use pixelator_shared::wire::{ImageStatus, ImageView, UploadTicket};

/// Starts the local pipeline on free ports over `data`, with `web` as the web
/// app's folder.
async fn start(data: &Path, web: &Path, extra: &[(&str, &str)]) -> Serving {
    let data = data.to_str().expect("a UTF-8 temporary path");
    let web = web.to_str().expect("a UTF-8 temporary path");
    let mut vars = vec![
        ("PIXELATOR_PORT", "0"),
        ("PIXELATOR_S3_PORT", "0"),
        ("PIXELATOR_DATA_DIR", data),
        ("PIXELATOR_WEB_DIR", web),
    ];
    vars.extend_from_slice(extra);
    serve::start(config_with(&vars))
        .await
        .expect("serve starts")
}

async fn ticket(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    content_type: &str,
    size: usize,
) -> UploadTicket {
    let response = http
        .post(format!("{base}api/uploads"))
        .json(&serde_json::json!({"file_name": name, "content_type": content_type, "size": size}))
        .send()
        .await
        .expect("POST /api/uploads");
    assert_eq!(response.status(), 201);
    response.json().await.expect("a ticket")
}

async fn image(http: &reqwest::Client, base: &str, key: &str) -> ImageView {
    let path = key
        .replace('%', "%25")
        .replace('/', "%2F")
        .replace(' ', "%20");
    let response = http
        .get(format!("{base}api/images/{path}"))
        .send()
        .await
        .expect("GET /api/images/{key}");
    assert_eq!(response.status(), 200, "{key}");
    response.json().await.expect("an image view")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bench_photo_uploaded_through_the_api_gets_its_five_variants() {
    let bench = pipeline_support::bench_images_dir();
    let mut photos: Vec<_> = std::fs::read_dir(&bench)
        .unwrap_or_else(|error| {
            panic!(
                "the bench photos are missing at {} ({error}); set PIXELATOR_BENCH_IMAGES",
                bench.display()
            )
        })
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            pixelator_shared::wire::ImageFormat::from_extension(extension).is_some()
        })
        .collect();
    photos.sort();
    assert!(!photos.is_empty(), "no photos in {}", bench.display());

    let data = tempfile::tempdir().unwrap();
    let serving = start(&data.path().join("data"), &data.path().join("dist"), &[]).await;
    let base = serving.web_url();
    let http = reqwest::Client::new();

    let mut uploaded = Vec::new();
    for photo in &photos {
        let bytes = std::fs::read(photo).unwrap();
        let name = photo.file_name().unwrap().to_str().unwrap();
        let extension = photo.extension().unwrap().to_str().unwrap();
        let format = pixelator_shared::wire::ImageFormat::from_extension(extension).unwrap();
        let ticket = ticket(&http, &base, name, format.mime_type(), bytes.len()).await;
        assert_eq!(put_ticket(&http, &ticket, bytes).await, 200, "{name}");
        uploaded.push((name.to_owned(), ticket.key));
    }

    let started = Instant::now();
    for (name, key) in &uploaded {
        let view = wait_for(Duration::from_secs(600), name, || async {
            let view = image(&http, &base, key).await;
            (view.status != ImageStatus::Processing).then_some(view)
        })
        .await;
        assert_eq!(view.status, ImageStatus::Done, "{name}: {:?}", view.reason);
        assert_eq!(view.variants.len(), 5, "{name}");
        for variant in &view.variants {
            let response = http.get(&variant.url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{}", variant.key);
            assert_eq!(response.bytes().await.unwrap().len() as u64, variant.bytes);
        }
        println!(
            "{name}: done after {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    serving.shutdown().await;
}

#[tokio::test]
async fn the_web_app_and_the_api_share_one_port() {
    let data = tempfile::tempdir().unwrap();
    let web = data.path().join("dist");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>Pixelator</title>",
    )
    .unwrap();
    std::fs::write(web.join("app.js"), "console.log('hi')").unwrap();
    let serving = start(&data.path().join("data"), &web, &[]).await;
    let base = serving.web_url();
    let http = reqwest::Client::new();

    let index = http.get(&base).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(
        index
            .text()
            .await
            .unwrap()
            .contains("<title>Pixelator</title>")
    );
    let script = http.get(format!("{base}app.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    let deep = http
        .get(format!("{base}gallery/some/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 200, "client-side routes get the app");
    let api = http.get(format!("{base}api/nothing")).send().await.unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(
        api.json::<serde_json::Value>().await.unwrap()["code"],
        "not_found"
    );
    let health = http.get(format!("{base}api/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let summary = serving.summary();
    assert!(summary.contains(&base), "{summary}");
    assert!(summary.contains(&serving.s3_endpoint()), "{summary}");
    assert!(summary.contains("pixelator-source") && summary.contains("pixelator-processed"));
    assert!(
        summary.contains(&data.path().join("data").display().to_string()),
        "{summary}"
    );
    serving.shutdown().await;
}

#[tokio::test]
async fn without_a_built_web_app_the_page_says_how_to_build_it() {
    let data = tempfile::tempdir().unwrap();
    let serving = start(&data.path().join("data"), &data.path().join("missing"), &[]).await;
    let base = serving.web_url();

    let page = reqwest::get(&base).await.unwrap();
    assert_eq!(page.status(), 503);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("not built") && text.contains("trunk build"),
        "{text}"
    );
    assert!(serving.summary().contains("not built"));
    let config = reqwest::get(format!("{base}api/config")).await.unwrap();
    assert_eq!(config.status(), 200);
    serving.shutdown().await;
}

#[tokio::test]
async fn the_store_on_its_own_port_admits_the_page_by_cors() {
    let data = tempfile::tempdir().unwrap();
    let serving = start(&data.path().join("data"), &data.path().join("dist"), &[]).await;
    let origin = serving.web_url().trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();

    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/pixelator-source/uploads/x.jpg", serving.s3_endpoint()),
        )
        .header("origin", &origin)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();

    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        origin.as_str()
    );
    serving.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_whose_events_were_lost_are_processed_after_the_next_start() {
    let data = tempfile::tempdir().unwrap();
    let store_dir = data.path().join("data");
    let web = data.path().join("dist");

    // Write two sources while no pipeline listens: their events go nowhere.
    let keys = pipeline_support::keys();
    let store = embedded::start(EmbeddedS3Config {
        data_dir: store_dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        access_key: keys.access_key.clone(),
        secret_key: keys.secret_key.clone(),
        region: "us-east-1".to_owned(),
        buckets: vec![
            "pixelator-source".to_owned(),
            "pixelator-processed".to_owned(),
        ],
        cors_origins: Vec::new(),
        notifications: Vec::new(),
    })
    .await
    .unwrap();
    let s3 = pixelator::s3::client_for_endpoint(&store.endpoint(), "us-east-1", &keys);
    for (key, file) in [
        ("uploads/a/first.png", "c08-first.png"),
        ("uploads/b/second.jpg", "c08-second.jpg"),
    ] {
        s3.put_object()
            .bucket("pixelator-source")
            .key(key)
            .body(case_bytes(file).into())
            .send()
            .await
            .unwrap();
    }
    store.shutdown().await;

    let serving = start(
        &store_dir,
        &web,
        &[
            ("PIXELATOR_LOCAL_ACCESS_KEY", &keys.access_key),
            ("PIXELATOR_LOCAL_SECRET_KEY", &keys.secret_key),
        ],
    )
    .await;
    let s3 = pixelator::s3::client_for_endpoint(&serving.s3_endpoint(), "us-east-1", &keys);
    let processed = wait_for(Duration::from_secs(60), "both manifests", || async {
        let keys = list_all(&s3, "pixelator-processed").await;
        let manifests = keys
            .iter()
            .filter(|(key, _)| key.starts_with("manifests/"))
            .count();
        (manifests == 2).then_some(keys)
    })
    .await;
    assert_eq!(processed.len(), 12, "{processed:?}");
    serving.shutdown().await;
}

#[tokio::test]
async fn a_pipeline_exposed_beyond_loopback_needs_its_own_secret() {
    let data = tempfile::tempdir().unwrap();
    let config = config_with(&[
        ("PIXELATOR_BIND", "0.0.0.0"),
        ("PIXELATOR_PORT", "0"),
        ("PIXELATOR_S3_PORT", "0"),
        ("PIXELATOR_DATA_DIR", data.path().to_str().unwrap()),
    ]);

    let error = serve::start(config).await.unwrap_err();

    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("PIXELATOR_LOCAL_SECRET_KEY"),
        "{error}"
    );
}
