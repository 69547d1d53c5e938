//! The steps of pixelation on a real photo, one by one: the grids in one pass, the
//! full-size rendering of a grid, and the encoding of a variant per format.
//!
//! The photo is `jpeg-phone-samsung-s7edge-4032x3024.jpg` (or `PIXELATOR_BENCH_IMAGE`,
//! a file name) from `PIXELATOR_BENCH_IMAGES` (relative to the repository's root,
//! by default `../shared/bench-images`), decoded once before timing starts.
//! Run with `cargo bench -p pixelator --bench grid_render`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_main};
use pixelator::codec::encode;
use pixelator_shared::grid::grids_of;
use pixelator_shared::render::{render_rgba, render_row};
use pixelator_shared::wire::ImageFormat;
use pixelator_shared::{BlockMap, DEFAULT_GRID_SIZES, GridShape, PixelLayout};

fn bench_image() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let folder = match std::env::var_os("PIXELATOR_BENCH_IMAGES") {
        Some(folder) => root.join(folder),
        None => root.join("../shared/bench-images"),
    };
    let name = std::env::var("PIXELATOR_BENCH_IMAGE")
        .unwrap_or_else(|_| "jpeg-phone-samsung-s7edge-4032x3024.jpg".to_owned());
    let path = folder.join(name);
    assert!(
        path.is_file(),
        "bench image {} is missing; set PIXELATOR_BENCH_IMAGES (and PIXELATOR_BENCH_IMAGE)",
        path.display()
    );
    path
}

fn steps(criterion: &mut Criterion) {
    let path = bench_image();
    let picture = image::open(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .to_rgb8();
    let (width, height) = picture.dimensions();
    let pixels = picture.into_raw();
    let shapes: Vec<GridShape> = DEFAULT_GRID_SIZES
        .iter()
        .map(|&size| GridShape::new(size, size))
        .collect();
    let grids = grids_of(&pixels, width, height, PixelLayout::Rgb, &shapes).expect("valid photo");
    let finest = grids.last().expect("five grids");

    let mut group = criterion.benchmark_group(format!("{width}x{height}"));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));

    group.bench_function("grids, five sizes in one pass", |bench| {
        bench.iter(|| grids_of(black_box(&pixels), width, height, PixelLayout::Rgb, &shapes))
    });
    group.bench_function("render 64x64 whole (RGBA)", |bench| {
        bench.iter(|| render_rgba(black_box(finest), width, height))
    });
    group.bench_function("render 64x64 row by row (RGBA)", |bench| {
        let columns = BlockMap::new(width, finest.shape().columns);
        let rows = BlockMap::new(height, finest.shape().rows);
        let mut row = vec![0u8; width as usize * 4];
        bench.iter(|| {
            for y in 0..height {
                render_row(black_box(finest), &columns, rows.cell_of(y), &mut row)
                    .expect("row of the right length");
            }
        })
    });
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp] {
        group.bench_function(
            format!("encode 64x64 variant as {}", format.name()),
            |bench| bench.iter(|| encode::encode(black_box(finest), width, height, format, false)),
        );
    }
    group.finish();
}

/// Runs the steps with criterion's command-line configuration (written out rather
/// than through `criterion_group!`, whose function carries no documentation).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    steps(&mut criterion);
}

criterion_main!(benches);
