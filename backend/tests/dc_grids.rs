//! The pipeline's grids of large JPEGs, which come from the DC coefficients alone
//! (`pixelator_shared::jpeg_dc`), held against the classic reference grids of the
//! bench photos: every channel of every cell within 2 levels, mean under 0.25.

#![allow(clippy::unwrap_used)]

use pixelator::codec::{PixelateOptions, stored_grids};
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
        let bytes = std::fs::read(bench_images().join(name))
            .unwrap_or_else(|_| panic!("bench image {name} missing: set PIXELATOR_BENCH_IMAGES"));
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
