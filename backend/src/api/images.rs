//! `GET /api/images` and `GET /api/images/{key}`: the gallery.
//!
//! The gallery lists the source bucket under the upload prefix, in key order,
//! which is newest first since upload ids are inverted timestamps, and reads each
//! source's manifest: none yet (or one for an older ETag) means `processing`,
//! otherwise the manifest says `done` or `failed`. Originals and variants come as
//! presigned GET URLs.
//!
//! Presigned URLs are made stable for a while: they are signed as of the start of
//! the current window (a quarter of the download lifetime) and valid for the
//! lifetime plus that window, so a page that polls gets the same URLs again and
//! the browser's cache keeps working, while every URL handed out stays valid for
//! at least the configured lifetime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::presigning::PresigningConfig;
use axum::Json;
use axum::extract::{Path, Query, State};
use futures::stream::{self, StreamExt, TryStreamExt};
use pixelator_shared::layout::{display_name, is_output_key, manifest_key};
use pixelator_shared::wire::{
    ImagePage, ImageStatus, ImageView, Manifest, ManifestStatus, VariantView,
};
use serde::Deserialize;

use super::{ApiFailure, ApiState};
use crate::pixelator::event::bare_etag;
use crate::s3::StoreError;

/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u32 = 24;
/// The largest page size.
pub const MAX_PAGE_SIZE: u32 = 100;
/// How many manifests are read at the same time while building a page.
const MANIFEST_READS_IN_FLIGHT: usize = 16;
/// The longest validity SigV4 allows.
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The query of `GET /api/images`.
#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// A source object as listed.
struct Listed {
    key: String,
    etag: String,
    size: u64,
}

/// Answers a page of the gallery, newest first.
pub(super) async fn list_images(
    State(state): State<ApiState>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ImagePage>, ApiFailure> {
    let Query(query) =
        query.map_err(|rejection| ApiFailure::InvalidRequest(rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiFailure::InvalidLimit { max: MAX_PAGE_SIZE });
    }
    let prefix = &state.config.source_prefix;
    let start_after = match query.cursor.as_deref().filter(|cursor| !cursor.is_empty()) {
        None => None,
        Some(cursor) => {
            let key = decode_cursor(cursor).ok_or(ApiFailure::InvalidCursor)?;
            if !key.starts_with(prefix.as_str()) {
                return Err(ApiFailure::InvalidCursor);
            }
            Some(key)
        }
    };

    let (sources, more) = list_sources(&state, start_after, limit as usize).await?;
    let next_cursor = if more {
        sources.last().map(|last| encode_cursor(&last.key))
    } else {
        None
    };
    let images = stream::iter(sources)
        .map(|source| {
            let state = state.clone();
            async move {
                let manifest = read_manifest(&state, &source.key).await?;
                Ok::<_, ApiFailure>(view(&state, &source, manifest.as_ref()).await)
            }
        })
        .buffered(MANIFEST_READS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(Json(ImagePage {
        images,
        next_cursor,
    }))
}

/// Answers one image, `processing` while it has no manifest for its ETag.
pub(super) async fn get_image(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Json<ImageView>, ApiFailure> {
    let not_found = || ApiFailure::NotFound(format!("no image with key {key:?}"));
    if !key.starts_with(state.config.source_prefix.as_str())
        || is_output_key(&key)
        || key.ends_with('/')
    {
        return Err(not_found());
    }
    let bucket = &state.config.buckets.source;
    let head = state.s3.head_object().bucket(bucket).key(&key).send().await;
    let head = match head {
        Ok(head) => head,
        Err(error) => {
            let error = StoreError::from_sdk("HeadObject", bucket, &key, error);
            return Err(if error.is_not_found() {
                not_found()
            } else {
                error.into()
            });
        }
    };
    let source = Listed {
        etag: bare_etag(head.e_tag().unwrap_or("")).to_owned(),
        size: head
            .content_length()
            .and_then(|length| u64::try_from(length).ok())
            .unwrap_or(0),
        key,
    };
    let manifest = read_manifest(&state, &source.key).await?;
    Ok(Json(view(&state, &source, manifest.as_ref()).await))
}

/// Lists up to `limit` sources after `start_after`, and whether more follow.
async fn list_sources(
    state: &ApiState,
    start_after: Option<String>,
    limit: usize,
) -> Result<(Vec<Listed>, bool), ApiFailure> {
    let config = &state.config;
    let bucket = &config.buckets.source;
    let mut sources = Vec::with_capacity(limit);
    let mut continuation: Option<String> = None;
    loop {
        // One more than needed, so a full page also tells whether more follow.
        let wanted = i32::try_from(limit - sources.len() + 1).unwrap_or(i32::MAX);
        let mut request = state
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&config.source_prefix)
            .max_keys(wanted);
        request = match (&continuation, &start_after) {
            (Some(token), _) => request.continuation_token(token),
            (None, Some(after)) => request.start_after(after),
            (None, None) => request,
        };
        let output = request.send().await.map_err(|error| {
            StoreError::from_sdk("ListObjectsV2", bucket, &config.source_prefix, error)
        })?;

        for object in output.contents() {
            let Some(key) = object.key() else { continue };
            if is_output_key(key) || key.ends_with('/') {
                continue;
            }
            if sources.len() == limit {
                return Ok((sources, true));
            }
            sources.push(Listed {
                key: key.to_owned(),
                etag: bare_etag(object.e_tag().unwrap_or("")).to_owned(),
                size: object
                    .size()
                    .and_then(|size| u64::try_from(size).ok())
                    .unwrap_or(0),
            });
        }
        match output.next_continuation_token() {
            Some(token) if output.is_truncated() == Some(true) => {
                continuation = Some(token.to_owned());
            }
            _ => return Ok((sources, false)),
        }
    }
}

/// The manifest of a source, if one has been written.
async fn read_manifest(state: &ApiState, source_key: &str) -> Result<Option<Manifest>, ApiFailure> {
    let bucket = &state.config.buckets.processed;
    let key = manifest_key(source_key);
    let output = match state.s3.get_object().bucket(bucket).key(&key).send().await {
        Ok(output) => output,
        Err(error) => {
            let error = StoreError::from_sdk("GetObject", bucket, &key, error);
            return if error.is_not_found() {
                Ok(None)
            } else {
                Err(error.into())
            };
        }
    };
    let body = output
        .body
        .collect()
        .await
        .map_err(|error| StoreError::body("GetObject", bucket, &key, error.to_string()))?
        .into_bytes();
    match serde_json::from_slice(&body) {
        Ok(manifest) => Ok(Some(manifest)),
        Err(error) => {
            // Shown as processing: the pixelator replaces an unreadable manifest.
            tracing::warn!(bucket = %bucket, key = %key, error = %error, "unreadable manifest");
            Ok(None)
        }
    }
}

/// How the gallery shows a source and its manifest.
async fn view(state: &ApiState, source: &Listed, manifest: Option<&Manifest>) -> ImageView {
    let config = &state.config;
    let original_url = presign_get(state, &config.buckets.source, &source.key).await;
    let mut view = ImageView {
        key: source.key.clone(),
        name: display_name(&source.key).to_owned(),
        status: ImageStatus::Processing,
        reason: None,
        width: None,
        height: None,
        format: None,
        bytes: Some(source.size),
        processed_at: None,
        original_url,
        variants: Vec::new(),
    };
    // A manifest for another ETag describes an earlier object under this key.
    let Some(manifest) = manifest.filter(|manifest| manifest.source.etag == source.etag) else {
        return view;
    };

    view.processed_at = Some(manifest.processed_at.clone());
    if let Some(image) = &manifest.image {
        view.width = Some(image.width);
        view.height = Some(image.height);
        view.format = Some(image.format);
    }
    match manifest.status {
        ManifestStatus::Failed => {
            view.status = ImageStatus::Failed;
            view.reason = manifest.reason.clone();
        }
        ManifestStatus::Done => {
            view.status = ImageStatus::Done;
            for variant in &manifest.variants {
                let url = presign_get(state, &config.buckets.processed, &variant.key).await;
                view.variants.push(VariantView {
                    size: variant.size,
                    grid: variant.grid,
                    key: variant.key.clone(),
                    url: url.unwrap_or_default(),
                    bytes: variant.bytes,
                    content_type: variant.content_type.clone(),
                });
            }
        }
    }
    view
}

/// A presigned GET, stable within the current window (see the module's notes).
async fn presign_get(state: &ApiState, bucket: &str, key: &str) -> Option<String> {
    let lifetime = state.config.download_url_lifetime;
    let window = (lifetime / 4).max(Duration::from_secs(1));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let window_start = now.as_secs() / window.as_secs() * window.as_secs();
    let presigning = PresigningConfig::builder()
        .start_time(UNIX_EPOCH + Duration::from_secs(window_start))
        .expires_in((lifetime + window).min(MAX_PRESIGN))
        .build();
    let presigning = match presigning {
        Ok(presigning) => presigning,
        Err(error) => {
            tracing::error!(error = %error, "cannot presign downloads");
            return None;
        }
    };
    match state
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(presigning)
        .await
    {
        Ok(request) => Some(request.uri().to_owned()),
        Err(error) => {
            tracing::error!(bucket, key, error = %error, "presigning a download failed");
            None
        }
    }
}

/// A cursor is the last key of the page, hex-encoded, so it needs no escaping.
fn encode_cursor(key: &str) -> String {
    key.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 2048 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(cursor.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_key() {
        for key in [
            "uploads/8264-ab/summer trip (1).jpg",
            "uploads/日本/a+b.png",
        ] {
            let cursor = encode_cursor(key);
            assert!(cursor.chars().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(decode_cursor(&cursor).as_deref(), Some(key));
        }
        assert_eq!(decode_cursor("abc"), None);
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor("ff"), None);
    }
}
