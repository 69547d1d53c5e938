//! Grids from a JPEG's DC coefficients: the 1/8-scale picture the DC-only decoder
//! gives ([`super::jpeg::dc`]) fed to the grid builder, with the filter laid out
//! over the full image's geometry.
//!
//! Pillow's triangle filter over 8x8 block means lands within a level or two of
//! the filter over the pixels while every cell spans a few blocks. Measured against
//! the classic reference grids (the tests below): with at least
//! [`MIN_BLOCKS_PER_CELL`] blocks per cell along each axis every channel of every
//! cell is within 2 levels (mean under 0.2); at about 3 blocks per cell the worst
//! cells reach 3 levels and at 2.3 blocks per cell 6. So the path is taken only for
//! images large enough for their largest grid; smaller images go through the
//! general decoder, which is quick at their size anyway.

use pixelator_shared::grid::{GridBuilder, GridError, GridShape};

use super::jpeg::dc::DcImage;

/// Cells of every grid must span at least this many 8x8 blocks along each axis for
/// the DC path to be taken.
pub const MIN_BLOCKS_PER_CELL: u32 = 4;

/// Whether grids of `shapes` (on the stored pixels) computed from the 1/8-scale
/// picture stay faithful to the full image's.
pub fn dc_grids_are_faithful(image: &DcImage, shapes: &[GridShape]) -> bool {
    let least_pixels = 8 * MIN_BLOCKS_PER_CELL;
    shapes.iter().all(|shape| {
        image.width / shape.columns.max(1) >= least_pixels
            && image.height / shape.rows.max(1) >= least_pixels
    })
}

/// A grid builder for the 1/8-scale picture that lays the cells out where they lie
/// on the full image (the picture's last column and row of blocks may be partly
/// padding).
pub fn dc_grid_builder(image: &DcImage, shapes: &[GridShape]) -> Result<GridBuilder, GridError> {
    let extent = (image.width as f64 / 8.0, image.height as f64 / 8.0);
    GridBuilder::with_extent(
        image.dc_width,
        image.dc_height,
        extent,
        image.layout,
        shapes,
    )
}

/// The rows of the 1/8-scale picture, top to bottom.
pub fn dc_rows(image: &DcImage) -> impl Iterator<Item = &[u8]> {
    let row_bytes = image.dc_width as usize * image.layout.channels();
    image.pixels.chunks_exact(row_bytes.max(1))
}

#[cfg(test)]
mod tests {
    use crate::codec::{PixelateOptions, stored_grids};
    use pixelator_shared::{Grid, GridShape};

    fn bench_images() -> std::path::PathBuf {
        std::env::var_os("PIXELATOR_BENCH_IMAGES")
            .map(Into::into)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench-images")
            })
    }

    /// The worst and mean difference per channel between grids in the stored
    /// orientation and the classic reference grids.
    fn differences(name: &str, grids: &[Grid]) -> Vec<(i32, f64)> {
        let path = bench_images()
            .join("../peers/ref-grids")
            .join(format!("{name}.json"));
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        grids
            .iter()
            .map(|grid| {
                let GridShape { columns, rows } = grid.shape();
                let pixels = &reference["grids"][format!("{columns}x{rows}")]["pixels"];
                let mut worst = 0;
                let mut sum = 0.0;
                for row in 0..rows {
                    for column in 0..columns {
                        let ours = grid.cell(column, row);
                        let theirs = &pixels[row as usize][column as usize];
                        for channel in 0..3 {
                            let theirs = theirs[channel].as_i64().unwrap() as i32;
                            let difference = (ours[channel] as i32 - theirs).abs();
                            worst = worst.max(difference);
                            sum += difference as f64;
                        }
                    }
                }
                (worst, sum / (columns * rows * 3) as f64)
            })
            .collect()
    }

    #[test]
    fn dc_grids_of_the_bench_photos_stay_within_two_levels_of_the_classic_ones() {
        for (name, stored_width, stored_height) in [
            ("jpeg-phone-samsung-s7edge-4032x3024.jpg", 4032, 3024),
            ("jpeg-camera-leica-t-4928x3264-orient8.jpg", 4928, 3264),
            ("jpeg-photo-kleiber-6028x3391.jpg", 6028, 3391),
        ] {
            let bytes = std::fs::read(bench_images().join(name)).unwrap_or_else(|_| {
                panic!("bench image {name} missing: set PIXELATOR_BENCH_IMAGES")
            });
            let stored = stored_grids(&bytes, &PixelateOptions::default()).unwrap();
            let (width, height) = stored
                .source
                .orientation
                .upright_size(stored_width, stored_height);
            assert_eq!(
                (stored.source.width, stored.source.height),
                (width, height),
                "{name}"
            );
            for (worst, mean) in differences(name, &stored.grids) {
                assert!(
                    worst <= 2 && mean < 0.25,
                    "{name}: worst {worst}, mean {mean:.2}"
                );
            }
        }
    }
}
