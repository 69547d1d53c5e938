//! Pixelator's backend.

pub mod api;
pub mod codec;
pub mod config;
pub mod embedded;
pub mod pixelator;
pub mod s3;
pub mod telemetry;
