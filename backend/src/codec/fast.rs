//! Fast ways to the grids, for the inputs that allow them, without a full-size
//! picture in memory.
//!
//! - JPEG: the DC-only decoder gives the picture at 1/8 scale, and the grids are
//!   computed on it. Pillow's triangle filter over block means lands within a level
//!   or two of the filter over the pixels while every cell spans a few blocks, so
//!   this path is taken only when each cell of the largest grid covers at least
//!   [`MIN_BLOCKS_PER_CELL`] blocks along both axes; smaller images go through the
//!   general decoder, which is quick at their size anyway.
//!
//! Each function answers `Ok(None)` when its path does not apply (another format, a
//! kind of file it leaves to the general decoder, an image too small for the DC
//! path) and an error only for inputs that no decoder can read.

use pixelator_shared::grid::{Grid, GridBuilder, GridError, GridMode, GridShape};
use pixelator_shared::orientation::Orientation;

use super::jpeg::dc::{DcError, DcImage, DcLimits, decode_dc};

/// Cells of the largest grid must span at least this many 8x8 blocks a side for the
/// DC path to be taken (measured against the reference grids: see the tests).
pub const MIN_BLOCKS_PER_CELL: u32 = 4;

/// The grids of an image, turned upright, with what the encoders need to know.
#[derive(Clone, Debug)]
pub struct FastGrids {
    /// Upright width.
    pub width: u32,
    /// Upright height.
    pub height: u32,
    /// The EXIF orientation applied.
    pub orientation: Orientation,
    /// Whether the decoded pixels had an alpha channel.
    pub has_alpha: bool,
    /// One grid per requested size, upright, in the order asked.
    pub grids: Vec<Grid>,
}

/// Why a fast path gave up on an input that it recognised.
#[derive(Debug, thiserror::Error)]
pub enum FastError {
    /// The data ends before the image does.
    #[error("the image data is truncated")]
    Truncated,
    /// The image is larger than the limits allow.
    #[error("image of {width}x{height} pixels is larger than allowed")]
    TooLarge {
        /// Width declared.
        width: u32,
        /// Height declared.
        height: u32,
    },
    /// The grid could not be computed (an empty image, for instance).
    #[error("grid: {0}")]
    Grid(GridError),
}

/// The grid shapes, upright and as computed on the stored pixels.
fn shapes(
    stored_width: u32,
    stored_height: u32,
    orientation: Orientation,
    sizes: &[u32],
    mode: GridMode,
) -> Result<Vec<GridShape>, FastError> {
    let (width, height) = orientation.upright_size(stored_width, stored_height);
    sizes
        .iter()
        .map(|&size| {
            GridShape::for_image(width, height, size, mode)
                .map(|upright| orientation.stored_shape(upright))
                .map_err(FastError::Grid)
        })
        .collect()
}

/// The grids of a JPEG through its DC coefficients, or `None` when the general
/// decoder should read it (see the module's notes).
pub fn jpeg_grids(
    bytes: &[u8],
    sizes: &[u32],
    mode: GridMode,
    limits: DcLimits,
) -> Result<Option<FastGrids>, FastError> {
    let image = match decode_dc(bytes, limits) {
        Ok(image) => image,
        Err(DcError::Truncated) => return Err(FastError::Truncated),
        Err(DcError::TooLarge { width, height }) => {
            return Err(FastError::TooLarge { width, height });
        }
        // Files it does not read, and damage the general decoder is the judge of.
        Err(DcError::Unsupported(_) | DcError::Corrupt(_)) => return Ok(None),
    };
    let orientation = Orientation::from_exif(image.exif_orientation.unwrap_or(1));
    let stored = shapes(image.width, image.height, orientation, sizes, mode)?;
    let fits = stored.iter().all(|shape| {
        image.width / shape.columns.max(1) >= 8 * MIN_BLOCKS_PER_CELL
            && image.height / shape.rows.max(1) >= 8 * MIN_BLOCKS_PER_CELL
    });
    if !fits {
        return Ok(None);
    }
    let grids = dc_grids(&image, &stored)?;
    let (width, height) = orientation.upright_size(image.width, image.height);
    Ok(Some(FastGrids {
        width,
        height,
        orientation,
        has_alpha: false,
        grids: grids.iter().map(|grid| orientation.apply(grid)).collect(),
    }))
}

/// Grids of the 1/8-scale picture of an image `full_width x full_height` pixels.
fn dc_grids(image: &DcImage, shapes: &[GridShape]) -> Result<Vec<Grid>, FastError> {
    let extent = (image.width as f64 / 8.0, image.height as f64 / 8.0);
    let mut builder = GridBuilder::with_extent(
        image.dc_width,
        image.dc_height,
        extent,
        image.layout,
        shapes,
    )
    .map_err(FastError::Grid)?;
    let row_bytes = image.dc_width as usize * image.layout.channels();
    for row in image.pixels.chunks_exact(row_bytes) {
        builder.push_row(row).map_err(FastError::Grid)?;
    }
    builder.finish().map_err(FastError::Grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DcLimits = DcLimits {
        max_pixels: 100_000_000,
        max_dimension: 30_000,
    };
    const SIZES: [u32; 5] = [8, 16, 32, 48, 64];

    fn bench_images() -> std::path::PathBuf {
        std::env::var_os("PIXELATOR_BENCH_IMAGES")
            .map(Into::into)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench-images")
            })
    }

    /// The largest difference per channel between our grids (turned back to the
    /// stored orientation) and the classic reference grids.
    fn worst_difference(name: &str, grids: &FastGrids) -> i32 {
        let reference_path = bench_images()
            .join("../peers/ref-grids")
            .join(format!("{name}.json"));
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(reference_path).unwrap()).unwrap();
        let undo = match grids.orientation {
            Orientation::Rotate90 => Orientation::Rotate270,
            Orientation::Rotate270 => Orientation::Rotate90,
            other => other,
        };
        let mut worst = 0;
        for (size, grid) in SIZES.iter().zip(&grids.grids) {
            let mut worst_here = 0;
            let mut sum = 0i64;
            let mut count = 0i64;
            let stored = undo.apply(grid);
            let pixels = &reference["grids"][format!("{size}x{size}")]["pixels"];
            for row in 0..stored.shape().rows {
                for column in 0..stored.shape().columns {
                    let ours = stored.cell(column, row);
                    let theirs = &pixels[row as usize][column as usize];
                    for channel in 0..3 {
                        let theirs = theirs[channel].as_i64().unwrap() as i32;
                        let d = (ours[channel] as i32 - theirs).abs();
                        worst = worst.max(d);
                        worst_here = worst_here.max(d);
                        sum += d as i64;
                        count += 1;
                    }
                }
            }
            let mean = sum as f64 / count as f64;
            assert!(
                mean < 0.5,
                "{name} {size}x{size}: mean difference {mean:.2}"
            );
            assert!(
                worst_here <= 3,
                "{name} {size}x{size}: {worst_here} levels off"
            );
        }
        worst
    }

    #[test]
    fn dc_grids_of_the_bench_photos_stay_within_three_levels_of_the_classic_ones() {
        for name in [
            "jpeg-phone-samsung-s7edge-4032x3024.jpg",
            "jpeg-camera-leica-t-4928x3264-orient8.jpg",
            "jpeg-photo-kleiber-6028x3391.jpg",
        ] {
            let Ok(bytes) = std::fs::read(bench_images().join(name)) else {
                panic!("bench image {name} missing: set PIXELATOR_BENCH_IMAGES");
            };
            let grids = jpeg_grids(&bytes, &SIZES, GridMode::Classic, LIMITS)
                .unwrap()
                .expect("large photos take the DC path");
            let worst = worst_difference(name, &grids);
            assert!(worst <= 3, "{name}: {worst} levels off");
        }
    }

    #[test]
    fn a_small_photo_is_left_to_the_general_decoder() {
        let name = "jpeg-medium-portrait-1800x1200-orient6.jpg";
        let bytes = std::fs::read(bench_images().join(name)).unwrap();
        assert!(
            jpeg_grids(&bytes, &SIZES, GridMode::Classic, LIMITS)
                .unwrap()
                .is_none()
        );
    }
}
