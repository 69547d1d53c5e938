//! The pixelator function: the S3 event handler that writes the variants.
//!
//! [`event`] reads the notifications S3 and S3-compatible stores send.

pub mod event;
