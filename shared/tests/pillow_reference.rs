//! The grid and block-map math against Pillow's own answers, natively and in a browser.
//!
//! `data/pillow-reference.json` holds what Pillow 13 computes for two test images
//! (`resize((n, n), BILINEAR)`) and for a set of nearest-neighbour enlargements,
//! written by `data/make_pillow_reference.py`. The images themselves are drawn from a
//! formula both sides repeat, so only Pillow's results are stored.
//!
//! The same tests run on the host and, compiled to WebAssembly, in headless Chromium
//! (`wasm-bindgen-test-runner`), so the page's previews are held to the very values
//! the pipeline is held to.

use pixelator_shared::grid::grids_of;
use pixelator_shared::render::{BlockMap, render_rgba};
use pixelator_shared::{GridShape, PixelLayout};
use serde::Deserialize;
use std::collections::BTreeMap;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const REFERENCE: &str = include_str!("data/pillow-reference.json");

#[derive(Deserialize)]
struct Reference {
    images: Vec<ReferenceImage>,
    block_maps: Vec<ReferenceBlockMap>,
}

#[derive(Deserialize)]
struct ReferenceImage {
    name: String,
    mode: String,
    width: u32,
    height: u32,
    seed: u32,
    /// Grid size to Pillow's resized bytes in the image's mode, as hex.
    grids: BTreeMap<u32, String>,
}

#[derive(Deserialize)]
struct ReferenceBlockMap {
    length: u32,
    cells: u32,
    starts: Vec<u32>,
}

fn reference() -> Reference {
    serde_json::from_str(REFERENCE).expect("the reference file is valid JSON")
}

/// The test image, as RGBA bytes: the formula of `make_pillow_reference.py`.
fn pattern(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut state = seed;
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
    for y in 0..height {
        for x in 0..width {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = state >> 24;
            let red = x * 255 / (width - 1);
            let green = y * 255 / (height - 1);
            let blue = (noise + 5 * x + 3 * y) % 256;
            let alpha = if 3 * x < width {
                255
            } else if 3 * x < 2 * width {
                noise
            } else if 2 * y < height {
                0
            } else {
                128
            };
            pixels.extend([red, green, blue, alpha].map(|sample| sample as u8));
        }
    }
    pixels
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex digits"))
        .collect()
}

#[test]
fn grids_match_pillow_bilinear_within_a_level() {
    for image in reference().images {
        let rgba = pattern(image.width, image.height, image.seed);
        let (layout, pixels) = match image.mode.as_str() {
            "RGBA" => (PixelLayout::Rgba, rgba),
            "RGB" => (
                PixelLayout::Rgb,
                rgba.chunks_exact(4)
                    .flat_map(|pixel| [pixel[0], pixel[1], pixel[2]])
                    .collect(),
            ),
            other => panic!("unexpected mode {other}"),
        };
        let shapes: Vec<GridShape> = image.grids.keys().map(|&n| GridShape::new(n, n)).collect();
        let grids =
            grids_of(&pixels, image.width, image.height, layout, &shapes).expect("valid input");

        for (grid, (size, expected)) in grids.iter().zip(&image.grids) {
            let expected = from_hex(expected);
            let channels = layout.channels();
            assert_eq!(
                expected.len(),
                grid.cells().len() * channels,
                "{} n={size}",
                image.name
            );
            let mut worst = 0;
            for (index, (ours, theirs)) in grid
                .cells()
                .iter()
                .zip(expected.chunks_exact(channels))
                .enumerate()
            {
                let alpha = if channels == 4 { theirs[3] } else { 255 };
                assert!(
                    ours[3].abs_diff(alpha) <= 1,
                    "{} n={size} cell {index}: alpha {ours:?} vs {theirs:?}",
                    image.name
                );
                if alpha == 0 {
                    continue;
                }
                // A level of rounding in the premultiplied sums grows by 255 / alpha
                // once the colour is divided by alpha again.
                let allowed = 1 + 255 / u32::from(alpha.max(ours[3]).max(1));
                for channel in 0..3 {
                    let difference = u32::from(ours[channel].abs_diff(theirs[channel]));
                    worst = worst.max(difference);
                    assert!(
                        difference <= allowed,
                        "{} n={size} cell {index}: {ours:?} vs Pillow {theirs:?}",
                        image.name
                    );
                }
            }
            if layout == PixelLayout::Rgb {
                assert!(
                    worst <= 1,
                    "{} n={size}: worst difference {worst}",
                    image.name
                );
            }
        }
    }
}

/// The cell Pillow's nearest-neighbour enlargement picks for `position`.
fn pillow_cell(starts: &[u32], position: u32) -> u32 {
    starts.partition_point(|&start| start <= position) as u32 - 1
}

#[test]
fn block_maps_match_pillow_nearest_except_at_exact_ties() {
    for map in reference().block_maps {
        let ours = BlockMap::new(map.length, map.cells);
        assert_eq!(ours.cells(), map.cells);
        assert_eq!(ours.span(map.cells - 1).end, map.length);
        for position in 0..map.length {
            let cell = ours.cell_of(position);
            assert!(
                ours.span(cell).contains(&position),
                "pixel {position} of {}",
                map.length
            );
            let theirs = pillow_cell(&map.starts, position);
            if cell == theirs {
                continue;
            }
            // Where (x + 0.5) * cells / length is a whole number, Pillow's floating
            // point lands on either side; the block map takes the exact value.
            let numerator = (2 * position + 1) as u64 * map.cells as u64;
            let denominator = 2 * map.length as u64;
            assert!(
                numerator.is_multiple_of(denominator) && u64::from(cell) == numerator / denominator,
                "{} cells over {} pixels: pixel {position} in cell {cell}, Pillow says {theirs}",
                map.cells,
                map.length
            );
        }
    }
}

#[test]
fn rendering_draws_each_cell_over_its_block() {
    let image = reference().images.remove(0);
    let pixels = pattern(image.width, image.height, image.seed);
    let shape = GridShape::new(16, 16);
    let grids = grids_of(
        &pixels,
        image.width,
        image.height,
        PixelLayout::Rgba,
        &[shape],
    );
    let grid = &grids.expect("valid input")[0];
    let rendered = render_rgba(grid, image.width, image.height).expect("a valid size");
    assert_eq!(rendered.len(), pixels.len());

    let columns = BlockMap::new(image.width, shape.columns);
    let rows = BlockMap::new(image.height, shape.rows);
    for y in 0..image.height {
        for x in 0..image.width {
            let at = (y as usize * image.width as usize + x as usize) * 4;
            let cell = grid.cell(columns.cell_of(x), rows.cell_of(y));
            assert_eq!(rendered[at..at + 4], cell, "pixel ({x}, {y})");
        }
    }
}
