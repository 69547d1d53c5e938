//! Killing `pixelator serve` at any moment loses no upload and duplicates no
//! work: a real child process is SIGKILLed in the middle of a batch of uploads
//! and of their processing, started again over the same data folder, and then
//! every source that was stored has exactly one manifest and its five variants,
//! and nothing else is in the processed bucket.

mod pipeline_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use pipeline_support::process::ServeProcess;
use pipeline_support::{PROCESSED, SOURCE, list_all, try_put_ticket, wait_for};
use pixelator_shared::layout::{is_output_key, manifest_key, source_key_of_manifest};
use pixelator_shared::wire::{Manifest, ManifestStatus, UploadTicket};

/// The most uploads tried; the kill stops the batch long before.
const MAX_BATCH: usize = 200;

fn photo() -> (String, Vec<u8>) {
    let path: PathBuf =
        pipeline_support::bench_images_dir().join("jpeg-medium-portrait-1800x1200-orient6.jpg");
    let bytes = std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "the bench photo {} is missing ({error}); set PIXELATOR_BENCH_IMAGES",
            path.display()
        )
    });
    ("portrait.jpg".to_owned(), bytes)
}

async fn manifests(s3: &aws_sdk_s3::Client) -> BTreeMap<String, Manifest> {
    let mut found = BTreeMap::new();
    for (key, _) in list_all(s3, PROCESSED).await {
        let Some(source) = source_key_of_manifest(&key) else {
            continue;
        };
        let object = s3.get_object().bucket(PROCESSED).key(&key).send().await;
        let Ok(object) = object else { continue };
        let bytes = object
            .body
            .collect()
            .await
            .expect("manifest body")
            .into_bytes();
        found.insert(
            source.to_owned(),
            serde_json::from_slice(&bytes).expect("manifest JSON"),
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_killed_mid_batch_processes_every_stored_upload_exactly_once_after_restart() {
    let (name, bytes) = photo();
    let data = tempfile::tempdir().unwrap();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_pixelator"));
    // One event at a time, so that the kill finds work queued and in flight.
    let serving =
        ServeProcess::start(&binary, data.path(), &[("PIXELATOR_CONCURRENCY", "1")]).await;
    let http = reqwest::Client::new();
    let s3 = serving.s3_client();

    // Upload in the background; count what the store confirmed.
    let web = serving.web.clone();
    let uploader = tokio::spawn({
        let http = http.clone();
        async move {
            let mut stored = Vec::new();
            for _ in 0..MAX_BATCH {
                let request = serde_json::json!({
                    "file_name": name,
                    "content_type": "image/jpeg",
                    "size": bytes.len(),
                });
                let Ok(response) = http
                    .post(format!("{web}api/uploads"))
                    .json(&request)
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(ticket) = response.json::<UploadTicket>().await else {
                    break;
                };
                if try_put_ticket(&http, &ticket, bytes.clone()).await.ok() != Some(200) {
                    break;
                }
                stored.push(ticket.key);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stored
        }
    });

    // Kill once some sources are done and more are still coming.
    let done_before = wait_for(Duration::from_secs(300), "two manifests", || async {
        let done = manifests(&s3).await;
        (done.len() >= 2).then_some(done)
    })
    .await;
    serving.kill();
    let stored = uploader.await.unwrap();
    assert!(
        stored.len() < MAX_BATCH,
        "the kill came after the whole batch"
    );
    assert!(
        stored.len() > done_before.len(),
        "nothing was left to do at the kill"
    );
    println!(
        "killed with {} uploads stored and {} processed",
        stored.len(),
        done_before.len()
    );

    // Start again over the same folder and wait for every stored source.
    let serving = ServeProcess::start(&binary, data.path(), &[]).await;
    let s3 = serving.s3_client();
    let sources: BTreeSet<String> = list_all(&s3, SOURCE)
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| !is_output_key(key))
        .collect();
    for key in &stored {
        assert!(
            sources.contains(key),
            "{key} was confirmed but is not stored"
        );
    }
    let after = wait_for(Duration::from_secs(600), "every manifest", || async {
        let done = manifests(&s3).await;
        (done.len() == sources.len()).then_some(done)
    })
    .await;

    // Exactly the manifests and variants of the sources, whole, nothing else.
    let mut expected = BTreeSet::new();
    for source in &sources {
        let manifest = &after[source];
        assert_eq!(
            manifest.status,
            ManifestStatus::Done,
            "{source}: {:?}",
            manifest.reason
        );
        assert_eq!(manifest.variants.len(), 5, "{source}");
        expected.insert(manifest_key(source));
        expected.extend(manifest.variants.iter().map(|variant| variant.key.clone()));
    }
    let written = list_all(&s3, PROCESSED).await;
    let written_keys: BTreeSet<String> = written.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(
        written_keys, expected,
        "the processed bucket holds exactly the sets"
    );
    assert_eq!(written.len(), expected.len(), "no key twice");
    for (key, size) in &written {
        assert!(*size > 0, "{key} is empty");
    }
    for source in sources.iter().take(2) {
        let variant = &after[source].variants[4].key;
        let object = s3
            .get_object()
            .bucket(PROCESSED)
            .key(variant)
            .send()
            .await
            .unwrap();
        let image = pipeline_support::decode(&object.body.collect().await.unwrap().into_bytes());
        assert_eq!(image.dimensions(), (1200, 1800), "{variant}");
    }

    // What was finished before the kill was not done again.
    for (source, manifest) in &done_before {
        assert_eq!(&after[source], manifest, "{source} was processed twice");
    }
}
