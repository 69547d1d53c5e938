//! The types that cross the wire: the API's requests and responses, and the
//! manifest the pixelator writes for each source.
//!
//! All of them serialise to JSON with `snake_case` field names. Optional fields are
//! left out when empty, and unknown fields are ignored when reading, so an older page
//! keeps working against a newer API.

use serde::{Deserialize, Serialize};

use crate::grid::{GridMode, GridShape};

/// The image formats the pipeline reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// JPEG (JFIF or EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// GIF; only the first frame of an animation is used.
    Gif,
    /// WebP, lossy or lossless.
    Webp,
    /// Windows bitmap.
    Bmp,
    /// TIFF.
    Tiff,
}

impl ImageFormat {
    /// Every format, in a fixed order.
    pub const ALL: [ImageFormat; 6] = [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::Webp,
        ImageFormat::Bmp,
        ImageFormat::Tiff,
    ];

    /// The media type of the format's bytes.
    pub fn mime_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Bmp => "image/bmp",
            ImageFormat::Tiff => "image/tiff",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
            ImageFormat::Bmp => "bmp",
            ImageFormat::Tiff => "tiff",
        }
    }

    /// The format's name as people write it.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Gif => "GIF",
            ImageFormat::Webp => "WebP",
            ImageFormat::Bmp => "BMP",
            ImageFormat::Tiff => "TIFF",
        }
    }

    /// The format a file extension claims, ignoring case.
    pub fn from_extension(extension: &str) -> Option<ImageFormat> {
        let format = match extension.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" | "jpe" | "jfif" => ImageFormat::Jpeg,
            "png" => ImageFormat::Png,
            "gif" => ImageFormat::Gif,
            "webp" => ImageFormat::Webp,
            "bmp" | "dib" => ImageFormat::Bmp,
            "tif" | "tiff" => ImageFormat::Tiff,
            _ => return None,
        };
        Some(format)
    }

    /// The format a media type names, ignoring case and parameters.
    pub fn from_mime_type(mime_type: &str) -> Option<ImageFormat> {
        let essence = mime_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let format = match essence.as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => ImageFormat::Jpeg,
            "image/png" | "image/x-png" => ImageFormat::Png,
            "image/gif" => ImageFormat::Gif,
            "image/webp" => ImageFormat::Webp,
            "image/bmp" | "image/x-bmp" | "image/x-ms-bmp" => ImageFormat::Bmp,
            "image/tiff" => ImageFormat::Tiff,
            _ => return None,
        };
        Some(format)
    }
}

/// `POST /api/uploads`: the browser asks where to put a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRequest {
    /// The file's name as the person chose it; the server makes it safe.
    pub file_name: String,
    /// The media type the browser will send.
    pub content_type: String,
    /// The exact size in bytes the browser will send.
    pub size: u64,
}

/// The answer to [`UploadRequest`]: a presigned PUT for one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadTicket {
    /// The source key the server chose.
    pub key: String,
    /// The presigned URL to send the bytes to.
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers the request must carry exactly as given (they are signed).
    pub headers: Vec<(String, String)>,
    /// Seconds the URL stays valid.
    pub expires_in: u32,
}

/// Where a source is in the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Uploaded; the variants are not all written yet.
    Processing,
    /// Every variant is written.
    Done,
    /// The pixelator gave up on this source, for the reason given.
    Failed,
}

/// One processed (or processing) image as the gallery shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageView {
    /// The source key.
    pub key: String,
    /// The name a person sees: the file name without folder and extension.
    pub name: String,
    /// Where the image is in the pipeline.
    pub status: ImageStatus,
    /// Why processing failed, in words a person can read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Upright width in pixels, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Upright height in pixels, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The source's format, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ImageFormat>,
    /// The source's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// When the manifest was written (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<String>,
    /// A presigned GET of the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_url: Option<String>,
    /// The variants, smallest grid first.
    #[serde(default)]
    pub variants: Vec<VariantView>,
}

/// One variant as the gallery shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantView {
    /// The grid size asked for (8, 16, ...).
    pub size: u32,
    /// The grid the variant shows.
    pub grid: GridShape,
    /// Key in the processed bucket.
    pub key: String,
    /// A presigned GET of the variant.
    pub url: String,
    /// Size in bytes.
    pub bytes: u64,
    /// The media type of its bytes.
    pub content_type: String,
}

/// `GET /api/images`: a page of the gallery, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagePage {
    /// The images on this page.
    pub images: Vec<ImageView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/config`: what the page needs to know before it sends anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// The grid sizes the pipeline writes.
    pub grid_sizes: Vec<u32>,
    /// How sizes map onto images.
    pub grid_mode: GridMode,
    /// The largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// The most pixels an image may have.
    pub max_pixels: u64,
    /// The media types the pipeline accepts.
    pub accepted_types: Vec<String>,
}

/// `GET /api/health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when the API can reach both buckets.
    pub status: String,
    /// The running version.
    pub version: String,
}

/// The body of every API error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable, machine-readable code such as `file_too_large`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// The outcome the manifest records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStatus {
    /// Every variant was written.
    Done,
    /// The source can never be processed; no variant was written.
    Failed,
}

/// What the pixelator writes last for each source: a source with a manifest is
/// complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version of this document; currently 1.
    pub version: u32,
    /// The object the manifest describes.
    pub source: SourceRecord,
    /// The outcome.
    pub status: ManifestStatus,
    /// Why it failed, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A stable code for the failure, such as `unsupported_format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The decoded image, when decoding got that far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRecord>,
    /// How grid sizes were mapped onto the image.
    pub grid_mode: GridMode,
    /// The variants, smallest grid first.
    #[serde(default)]
    pub variants: Vec<VariantRecord>,
    /// Milliseconds spent per stage.
    pub timings: Timings,
    /// When the manifest was written (RFC 3339, UTC).
    pub processed_at: String,
    /// The version of the pixelator that wrote it.
    pub pixelator_version: String,
}

/// The source object as the pixelator read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Bucket it was read from.
    pub bucket: String,
    /// Its key, decoded.
    pub key: String,
    /// Its ETag, without quotes.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The decoded source image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Format read from the bytes.
    pub format: ImageFormat,
    /// Upright width.
    pub width: u32,
    /// Upright height.
    pub height: u32,
    /// The EXIF orientation that was applied (1 when none).
    pub orientation: u16,
    /// Whether the image has an alpha channel.
    pub has_alpha: bool,
}

/// One written variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantRecord {
    /// The grid size asked for.
    pub size: u32,
    /// The grid it shows.
    pub grid: GridShape,
    /// Key in the processed bucket.
    pub key: String,
    /// The format it is written in.
    pub format: ImageFormat,
    /// The media type of its bytes.
    pub content_type: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Milliseconds per stage of one record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Reading the source.
    pub fetch_ms: f64,
    /// Decoding and computing the grids.
    pub decode_ms: f64,
    /// Encoding the variants.
    pub encode_ms: f64,
    /// Writing variants and manifest.
    pub store_ms: f64,
    /// All of it.
    pub total_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_their_names() {
        for format in ImageFormat::ALL {
            assert_eq!(
                ImageFormat::from_extension(format.extension()),
                Some(format)
            );
            assert_eq!(
                ImageFormat::from_mime_type(format.mime_type()),
                Some(format)
            );
        }
        assert_eq!(
            ImageFormat::from_mime_type("IMAGE/JPEG; q=1"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::from_extension("heic"), None);
    }

    #[test]
    fn image_views_leave_out_what_is_unknown() {
        let view = ImageView {
            key: "uploads/a.jpg".into(),
            name: "a".into(),
            status: ImageStatus::Processing,
            reason: None,
            width: None,
            height: None,
            format: None,
            bytes: None,
            processed_at: None,
            original_url: None,
            variants: vec![],
        };
        let json = serde_json::to_string(&view).unwrap();
        assert_eq!(
            json,
            r#"{"key":"uploads/a.jpg","name":"a","status":"processing","variants":[]}"#
        );
        assert_eq!(serde_json::from_str::<ImageView>(&json).unwrap(), view);
    }
}
