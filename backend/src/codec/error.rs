//! Why an image could not be pixelated.
//!
//! Every failure here is a property of the input bytes (or of the options the caller
//! passed): running the same input again gives the same error, so no retry can help.
//! Callers log it with its [`CodecError::code`] and record it as a permanent failure.

use pixelator_shared::wire::ImageFormat;

/// A permanent reason why an input could not be pixelated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input has no bytes at all.
    #[error("empty file: there are no bytes to decode")]
    Empty,

    /// The input is an image in a format the pipeline cannot decode.
    #[error("unsupported format: {format}")]
    UnsupportedFormat {
        /// The format's usual name, as read from the content (`HEIC`, `AVIF`, ...).
        format: &'static str,
    },

    /// The input is in a format the pipeline decodes, but uses a feature of it that
    /// the decoder does not support (an unusual colour type or compression).
    #[error("unsupported {} feature: {detail}", .format.name())]
    UnsupportedFeature {
        /// The format read from the content.
        format: ImageFormat,
        /// What the decoder does not support.
        detail: String,
    },

    /// The input is not an image the pipeline recognises.
    #[error("not an image: {detail}")]
    NotAnImage {
        /// What the content looks like instead.
        detail: String,
    },

    /// The input claims a known format but its data is damaged.
    #[error("corrupt {} data: {detail}", .format.name())]
    Corrupt {
        /// The format read from the content.
        format: ImageFormat,
        /// What is wrong, as the decoder reported it.
        detail: String,
    },

    /// The input ends before its image data does.
    #[error("truncated {} file: {detail}", .format.name())]
    Truncated {
        /// The format read from the content.
        format: ImageFormat,
        /// Where the data stops.
        detail: String,
    },

    /// The input is larger than the configured limits allow.
    #[error("image too large: {detail}")]
    TooLarge {
        /// Which limit, and by how much.
        detail: String,
    },

    /// A variant of this image cannot be written in the output format (for example a
    /// size that format cannot express).
    #[error("cannot write the {} variant: {detail}", .format.name())]
    Unwritable {
        /// The output format.
        format: ImageFormat,
        /// What the encoder refused.
        detail: String,
    },

    /// The caller asked for something impossible (no grid sizes, a zero size).
    #[error("invalid pixelation options: {detail}")]
    InvalidOptions {
        /// What is wrong with them.
        detail: String,
    },
}

impl CodecError {
    /// A stable, machine-readable code for the failure, recorded in manifests.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::Empty => "empty",
            CodecError::UnsupportedFormat { .. } | CodecError::UnsupportedFeature { .. } => {
                "unsupported_format"
            }
            CodecError::NotAnImage { .. } => "not_an_image",
            CodecError::Corrupt { .. } => "corrupt",
            CodecError::Truncated { .. } => "truncated",
            CodecError::TooLarge { .. } => "too_large",
            CodecError::Unwritable { .. } => "unwritable",
            CodecError::InvalidOptions { .. } => "invalid_options",
        }
    }

    /// Whether trying again could succeed. Never: every codec failure is a property of
    /// the input or of the options, which a retry does not change.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_format_and_codes_are_stable() {
        let heic = CodecError::UnsupportedFormat { format: "HEIC" };
        assert_eq!(heic.to_string(), "unsupported format: HEIC");
        assert_eq!(heic.code(), "unsupported_format");
        let truncated = CodecError::Truncated {
            format: ImageFormat::Jpeg,
            detail: "no end-of-image marker".into(),
        };
        assert_eq!(
            truncated.to_string(),
            "truncated JPEG file: no end-of-image marker"
        );
        assert_eq!(truncated.code(), "truncated");
        assert!(!truncated.is_retryable());
    }
}
