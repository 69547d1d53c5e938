//! Sizes and fidelity of the pixelated-image JPEG encoder across quality and chroma
//! sampling, on one photo's five grids: how the encoder's settings were chosen.
//!
//! usage: cargo run --release --example jpeg_settings -- PHOTO.jpg
//!
//! For each setting prints the bytes of each variant and its PSNR against the exact
//! render of its grid, decoded with the `image` crate.

use anyhow::Context;
use pixelator::codec::fast::jpeg_grids;
use pixelator::codec::jpeg::dc::DcLimits;
use pixelator::codec::jpeg::encode::{ChromaSampling, JpegSettings, encode_grid};
use pixelator_shared::grid::GridMode;
use pixelator_shared::render::render_rgba;

fn psnr(decoded: &[u8], rendered_rgba: &[u8]) -> f64 {
    let squared: f64 = decoded
        .chunks_exact(3)
        .zip(rendered_rgba.chunks_exact(4))
        .flat_map(|(a, b)| (0..3).map(move |c| (a[c] as f64 - b[c] as f64).powi(2)))
        .sum();
    let mse = squared / (decoded.len() as f64);
    10.0 * (255.0 * 255.0 / mse.max(1e-12)).log10()
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: jpeg_settings PHOTO.jpg")?;
    let bytes = std::fs::read(&path).with_context(|| path.clone())?;
    let limits = DcLimits {
        max_pixels: 200_000_000,
        max_dimension: 65_535,
    };
    let sizes = [8, 16, 32, 48, 64];
    let grids = jpeg_grids(&bytes, &sizes, GridMode::Classic, limits)?
        .context("the photo does not take the DC path")?;
    for chroma in [ChromaSampling::Quarter, ChromaSampling::Full] {
        for quality in [75, 85, 90, 95] {
            let settings = JpegSettings { quality, chroma };
            let mut line = format!("{chroma:?} q{quality}:");
            let mut total = 0;
            let started = std::time::Instant::now();
            let mut encoded = Vec::new();
            for grid in &grids.grids {
                encoded.push(encode_grid(grid, grids.width, grids.height, &settings)?);
            }
            let elapsed = started.elapsed();
            for (grid, bytes) in grids.grids.iter().zip(&encoded) {
                let decoded = image::load_from_memory(bytes)?.to_rgb8();
                let rendered = render_rgba(grid, grids.width, grids.height)?;
                total += bytes.len();
                line += &format!(
                    " {}KB/{:.1}dB",
                    bytes.len() / 1024,
                    psnr(decoded.as_raw(), &rendered)
                );
            }
            println!(
                "{line}  total {}KB, encode {:.1} ms",
                total / 1024,
                elapsed.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
