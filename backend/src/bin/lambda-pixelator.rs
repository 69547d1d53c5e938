//! The pixelator as an AWS Lambda function, triggered by the source bucket's
//! ObjectCreated notifications.
//!
//! The event is taken as plain JSON, so S3's test event (which has no `Records`)
//! reaches the handler instead of failing to parse. An invocation fails only when
//! the store failed, so Lambda retries it; inputs that can never succeed are
//! recorded in a failed manifest and the invocation succeeds.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use pixelator::config::Config;
use pixelator::pixelator::{Pixelator, PixelatorSettings};
use pixelator::telemetry::{self, LogFormat};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init(LogFormat::Json);
    let config = Config::from_env()?;
    let s3 = pixelator::s3::client_from_env(config.s3_path_style).await;
    let pixelator = Pixelator::new(s3, PixelatorSettings::from_config(&config));

    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let pixelator = pixelator.clone();
        async move { pixelator.handle(event.payload).await }
    }))
    .await
}
