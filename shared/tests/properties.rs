//! Properties of the grid and render math that hold for any picture: checked on
//! random pictures, grid sizes and layouts with proptest.
//!
//! The bilinear filter reaches from a cell's centre to its neighbours' centres, so
//! re-gridding a rendered grid blends each cell with its neighbours; the round trips
//! that return a grid exactly are the ones that read one pixel per cell: rendering
//! at one pixel per cell and re-gridding, and rendering at any size and reading
//! each block's centre. Where the neighbours are all the same colour, re-gridding
//! any rendering returns the cell too, and it never leaves the neighbours' range.

#![cfg(not(target_arch = "wasm32"))]

use pixelator_shared::grid::grids_of;
use pixelator_shared::render::render_rgba;
use pixelator_shared::{BlockMap, Grid, GridShape, PixelLayout};
use proptest::prelude::*;

fn layouts() -> impl Strategy<Value = PixelLayout> {
    prop_oneof![
        Just(PixelLayout::Gray),
        Just(PixelLayout::GrayAlpha),
        Just(PixelLayout::Rgb),
        Just(PixelLayout::Rgba),
    ]
}

fn shapes() -> impl Strategy<Value = Vec<GridShape>> {
    prop::collection::vec((1u32..=70, 1u32..=70), 1..4).prop_map(|sizes| {
        sizes
            .into_iter()
            .map(|(c, r)| GridShape::new(c, r))
            .collect()
    })
}

/// A picture of `width x height` pixels in `layout`, of random samples.
fn pictures() -> impl Strategy<Value = (u32, u32, PixelLayout, Vec<u8>)> {
    (1u32..=90, 1u32..=90, layouts()).prop_flat_map(|(width, height, layout)| {
        let length = (width * height) as usize * layout.channels();
        prop::collection::vec(any::<u8>(), length)
            .prop_map(move |samples| (width, height, layout, samples))
    })
}

/// The colour a cell shows for a pixel of `layout` as RGBA.
fn as_rgba(pixel: &[u8], layout: PixelLayout) -> [u8; 4] {
    match (layout, pixel) {
        (PixelLayout::Gray, &[v]) => [v, v, v, 255],
        (PixelLayout::GrayAlpha, &[v, a]) => [v, v, v, a],
        (PixelLayout::Rgb, &[r, g, b]) => [r, g, b, 255],
        (PixelLayout::Rgba, &[r, g, b, a]) => [r, g, b, a],
        _ => unreachable!("pixel of the wrong length"),
    }
}

fn random_grid() -> impl Strategy<Value = Grid> {
    (1u32..=24, 1u32..=24).prop_flat_map(|(columns, rows)| {
        prop::collection::vec(any::<[u8; 3]>(), (columns * rows) as usize).prop_map(
            move |colours| {
                let cells = colours
                    .into_iter()
                    .map(|[r, g, b]| [r, g, b, 255])
                    .collect();
                Grid::from_cells(GridShape::new(columns, rows), cells).expect("matching count")
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_flat_picture_gives_flat_grids(
        (width, height) in (1u32..=120, 1u32..=120),
        layout in layouts(),
        pixel in any::<[u8; 4]>(),
        shapes in shapes(),
    ) {
        let pixel = &pixel[..layout.channels()];
        let samples = pixel.repeat((width * height) as usize);
        let grids = grids_of(&samples, width, height, layout, &shapes).expect("valid input");
        let colour = as_rgba(pixel, layout);
        for grid in &grids {
            let first = grid.cells()[0];
            prop_assert!(grid.cells().iter().all(|&cell| cell == first));
            prop_assert_eq!(first[3], colour[3]);
            if first[3] == 255 {
                prop_assert_eq!(first, colour);
            } else if first[3] > 0 {
                // Premultiplied to 8 bits and back: off by at most 255 / alpha.
                let allowed = 1 + 255 / first[3] as i32;
                for channel in 0..3 {
                    prop_assert!((first[channel] as i32 - colour[channel] as i32).abs() <= allowed);
                }
            }
        }
    }

    #[test]
    fn grid_values_lie_within_the_pictures_range_per_channel(
        (width, height, layout, samples) in pictures(),
        shapes in shapes(),
    ) {
        let grids = grids_of(&samples, width, height, layout, &shapes).expect("valid input");
        let pixels: Vec<[u8; 4]> = samples
            .chunks_exact(layout.channels())
            .map(|pixel| as_rgba(pixel, layout))
            .collect();
        // Colour is averaged premultiplied, so where alpha varies only alpha has to
        // stay in range; in opaque layouts every channel does.
        let channels = if layout.has_alpha() { 3..4 } else { 0..4 };
        for channel in channels {
            let low = pixels.iter().map(|pixel| pixel[channel]).min().expect("pixels");
            let high = pixels.iter().map(|pixel| pixel[channel]).max().expect("pixels");
            for grid in &grids {
                for cell in grid.cells() {
                    prop_assert!((low..=high).contains(&cell[channel]),
                        "channel {} of {:?} outside {}..={}", channel, cell, low, high);
                }
            }
        }
    }

    #[test]
    fn rendering_at_one_pixel_per_cell_and_regridding_returns_the_grid(grid in random_grid()) {
        let shape = grid.shape();
        let pixels = render_rgba(&grid, shape.columns, shape.rows).expect("a grid renders");
        let again = grids_of(&pixels, shape.columns, shape.rows, PixelLayout::Rgba, &[shape])
            .expect("valid input");
        prop_assert_eq!(&again[0], &grid);
    }

    #[test]
    fn the_centre_of_every_rendered_block_shows_its_cell(
        grid in random_grid(),
        (width_factor, height_factor) in (1.0f64..40.0, 1.0f64..40.0),
    ) {
        let shape = grid.shape();
        let width = (shape.columns as f64 * width_factor) as u32;
        let height = (shape.rows as f64 * height_factor) as u32;
        let pixels = render_rgba(&grid, width, height).expect("a grid renders");
        let columns = BlockMap::new(width, shape.columns);
        let rows = BlockMap::new(height, shape.rows);
        for row in 0..shape.rows {
            for column in 0..shape.columns {
                let x = columns.center(column).expect("at least a pixel per cell") as usize;
                let y = rows.center(row).expect("at least a pixel per cell") as usize;
                let at = (y * width as usize + x) * 4;
                prop_assert_eq!(&pixels[at..at + 4], &grid.cell(column, row)[..]);
            }
        }
    }

    #[test]
    fn regridding_a_rendering_stays_within_each_cells_neighbourhood(
        grid in random_grid(),
        (width_factor, height_factor) in (1u32..=12, 1u32..=12),
    ) {
        let shape = grid.shape();
        let (width, height) = (shape.columns * width_factor, shape.rows * height_factor);
        let pixels = render_rgba(&grid, width, height).expect("a grid renders");
        let again = &grids_of(&pixels, width, height, PixelLayout::Rgba, &[shape])
            .expect("valid input")[0];
        for row in 0..shape.rows {
            for column in 0..shape.columns {
                let neighbours: Vec<[u8; 4]> = (row.saturating_sub(1)..=(row + 1).min(shape.rows - 1))
                    .flat_map(|r| {
                        (column.saturating_sub(1)..=(column + 1).min(shape.columns - 1))
                            .map(move |c| (c, r))
                    })
                    .map(|(c, r)| grid.cell(c, r))
                    .collect();
                let cell = again.cell(column, row);
                for channel in 0..4 {
                    let low = neighbours.iter().map(|n| n[channel]).min().expect("itself");
                    let high = neighbours.iter().map(|n| n[channel]).max().expect("itself");
                    prop_assert!((low..=high).contains(&cell[channel]));
                }
                if neighbours.iter().all(|&n| n == grid.cell(column, row)) {
                    prop_assert_eq!(cell, grid.cell(column, row));
                }
            }
        }
    }
}
