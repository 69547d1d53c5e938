//! The grids of real photos against the classic pipeline's: on every bench image,
//! every grid is within 3 levels per channel of the reference grids Pillow computed.
//!
//! The photos are read from `PIXELATOR_BENCH_IMAGES` (relative to the repository's
//! root, by default `../shared/bench-images`), the references from
//! `PIXELATOR_REF_GRIDS` (by default `peers/ref-grids` beside the bench folder). The
//! references are in the stored orientation, since the classic pipeline ignores
//! EXIF; they are turned by the image's orientation before comparing. For palette
//! images Pillow resizes by nearest neighbour, so their comparison uses the
//! reference's real bilinear grids (`alt_grids.rgb_bilinear`).

use std::path::{Path, PathBuf};

use pixelator::codec::{self, PixelateOptions};
use pixelator_shared::{Grid, GridShape, Orientation};
use serde_json::Value;

/// Largest difference allowed per channel.
const TOLERANCE: u8 = 3;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bench_folder() -> PathBuf {
    match std::env::var_os("PIXELATOR_BENCH_IMAGES") {
        Some(folder) => repository_root().join(folder),
        None => repository_root().join("../shared/bench-images"),
    }
}

fn reference_folder(bench: &Path) -> PathBuf {
    match std::env::var_os("PIXELATOR_REF_GRIDS") {
        Some(folder) => repository_root().join(folder),
        None => bench.join("../peers/ref-grids"),
    }
}

/// The reference grids of one image, keyed by shape, turned upright.
struct Reference {
    orientation: Orientation,
    grids: Vec<Grid>,
}

fn read_reference(path: &Path) -> Reference {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reference {}: {error}", path.display()));
    let json: Value = serde_json::from_str(&text).expect("reference grids are JSON");
    let orientation = json["exif_orientation"]
        .as_u64()
        .map_or(Orientation::Normal, |value| {
            Orientation::from_exif(value as u16)
        });
    let grids = if json["mode"] == "P" {
        &json["alt_grids"]["rgb_bilinear"]
    } else {
        &json["grids"]
    };
    let grids = pixelator_shared::DEFAULT_GRID_SIZES
        .iter()
        .map(|size| {
            let grid = &grids[format!("{size}x{size}")];
            let stored = grid_from_json(grid)
                .unwrap_or_else(|| panic!("{}: no {size}x{size} grid", path.display()));
            orientation.apply(&stored)
        })
        .collect();
    Reference { orientation, grids }
}

fn grid_from_json(grid: &Value) -> Option<Grid> {
    let shape = GridShape::new(
        grid["width"].as_u64()? as u32,
        grid["height"].as_u64()? as u32,
    );
    let mut cells = Vec::with_capacity(shape.cells());
    for row in grid["pixels"].as_array()? {
        for pixel in row.as_array()? {
            let samples: Vec<u8> = pixel
                .as_array()?
                .iter()
                .map(|sample| sample.as_u64().map(|value| value as u8))
                .collect::<Option<_>>()?;
            cells.push(match samples[..] {
                [r, g, b] => [r, g, b, 255],
                [r, g, b, a] => [r, g, b, a],
                _ => return None,
            });
        }
    }
    Grid::from_cells(shape, cells).ok()
}

/// The difference of two cells as seen: colour weighted by alpha, so the colour of a
/// nearly transparent cell (which Pillow and we un-premultiply with different
/// rounding) counts as little as it shows.
fn seen_difference(ours: [u8; 4], theirs: [u8; 4]) -> u8 {
    let shown = |cell: [u8; 4], channel: usize| {
        if channel == 3 {
            cell[3] as f64
        } else {
            cell[channel] as f64 * cell[3] as f64 / 255.0
        }
    };
    (0..4)
        .map(|channel| (shown(ours, channel) - shown(theirs, channel)).abs())
        .fold(0.0, f64::max)
        .round() as u8
}

#[test]
fn every_bench_grid_is_within_three_levels_of_the_classic_grids() {
    let bench = bench_folder();
    let entries = std::fs::read_dir(&bench).unwrap_or_else(|error| {
        panic!(
            "the bench images are not at {} ({error}); set PIXELATOR_BENCH_IMAGES to the \
             folder holding them (../shared/bench-images from the repository's root)",
            bench.display()
        )
    });
    let references = reference_folder(&bench);
    let mut images: Vec<PathBuf> = entries
        .map(|entry| entry.expect("listable").path())
        .filter(|path| path.extension().is_some_and(|extension| extension != "md"))
        .collect();
    images.sort();
    assert!(!images.is_empty(), "no bench images in {}", bench.display());

    let options = PixelateOptions::default();
    let mut failures = Vec::new();
    for image in &images {
        let name = image.file_name().expect("a file").to_string_lossy();
        let reference = read_reference(&references.join(format!("{name}.json")));
        let bytes = std::fs::read(image).expect("readable bench image");
        let (source, grids) = codec::upright_grids(&bytes, &options)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(source.orientation, reference.orientation, "{name}");

        let mut worst = 0u8;
        let mut raw_worst = 0u8;
        let mut total = 0u64;
        let mut count = 0u64;
        for (ours, theirs) in grids.iter().zip(&reference.grids) {
            assert_eq!(ours.shape(), theirs.shape(), "{name}");
            for (&a, &b) in ours.cells().iter().zip(theirs.cells()) {
                let difference = seen_difference(a, b);
                let raw = (0..4).map(|channel| a[channel].abs_diff(b[channel])).max();
                raw_worst = raw_worst.max(raw.unwrap_or(0));
                worst = worst.max(difference);
                total += difference as u64;
                count += 1;
            }
        }
        let mean = total as f64 / count as f64;
        println!(
            "{name}: max {worst}, mean {mean:.3} levels from the classic grids \
             (largest raw channel difference {raw_worst})"
        );
        if worst > TOLERANCE {
            failures.push(format!("{name}: max difference {worst}"));
        }
    }
    assert!(
        failures.is_empty(),
        "grids differ by more than {TOLERANCE}: {failures:?}"
    );
}
