//! A load run, on demand: 100 concurrent presigned uploads of a 2 MP photo to a
//! real `pixelator serve` process, reporting errors, the time until the last
//! manifest, and the process's peak memory.
//!
//! ```text
//! cargo test -p pixelator --test load -- --ignored --nocapture
//! ```
//!
//! `PIXELATOR_LOAD_UPLOADS` changes the number of uploads, `PIXELATOR_LOAD_BINARY`
//! runs another build of `pixelator` (a release build, say), and
//! `PIXELATOR_CONCURRENCY` and `MALLOC_ARENA_MAX` are passed on to it.

mod pipeline_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pipeline_support::process::ServeProcess;
use pipeline_support::{PROCESSED, try_put_ticket};
use pixelator_shared::layout::MANIFEST_PREFIX;
use pixelator_shared::wire::{Manifest, ManifestStatus, UploadTicket};

const PHOTO: &str = "jpeg-medium-portrait-1800x1200-orient6.jpg";

async fn manifest_keys(s3: &aws_sdk_s3::Client) -> Vec<String> {
    pipeline_support::list_all(s3, PROCESSED)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with(MANIFEST_PREFIX))
        .collect()
}

/// One upload as a browser makes it: a ticket from the API, then the PUT.
async fn upload(http: reqwest::Client, web: String, bytes: Vec<u8>) -> Result<Duration, String> {
    let started = Instant::now();
    let request =
        serde_json::json!({"file_name": PHOTO, "content_type": "image/jpeg", "size": bytes.len()});
    let response = http
        .post(format!("{web}api/uploads"))
        .json(&request)
        .send()
        .await
        .map_err(|error| format!("ticket: {error}"))?;
    if response.status() != 201 {
        return Err(format!("ticket: HTTP {}", response.status()));
    }
    let ticket: UploadTicket = response
        .json()
        .await
        .map_err(|error| format!("ticket: {error}"))?;
    match try_put_ticket(&http, &ticket, bytes).await {
        Ok(200) => Ok(started.elapsed()),
        Ok(status) => Err(format!("PUT: HTTP {status}")),
        Err(error) => Err(format!("PUT: {error}")),
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load run on demand: cargo test -p pixelator --test load -- --ignored --nocapture"]
async fn a_hundred_concurrent_presigned_uploads_of_a_2_mp_photo() {
    let uploads: usize = std::env::var("PIXELATOR_LOAD_UPLOADS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(100);
    let binary = std::env::var_os("PIXELATOR_LOAD_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pixelator")));
    let path = pipeline_support::bench_images_dir().join(PHOTO);
    let bytes = std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "the bench photo {} is missing ({error}); set PIXELATOR_BENCH_IMAGES",
            path.display()
        )
    });
    let concurrency = std::env::var("PIXELATOR_CONCURRENCY").unwrap_or_else(|_| "2".to_owned());

    let data = tempfile::tempdir().unwrap();
    let mut settings = vec![
        ("PIXELATOR_CONCURRENCY", concurrency.clone()),
        ("PIXELATOR_QUEUE_CAPACITY", "256".to_owned()),
    ];
    // glibc's allocator settings reach the process too, to compare their effect.
    if let Ok(arenas) = std::env::var("MALLOC_ARENA_MAX") {
        settings.push(("MALLOC_ARENA_MAX", arenas));
    }
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let serving = ServeProcess::start(&binary, data.path(), &settings).await;
    let s3 = serving.s3_client();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(uploads)
        .build()
        .unwrap();
    let idle_rss = serving.peak_rss_kib().unwrap_or(0);

    let started = Instant::now();
    let tasks: Vec<_> = (0..uploads)
        .map(|_| tokio::spawn(upload(http.clone(), serving.web.clone(), bytes.clone())))
        .collect();
    let mut upload_times = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(took) => upload_times.push(took.as_secs_f64()),
            Err(error) => errors.push(error),
        }
    }
    let uploads_done = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(3600);
    let manifests = loop {
        let keys = manifest_keys(&s3).await;
        if keys.len() >= upload_times.len() {
            break keys;
        }
        assert!(
            Instant::now() < deadline,
            "only {} manifests after an hour",
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let last_manifest = started.elapsed();
    let peak_rss = serving.peak_rss_kib().unwrap_or(0);

    let (mut decode, mut encode, mut store, mut total) = (vec![], vec![], vec![], vec![]);
    let mut failed = 0;
    for key in &manifests {
        let object = s3
            .get_object()
            .bucket(PROCESSED)
            .key(key)
            .send()
            .await
            .unwrap();
        let manifest: Manifest =
            serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
        if manifest.status != ManifestStatus::Done {
            failed += 1;
        }
        decode.push(manifest.timings.decode_ms);
        encode.push(manifest.timings.encode_ms);
        store.push(manifest.timings.store_ms);
        total.push(manifest.timings.total_ms);
    }
    upload_times.sort_by(f64::total_cmp);

    println!(
        "load run: {uploads} concurrent presigned uploads of {PHOTO} ({} bytes)",
        bytes.len()
    );
    println!("  binary                  {}", binary.display());
    println!("  delivery concurrency    {concurrency}");
    println!("  upload errors           {}", errors.len());
    for error in errors.iter().take(5) {
        println!("    {error}");
    }
    println!("  failed manifests        {failed}");
    println!(
        "  all uploads answered    {:.2} s",
        uploads_done.as_secs_f64()
    );
    println!(
        "  upload time p50 / max   {:.2} s / {:.2} s",
        upload_times
            .get(upload_times.len() / 2)
            .copied()
            .unwrap_or(0.0),
        upload_times.last().copied().unwrap_or(0.0)
    );
    println!(
        "  last manifest after     {:.2} s",
        last_manifest.as_secs_f64()
    );
    println!(
        "  throughput              {:.2} photos/s",
        manifests.len() as f64 / last_manifest.as_secs_f64()
    );
    println!(
        "  per photo (mean ms)     decode {:.0}, encode {:.0}, store {:.0}, total {:.0}",
        mean(&decode),
        mean(&encode),
        mean(&store),
        mean(&total)
    );
    println!(
        "  peak RSS of serve       {:.1} MiB (idle {:.1} MiB)",
        peak_rss as f64 / 1024.0,
        idle_rss as f64 / 1024.0
    );

    assert!(errors.is_empty(), "{} uploads failed", errors.len());
    assert_eq!(failed, 0);
    assert_eq!(manifests.len(), uploads);
}
