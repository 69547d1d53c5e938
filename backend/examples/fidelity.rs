//! How faithful `pixelate`'s variants are to their grids, on a folder of images.
//!
//! usage: cargo run --release --example fidelity -- FOLDER
//!
//! For every image in FOLDER (other files are skipped), computes the grids as the
//! pipeline does, runs `pixelate`, decodes each variant with the `image` crate and
//! compares it with the exact render of its grid: lossy variants by PSNR over the
//! colour channels and by the largest difference per channel (red, green, blue) at
//! the cell centres, the others by whether they are identical. Prints one line per
//! image; exits non-zero when a lossy variant is under 40 dB or a cell centre more
//! than one level off, or when a lossless one differs.

use std::process::ExitCode;

use anyhow::Context;
use pixelator::codec::{PixelateOptions, pixelate, upright_grids};
use pixelator_shared::grid::Grid;
use pixelator_shared::render::{BlockMap, render_rgba};
use pixelator_shared::wire::ImageFormat;

/// The PSNR (dB) of `decoded` against `rendered`, both RGBA, over red, green, blue.
fn psnr(decoded: &[u8], rendered: &[u8]) -> f64 {
    let squared: f64 = decoded
        .chunks_exact(4)
        .zip(rendered.chunks_exact(4))
        .flat_map(|(a, b)| (0..3).map(move |c| (a[c] as f64 - b[c] as f64).powi(2)))
        .sum();
    let mse = squared / (decoded.len() / 4 * 3) as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-12)).log10()
}

/// The largest difference per colour channel between `decoded` (RGBA) and `grid`
/// at the centre pixel of every cell.
fn off_at_cell_centres(decoded: &image::RgbaImage, grid: &Grid) -> [u8; 3] {
    let (width, height) = decoded.dimensions();
    let columns = BlockMap::new(width, grid.shape().columns);
    let rows = BlockMap::new(height, grid.shape().rows);
    let mut worst = [0; 3];
    for row in 0..grid.shape().rows {
        let Some(y) = rows.center(row) else { continue };
        for column in 0..grid.shape().columns {
            let Some(x) = columns.center(column) else {
                continue;
            };
            let (pixel, cell) = (decoded.get_pixel(x, y).0, grid.cell(column, row));
            for channel in 0..3 {
                worst[channel] = worst[channel].max(pixel[channel].abs_diff(cell[channel]));
            }
        }
    }
    worst
}

fn main() -> anyhow::Result<ExitCode> {
    let folder = std::env::args().nth(1).context("usage: fidelity FOLDER")?;
    let mut names: Vec<_> = std::fs::read_dir(&folder)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext != "md"))
        .collect();
    names.sort();
    let options = PixelateOptions::default();
    let mut failed = false;
    println!(
        "| image | variant format | per size: PSNR dB and R/G/B off at cell centres (lossy), \
         or identical (lossless) |"
    );
    println!("|---|---|---|");
    for path in names {
        let bytes = std::fs::read(&path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let (source, grids) = upright_grids(&bytes, &options).with_context(|| name.clone())?;
        let pixelated = pixelate(&bytes, &options).with_context(|| name.clone())?;
        let mut cells = Vec::new();
        let mut format = ImageFormat::Png;
        for (variant, grid) in pixelated.variants.iter().zip(&grids) {
            format = variant.format;
            let decoded = image::load_from_memory(&variant.bytes)?.to_rgba8();
            if decoded.dimensions() != (source.width, source.height) {
                failed = true;
                cells.push(format!(
                    "{}: {:?} pixels",
                    variant.size,
                    decoded.dimensions()
                ));
                continue;
            }
            let rendered = render_rgba(grid, source.width, source.height)?;
            let lossy = matches!(variant.format, ImageFormat::Jpeg);
            if lossy {
                let quality = psnr(decoded.as_raw(), &rendered);
                let [red, green, blue] = off_at_cell_centres(&decoded, grid);
                failed |= quality < 40.0 || red.max(green).max(blue) > 1;
                cells.push(format!(
                    "{}: {quality:.1} ({red}/{green}/{blue})",
                    variant.size
                ));
            } else if decoded.as_raw() == &rendered {
                cells.push(format!("{}: identical", variant.size));
            } else {
                let quality = psnr(decoded.as_raw(), &rendered);
                // GIF holds 256 colours: a grid with more is quantised, not copied.
                failed |= variant.format != ImageFormat::Gif;
                cells.push(format!("{}: differs ({quality:.1} dB)", variant.size));
            }
        }
        println!("| {name} | {format:?} | {} |", cells.join(", "));
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
