//! The HTTP API: an axum router, run by `lambda_http` on AWS and by a plain
//! listener in local mode.
//!
//! - `POST /api/uploads` answers a presigned PUT into the source bucket
//!   ([`uploads`]);
//! - `GET /api/images` and `GET /api/images/{key}` show the gallery ([`images`]);
//! - `GET /api/config` tells the page the grid sizes and limits;
//! - `GET /api/health` says whether both buckets can be reached.
//!
//! Every error is a JSON [`ApiError`](pixelator_shared::wire::ApiError) with a stable
//! code ([`ApiFailure`]). CORS admits only the configured web origins. The API
//! reads the processed bucket and presigns writes into the source bucket's upload
//! prefix; it never writes anything itself.

mod error;
pub mod images;
pub mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use pixelator_shared::wire::{ClientConfig, Health};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::s3::StoreError;
pub use error::ApiFailure;

/// The largest request body the API reads: upload requests are small JSON.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// What every handler shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiState {
    s3: aws_sdk_s3::Client,
    config: Arc<Config>,
}

impl ApiState {
    /// The state of an API reading through `s3` and presigning with its
    /// credentials.
    pub fn new(s3: aws_sdk_s3::Client, config: Arc<Config>) -> ApiState {
        ApiState { s3, config }
    }
}

/// The API's router, every route under `/api`.
pub fn router(state: ApiState) -> Router {
    let cors = cors_layer(&state.config.web_origins);
    Router::new()
        .route("/api/uploads", post(uploads::create_upload))
        .route("/api/images", get(images::list_images))
        .route("/api/images/{*key}", get(images::get_image))
        .route("/api/config", get(client_config))
        .route("/api/health", get(health))
        .route("/api", any(unknown_route))
        .route("/api/{*rest}", any(unknown_route))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(cors)
        .with_state(state)
}

/// CORS for the configured origins only: the page may call the API and read its
/// JSON, nothing more.
fn cors_layer(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600))
}

/// `GET /api/config`.
async fn client_config(State(state): State<ApiState>) -> Json<ClientConfig> {
    let config = &state.config;
    Json(ClientConfig {
        grid_sizes: config.grid_sizes.clone(),
        grid_mode: config.grid_mode,
        max_upload_bytes: config.max_upload_bytes,
        max_pixels: config.max_pixels,
        accepted_types: config.accepted_types(),
    })
}

/// `GET /api/health`: `ok` when both buckets answer, 503 otherwise.
async fn health(State(state): State<ApiState>) -> (StatusCode, Json<Health>) {
    let buckets = &state.config.buckets;
    let mut status = (StatusCode::OK, "ok");
    for bucket in [&buckets.source, &buckets.processed] {
        if let Err(error) = state.s3.head_bucket().bucket(bucket).send().await {
            let error = StoreError::from_sdk("HeadBucket", bucket, "", error);
            tracing::error!(error = %error, "health check failed");
            status = (StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        }
    }
    let health = Health {
        status: status.1.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    (status.0, Json(health))
}

async fn unknown_route() -> ApiFailure {
    ApiFailure::NotFound("no such API route".to_owned())
}

async fn method_not_allowed() -> ApiFailure {
    ApiFailure::MethodNotAllowed
}
