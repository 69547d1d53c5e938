//! How many pixels the browser hands the grid code.
//!
//! A grid cell of a 12 MP photo averages tens of thousands of pixels; the grid
//! barely changes when the photo is first shrunk so that each cell still averages
//! a hundred or more. The page therefore asks the browser for a smaller copy (made
//! off the main thread) and computes the grids on that copy: the previews appear in
//! a few tens of milliseconds instead of freezing the page.
//!
//! Each axis is halved as often as it keeps at least [`MIN_PIXELS_PER_CELL`] pixels
//! per cell of the finest grid along it (the grid filter is separable, so the axes
//! need not shrink alike). Halving matters: a browser shrinks by a power of two
//! through its mipmaps, which average whole 2 x 2 blocks, while other factors are
//! resampled with a small filter that aliases fine detail. The tests below measure
//! the copy against the full image on the bench photos, with an exact area average
//! standing in for the browser; the browser tests measure the browser's own scaler
//! on a picture made to alias, and the end-to-end test compares the previews with
//! the variants the pipeline stored.

use pixelator_shared::grid::GridShape;

/// The fewest pixels of the copy per cell of the finest grid, along each axis.
pub const MIN_PIXELS_PER_CELL: u32 = 10;

/// The size of the copy to compute the grids of `shapes` on, for an upright image
/// of `width x height`. Equal to the image's size when halving would go below
/// [`MIN_PIXELS_PER_CELL`].
pub fn sample_size(width: u32, height: u32, shapes: &[GridShape]) -> (u32, u32) {
    let columns = shapes.iter().map(|shape| shape.columns).max().unwrap_or(1);
    let rows = shapes.iter().map(|shape| shape.rows).max().unwrap_or(1);
    (sampled_length(width, columns), sampled_length(height, rows))
}

/// `length` halved as often as it stays at or above the floor for `cells`, rounded
/// down at each halving as mipmap levels are.
fn sampled_length(length: u32, cells: u32) -> u32 {
    let floor = cells.max(1).saturating_mul(MIN_PIXELS_PER_CELL);
    let mut sampled = length;
    while sampled / 2 >= floor {
        sampled /= 2;
    }
    sampled
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use pixelator_shared::grid::{Grid, PixelLayout, grids_of};

    fn square(sizes: &[u32]) -> Vec<GridShape> {
        sizes
            .iter()
            .map(|&size| GridShape::new(size, size))
            .collect()
    }

    #[test]
    fn large_photos_are_halved_while_each_cell_keeps_ten_pixels() {
        let shapes = square(&[8, 16, 32, 48, 64]);
        assert_eq!(sample_size(4032, 3024, &shapes), (1008, 756));
        assert_eq!(sample_size(1200, 1800, &shapes), (1200, 900));
        assert_eq!(sample_size(1100, 900, &shapes), (1100, 900));
        assert_eq!(sample_size(64, 64, &shapes), (64, 64));
        assert_eq!(sample_size(6000, 400, &[GridShape::new(64, 4)]), (750, 50));
    }

    /// An area-averaging (box) resize of straight RGBA to `to`, averaging colour
    /// premultiplied as a browser's canvas does: the filter a mipmapped downscale
    /// approximates.
    fn box_resize(pixels: &[u8], width: u32, height: u32, to: (u32, u32)) -> Vec<u8> {
        let axis = |from: u32, to: u32| -> Vec<Vec<(usize, f64)>> {
            let scale = from as f64 / to as f64;
            (0..to)
                .map(|cell| {
                    let (start, end) = (cell as f64 * scale, (cell + 1) as f64 * scale);
                    let first = start.floor() as usize;
                    let last = (end.ceil() as usize).min(from as usize);
                    (first..last)
                        .map(|x| {
                            let overlap = end.min(x as f64 + 1.0) - start.max(x as f64);
                            (x, overlap.max(0.0) / scale)
                        })
                        .collect()
                })
                .collect()
        };
        let (to_width, to_height) = (to.0 as usize, to.1 as usize);
        let columns = axis(width, to.0);
        let rows = axis(height, to.1);
        let mut horizontal = vec![0f64; height as usize * to_width * 4];
        for (y, row) in pixels.chunks_exact(width as usize * 4).enumerate() {
            for (cell, weights) in columns.iter().enumerate() {
                let out = &mut horizontal[(y * to_width + cell) * 4..][..4];
                for &(x, weight) in weights {
                    let pixel = &row[x * 4..x * 4 + 4];
                    let alpha = pixel[3] as f64 / 255.0;
                    for channel in 0..3 {
                        out[channel] += weight * pixel[channel] as f64 * alpha;
                    }
                    out[3] += weight * pixel[3] as f64;
                }
            }
        }
        let mut out = vec![0u8; to_width * to_height * 4];
        for (row, weights) in rows.iter().enumerate() {
            for cell in 0..to_width {
                let mut sample = [0f64; 4];
                for &(y, weight) in weights {
                    let from = &horizontal[(y * to_width + cell) * 4..][..4];
                    for channel in 0..4 {
                        sample[channel] += weight * from[channel];
                    }
                }
                let alpha = sample[3] / 255.0;
                let pixel = &mut out[(row * to_width + cell) * 4..][..4];
                for channel in 0..3 {
                    let straight = if alpha > 0.0 {
                        sample[channel] / alpha
                    } else {
                        0.0
                    };
                    pixel[channel] = straight.round().clamp(0.0, 255.0) as u8;
                }
                pixel[3] = sample[3].round() as u8;
            }
        }
        out
    }

    /// The largest difference between two grids in any channel of any cell, with
    /// colour weighed by alpha (as it shows): a cell at alpha 3 holds its colour only
    /// to within 255 / 3 levels in any 8-bit resampler, the pipeline's included.
    fn largest_difference(ours: &Grid, theirs: &Grid) -> u8 {
        let shown = |cell: [u8; 4], channel: usize| -> f64 {
            if channel == 3 {
                cell[3] as f64
            } else {
                cell[channel] as f64 * cell[3] as f64 / 255.0
            }
        };
        ours.cells()
            .iter()
            .zip(theirs.cells())
            .flat_map(|(&a, &b)| {
                (0..4).map(move |channel| (shown(a, channel) - shown(b, channel)).abs())
            })
            .fold(0f64, f64::max)
            .round() as u8
    }

    /// The bench photos' folder: `PIXELATOR_BENCH_IMAGES`, relative to the
    /// repository's root, by default `../shared/bench-images`.
    fn bench_folder() -> std::path::PathBuf {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        match std::env::var_os("PIXELATOR_BENCH_IMAGES") {
            Some(folder) => root.join(folder),
            None => root.join("../shared/bench-images"),
        }
    }

    /// The claim the page rests on: grids of the sampled copy equal the grids of the
    /// full image within two levels, on every real photo of the bench.
    #[test]
    fn grids_of_a_sampled_copy_match_the_full_image_within_two_levels() {
        let folder = bench_folder();
        let mut checked = 0;
        for entry in std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
        {
            let path = entry.unwrap().path();
            let Ok(picture) = image::open(&path) else {
                continue;
            };
            let picture = picture.to_rgba8();
            let (width, height) = picture.dimensions();
            let shapes = square(&pixelator_shared::DEFAULT_GRID_SIZES);
            let sampled = sample_size(width, height, &shapes);
            if sampled == (width, height) {
                // Small enough to be read whole: the grids are the full image's.
                continue;
            }

            let full =
                grids_of(picture.as_raw(), width, height, PixelLayout::Rgba, &shapes).unwrap();
            let copy = box_resize(picture.as_raw(), width, height, sampled);
            let from_copy =
                grids_of(&copy, sampled.0, sampled.1, PixelLayout::Rgba, &shapes).unwrap();
            for ((ours, theirs), shape) in from_copy.iter().zip(&full).zip(&shapes) {
                let difference = largest_difference(ours, theirs);
                eprintln!("{} {shape}: {difference}", path.display());
                assert!(
                    difference <= 2,
                    "{} {shape}: sampled copy differs by {difference} levels",
                    path.display()
                );
            }
            checked += 1;
        }
        assert!(
            checked >= 5,
            "only {checked} bench photos in {}",
            folder.display()
        );
    }
}
