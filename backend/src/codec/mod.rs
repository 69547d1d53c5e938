//! The image codec: one input's bytes in, its pixelated variants out.
//!
//! [`pixelate`] is the whole job for one image, in two halves with a clean seam
//! between them:
//!
//! 1. [`decode::decode`]: the format is read from the content ([`sniff`]), the
//!    header is checked against the [`Limits`], the EXIF orientation is read
//!    ([`metadata`]), and the pixels are streamed into the grids, computed on the
//!    stored pixels in shapes that are the asked-for shapes once turned upright.
//! 2. [`encode::encode`]: each grid, turned upright, is drawn at the image's upright
//!    size and written in the input's format, alpha kept where the source had
//!    transparency, with no orientation tag.
//!
//! A faster decoder (one that shrinks on load) or a specialised encoder can replace
//! either half for some format without the other noticing. Everything here is
//! synchronous and CPU-bound; async callers run it on a blocking thread.

pub mod decode;
pub mod encode;
mod error;
mod huffman;
pub mod jpeg;
pub mod metadata;
pub mod palette;
pub mod png_writer;
pub mod sniff;
#[cfg(test)]
mod test_grids;
pub mod webp_writer;

use std::time::{Duration, Instant};

use pixelator_shared::wire::{ImageFormat, ImageRecord};
use pixelator_shared::{DEFAULT_GRID_SIZES, Grid, GridMode, GridShape, Orientation};

pub use decode::{GridRequest, StoredGrids};
pub use error::CodecError;

/// How large an input may be. Checked from the header, before any pixel is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most pixels (width times height) an image may have.
    pub max_pixels: u64,
    /// Most pixels along either side.
    pub max_dimension: u32,
    /// Most bytes the encoded input may have.
    pub max_input_bytes: u64,
}

impl Default for Limits {
    /// 50 megapixels, 30000 pixels a side, 100 MiB of input: well above what cameras
    /// and phones produce, well below what would exhaust a function's memory.
    fn default() -> Limits {
        Limits {
            max_pixels: 50_000_000,
            max_dimension: 30_000,
            max_input_bytes: 100 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Checks a stored image size against the limits.
    pub fn check(&self, width: u32, height: u32) -> Result<(), CodecError> {
        let pixels = width as u64 * height as u64;
        if width > self.max_dimension || height > self.max_dimension {
            return Err(CodecError::TooLarge {
                detail: format!(
                    "{width}x{height} pixels; each side may be at most {} pixels",
                    self.max_dimension
                ),
            });
        }
        if pixels > self.max_pixels {
            return Err(CodecError::TooLarge {
                detail: format!(
                    "{width}x{height} is {pixels} pixels; at most {} are allowed",
                    self.max_pixels
                ),
            });
        }
        Ok(())
    }

    /// Checks the size of the encoded input.
    pub fn check_input(&self, bytes: usize) -> Result<(), CodecError> {
        if bytes as u64 > self.max_input_bytes {
            return Err(CodecError::TooLarge {
                detail: format!(
                    "the file has {bytes} bytes; at most {} are allowed",
                    self.max_input_bytes
                ),
            });
        }
        Ok(())
    }

    /// The most memory one decode may allocate: the largest allowed image at 16 bytes
    /// a pixel (four 32-bit float samples, the widest any decoder returns) plus room
    /// for the decoder's own tables.
    pub fn max_alloc(&self) -> u64 {
        self.max_pixels
            .saturating_mul(16)
            .saturating_add(64 * 1024 * 1024)
    }

    /// Checks that a buffer of `bytes` stays within [`Limits::max_alloc`].
    pub fn check_allocation(&self, bytes: u64) -> Result<(), CodecError> {
        if bytes > self.max_alloc() {
            return Err(CodecError::TooLarge {
                detail: format!(
                    "decoding needs {bytes} bytes; at most {} are allowed",
                    self.max_alloc()
                ),
            });
        }
        Ok(())
    }

    /// The same limits in the form `image`'s decoders take.
    pub fn for_image(&self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_dimension);
        limits.max_image_height = Some(self.max_dimension);
        limits.max_alloc = Some(self.max_alloc());
        limits
    }
}

/// What to make of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PixelateOptions {
    /// Grid sizes, one variant each, in the order the variants are returned.
    pub sizes: Vec<u32>,
    /// How a size maps onto the image.
    pub mode: GridMode,
    /// How large an input may be.
    pub limits: Limits,
}

impl Default for PixelateOptions {
    fn default() -> PixelateOptions {
        PixelateOptions {
            sizes: DEFAULT_GRID_SIZES.to_vec(),
            mode: GridMode::Classic,
            limits: Limits::default(),
        }
    }
}

impl PixelateOptions {
    fn validate(&self) -> Result<(), CodecError> {
        if self.sizes.is_empty() {
            return Err(CodecError::InvalidOptions {
                detail: "no grid sizes were given".to_owned(),
            });
        }
        if self.sizes.contains(&0) {
            return Err(CodecError::InvalidOptions {
                detail: "a grid size of 0 has no cells".to_owned(),
            });
        }
        Ok(())
    }
}

/// The decoded source, as the variants show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceImage {
    /// The format read from the content.
    pub format: ImageFormat,
    /// Upright width (after the EXIF orientation).
    pub width: u32,
    /// Upright height.
    pub height: u32,
    /// The EXIF orientation that was applied.
    pub orientation: Orientation,
    /// Whether any pixel is less than fully opaque; the variants then keep alpha.
    pub has_alpha: bool,
}

impl SourceImage {
    /// The record of this image in a manifest.
    pub fn record(&self) -> ImageRecord {
        ImageRecord {
            format: self.format,
            width: self.width,
            height: self.height,
            orientation: self.orientation.exif_value(),
            has_alpha: self.has_alpha,
        }
    }
}

/// One written variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedVariant {
    /// The grid size asked for.
    pub size: u32,
    /// The grid it shows, upright.
    pub shape: GridShape,
    /// The format its bytes are in; name it with `layout::variant_key`.
    pub format: ImageFormat,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// Time spent per stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodecTimings {
    /// Sniffing, decoding and computing the grids.
    pub decode: Duration,
    /// Drawing and encoding every variant.
    pub encode: Duration,
}

/// An image's variants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pixelated {
    /// What was decoded.
    pub source: SourceImage,
    /// One per size, in the order of the options' sizes.
    pub variants: Vec<EncodedVariant>,
    /// Time spent per stage.
    pub timings: CodecTimings,
}

/// The format a variant of a `source`-format image is written in: always the
/// source's own, since every format the pipeline reads it can also write.
pub fn output_format(source: ImageFormat) -> ImageFormat {
    source
}

/// Decodes `bytes` and computes its grids, turned upright, one per size.
pub fn upright_grids(
    bytes: &[u8],
    options: &PixelateOptions,
) -> Result<(SourceImage, Vec<Grid>), CodecError> {
    let stored = stored_grids(bytes, options)?;
    let orientation = stored.source.orientation;
    let grids = stored
        .grids
        .iter()
        .map(|grid| orientation.apply(grid))
        .collect();
    Ok((stored.source, grids))
}

/// Decodes `bytes` and computes its grids in the stored orientation.
pub fn stored_grids(bytes: &[u8], options: &PixelateOptions) -> Result<StoredGrids, CodecError> {
    options.validate()?;
    options.limits.check_input(bytes.len())?;
    let format = sniff::sniff(bytes)?;
    let request = GridRequest {
        sizes: &options.sizes,
        mode: options.mode,
    };
    decode::decode(bytes, format, request, &options.limits)
}

/// Runs `encode` on every grid, on as many threads as there are cores (at most one
/// per grid), and returns the results in the grids' order, or the first error.
///
/// Each encoder holds only its own variant's output and a little working memory,
/// so encoding side by side raises the peak memory by a few megabytes at most.
fn encode_in_parallel<T: Send>(
    grids: &[Grid],
    encode: impl Fn(usize, &Grid) -> Result<T, CodecError> + Sync,
) -> Result<Vec<T>, CodecError> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let threads = std::thread::available_parallelism()
        .map_or(1, |count| count.get())
        .min(grids.len());
    if threads <= 1 {
        return grids
            .iter()
            .enumerate()
            .map(|(index, grid)| encode(index, grid))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, CodecError>>>> =
        Mutex::new((0..grids.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(grid) = grids.get(index) else {
                        break;
                    };
                    let result = encode(index, grid);
                    results
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .map(|result| result.expect("every index below the grid count was taken by a thread"))
        .collect()
}

/// Turns one image into its pixelated variants.
///
/// All or nothing: either every variant is returned, or the reason none can be.
pub fn pixelate(bytes: &[u8], options: &PixelateOptions) -> Result<Pixelated, CodecError> {
    let started = Instant::now();
    let StoredGrids { source, grids } = stored_grids(bytes, options)?;
    let decoded = Instant::now();

    let format = output_format(source.format);
    let variants = encode_in_parallel(&grids, |index, grid| {
        let upright = source.orientation.apply(grid);
        let bytes = encode::encode(
            &upright,
            source.width,
            source.height,
            format,
            source.has_alpha,
        )?;
        Ok(EncodedVariant {
            size: options.sizes[index],
            shape: upright.shape(),
            format,
            bytes,
        })
    })?;

    Ok(Pixelated {
        source,
        variants,
        timings: CodecTimings {
            decode: decoded - started,
            encode: decoded.elapsed(),
        },
    })
}
