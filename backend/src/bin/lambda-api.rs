//! The API as an AWS Lambda function behind API Gateway's HTTP API: the same
//! axum router `pixelator serve` runs, driven by `lambda_http`.

use std::sync::Arc;

use lambda_http::Error;
use pixelator::api::{self, ApiState};
use pixelator::config::Config;
use pixelator::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(LogFormat::Json);
    let config = Arc::new(Config::from_env()?);
    let s3 = pixelator::s3::client_from_env(config.s3_path_style).await;
    let router = api::router(ApiState::new(s3, config));
    lambda_http::run(router).await
}
