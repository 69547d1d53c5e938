//! Pixelator's backend.

pub mod config;
pub mod pixelator;
pub mod s3;
