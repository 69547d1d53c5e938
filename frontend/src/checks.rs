//! The checks a file passes before the page decodes or sends anything.
//!
//! The limits come from the API's `GET /api/config`; until it answers, or when it
//! cannot be reached, [`Limits::default`] holds values that match the pipeline's
//! defaults. A refused file gets a [`Refusal`] whose message is shown on its card
//! and is never uploaded.

use std::fmt;

use pixelator_shared::DEFAULT_GRID_SIZES;
use pixelator_shared::grid::{GridError, GridMode, GridShape};
use pixelator_shared::orientation::Orientation;
use pixelator_shared::wire::{ClientConfig, ImageFormat};

use crate::sniff::{Sniffed, dimensions, orientation, sniff};

/// What the page checks files against, and which grids it draws.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The grid sizes the pipeline writes, smallest first.
    pub grid_sizes: Vec<u32>,
    /// How sizes map onto an image.
    pub grid_mode: GridMode,
    /// The largest file accepted, in bytes.
    pub max_upload_bytes: u64,
    /// The most pixels an image may have.
    pub max_pixels: u64,
    /// The formats the pipeline accepts.
    pub accepted: Vec<ImageFormat>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            grid_sizes: DEFAULT_GRID_SIZES.to_vec(),
            grid_mode: GridMode::Classic,
            max_upload_bytes: 50 * 1024 * 1024,
            max_pixels: 50_000_000,
            accepted: ImageFormat::ALL.to_vec(),
        }
    }
}

impl From<ClientConfig> for Limits {
    fn from(config: ClientConfig) -> Self {
        let defaults = Limits::default();
        let mut grid_sizes: Vec<u32> = config
            .grid_sizes
            .into_iter()
            .filter(|&size| size > 0)
            .collect();
        grid_sizes.sort_unstable();
        grid_sizes.dedup();
        let accepted: Vec<ImageFormat> = config
            .accepted_types
            .iter()
            .filter_map(|media_type| ImageFormat::from_mime_type(media_type))
            .collect();
        Limits {
            grid_sizes: if grid_sizes.is_empty() {
                defaults.grid_sizes
            } else {
                grid_sizes
            },
            grid_mode: config.grid_mode,
            max_upload_bytes: config.max_upload_bytes,
            max_pixels: config.max_pixels,
            accepted: if accepted.is_empty() {
                defaults.accepted
            } else {
                accepted
            },
        }
    }
}

impl Limits {
    /// The grid shapes for an upright image of `width x height`, one per size.
    pub fn shapes(&self, width: u32, height: u32) -> Result<Vec<GridShape>, GridError> {
        self.grid_sizes
            .iter()
            .map(|&size| GridShape::for_image(width, height, size, self.grid_mode))
            .collect()
    }

    /// Checks the upright or stored size of a decoded image against the pixel limit.
    pub fn check_pixels(&self, width: u32, height: u32) -> Result<(), Refusal> {
        let pixels = width as u64 * height as u64;
        if pixels > self.max_pixels {
            return Err(Refusal::TooManyPixels {
                width,
                height,
                limit: self.max_pixels,
            });
        }
        Ok(())
    }
}

/// A file that passed the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The format its bytes are in.
    pub format: ImageFormat,
    /// The stored size its header declares, when the header was readable.
    pub dimensions: Option<(u32, u32)>,
    /// The EXIF orientation the browser will turn it by, when the header settles
    /// it (see [`orientation`]).
    pub orientation: Option<Orientation>,
}

impl Accepted {
    /// The upright size, when the header gives both the stored size and the
    /// orientation.
    pub fn upright_size(&self) -> Option<(u32, u32)> {
        let (width, height) = self.dimensions?;
        Some(self.orientation?.upright_size(width, height))
    }
}

/// Why a file is not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The file has no bytes.
    Empty,
    /// The file is over the size limit.
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The image has more pixels than the pipeline takes.
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The limit in pixels.
        limit: u64,
    },
    /// An image in a format the pipeline does not read.
    UnsupportedFormat(&'static str),
    /// Not an image at all.
    NotAnImage(&'static str),
    /// Content nobody recognises.
    Unrecognised,
    /// The browser could not decode what claims to be an image.
    Undecodable(String),
}

impl Refusal {
    /// A short hint on what the person can do about it, if anything.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Refusal::UnsupportedFormat("HEIC" | "HEIF") => Some(
                "Export it as JPEG first (on an iPhone: Settings > Camera > Formats > Most Compatible).",
            ),
            Refusal::UnsupportedFormat(_) => Some("Convert it to JPEG or PNG first."),
            Refusal::TooLarge { .. } | Refusal::TooManyPixels { .. } => {
                Some("Resize it or export a smaller copy.")
            }
            _ => None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Empty => f.write_str("empty file: there is nothing to pixelate"),
            Refusal::TooLarge { size, limit } => write!(
                f,
                "file too large: {}, the limit is {}",
                human_bytes(*size),
                human_bytes(*limit)
            ),
            Refusal::TooManyPixels {
                width,
                height,
                limit,
            } => write!(
                f,
                "image too large: {width} × {height} pixels, the limit is {} megapixels",
                limit / 1_000_000
            ),
            Refusal::UnsupportedFormat(name) => write!(f, "unsupported format: {name}"),
            Refusal::NotAnImage(what) => write!(f, "not an image: the content is a {what}"),
            Refusal::Unrecognised => f.write_str("not an image the pipeline can read"),
            Refusal::Undecodable(reason) => {
                write!(
                    f,
                    "the image could not be read (damaged or incomplete): {reason}"
                )
            }
        }
    }
}

/// Checks a file of `size` bytes whose first bytes are `head`.
///
/// The size is checked first, so an empty or oversized file is refused without
/// reading it.
pub fn check_size(size: u64, limits: &Limits) -> Result<(), Refusal> {
    if size == 0 {
        return Err(Refusal::Empty);
    }
    if size > limits.max_upload_bytes {
        return Err(Refusal::TooLarge {
            size,
            limit: limits.max_upload_bytes,
        });
    }
    Ok(())
}

/// Checks a file's content, from its first bytes, against the limits.
pub fn check_content(head: &[u8], limits: &Limits) -> Result<Accepted, Refusal> {
    let format = match sniff(head) {
        Sniffed::Image(format) => format,
        Sniffed::UnsupportedImage(name) => return Err(Refusal::UnsupportedFormat(name)),
        Sniffed::NotAnImage(what) => return Err(Refusal::NotAnImage(what)),
        Sniffed::Unknown => return Err(Refusal::Unrecognised),
    };
    if !limits.accepted.contains(&format) {
        return Err(Refusal::UnsupportedFormat(format.name()));
    }
    let dimensions = dimensions(format, head);
    if let Some((width, height)) = dimensions {
        limits.check_pixels(width, height)?;
    }
    Ok(Accepted {
        format,
        dimensions,
        orientation: orientation(format, head),
    })
}

/// A byte count for people, in units of 1024 as upload limits are usually set:
/// `812 B`, `4.0 MB`, `50 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn case(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/cases/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    #[test]
    fn heic_is_refused_with_the_pipelines_own_words() {
        let refusal = check_content(&case("c20-iphone.heic"), &Limits::default()).unwrap_err();
        assert_eq!(refusal.to_string(), "unsupported format: HEIC");
        assert!(refusal.hint().is_some());
    }

    #[test]
    fn empty_and_oversized_files_are_refused_before_reading() {
        let limits = Limits {
            max_upload_bytes: 1 << 20,
            ..Limits::default()
        };
        assert_eq!(check_size(0, &limits), Err(Refusal::Empty));
        assert_eq!(check_size(1 << 20, &limits), Ok(()));
        let refusal = check_size(3 << 19, &limits).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "file too large: 1.5 MB, the limit is 1.0 MB"
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let refusal =
            check_content(&case("c18-bomb-100000x100000.png"), &Limits::default()).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::TooManyPixels {
                width: 100_000,
                height: 100_000,
                limit: 50_000_000
            }
        );
    }

    #[test]
    fn the_upright_size_is_known_where_the_header_settles_the_orientation() {
        let limits = Limits::default();
        let rotated = check_content(&case("c10-exif-orientation-6.jpg"), &limits).unwrap();
        assert_eq!(rotated.dimensions, Some((96, 64)));
        assert_eq!(rotated.upright_size(), Some((64, 96)));
        let upright = check_content(&case("c01-summer-trip.jpg"), &limits).unwrap();
        assert_eq!(upright.upright_size(), Some((120, 80)));
        // A PNG may hold its orientation anywhere in the file.
        let png = check_content(&case("c08-first.png"), &limits).unwrap();
        assert_eq!(png.upright_size(), None);
    }

    #[test]
    fn a_pdf_is_not_an_image() {
        let refusal = check_content(b"%PDF-1.4\n", &Limits::default()).unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "not an image: the content is a PDF document"
        );
    }

    #[test]
    fn formats_the_server_does_not_accept_are_refused() {
        let limits = Limits {
            accepted: vec![ImageFormat::Png],
            ..Limits::default()
        };
        let refusal = check_content(&case("c01-summer-trip.jpg"), &limits).unwrap_err();
        assert_eq!(refusal.to_string(), "unsupported format: JPEG");
        let accepted = check_content(&case("c08-first.png"), &limits).unwrap();
        assert_eq!(accepted.dimensions, Some((64, 64)));
    }

    #[test]
    fn the_servers_config_overrides_the_defaults_but_never_empties_them() {
        let config = ClientConfig {
            grid_sizes: vec![64, 8, 0, 8],
            grid_mode: GridMode::Square,
            max_upload_bytes: 10,
            max_pixels: 20,
            accepted_types: vec!["image/png".into(), "image/heic".into()],
        };
        let limits = Limits::from(config);
        assert_eq!(limits.grid_sizes, vec![8, 64]);
        assert_eq!(limits.accepted, vec![ImageFormat::Png]);
        assert_eq!(limits.max_upload_bytes, 10);

        let empty = ClientConfig {
            grid_sizes: vec![],
            grid_mode: GridMode::Classic,
            max_upload_bytes: 10,
            max_pixels: 20,
            accepted_types: vec![],
        };
        let limits = Limits::from(empty);
        assert_eq!(limits.grid_sizes, DEFAULT_GRID_SIZES.to_vec());
        assert_eq!(limits.accepted, ImageFormat::ALL.to_vec());
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(4_167_727), "4.0 MB");
        assert_eq!(human_bytes(52_428_800), "50 MB");
    }
}
