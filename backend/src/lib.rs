//! Pixelator's backend.

pub mod api;
pub mod codec;
pub mod config;
pub mod delivery;
pub mod embedded;
pub mod pixelator;
pub mod s3;
pub mod serve;
pub mod telemetry;
pub mod worker;
