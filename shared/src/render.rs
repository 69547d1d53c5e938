//! The enlarge step of pixelation: a grid drawn back at full size.
//!
//! Each output pixel takes the cell whose span holds its centre: pixel `x` of a row
//! `width` pixels wide takes grid column `floor((x + 0.5) * columns / width)`, which is
//! what Pillow's nearest-neighbour `resize` does. The same map is used down the
//! rows. [`BlockMap`] holds that map for one axis as the first pixel of each cell, so
//! encoders can walk a variant block by block without ever drawing it whole.

use crate::grid::{Grid, GridError};

/// The pixels each grid cell covers along one axis of the full-size image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockMap {
    length: u32,
    /// `starts[i]` is the first pixel of cell `i`; `starts[cells]` is `length`.
    starts: Vec<u32>,
}

impl BlockMap {
    /// The map of `cells` cells onto `length` pixels. A cell can cover no pixel at
    /// all when there are more cells than pixels.
    pub fn new(length: u32, cells: u32) -> BlockMap {
        let starts = (0..=cells)
            .map(|cell| {
                // Smallest x with floor((2x + 1) * cells / (2 * length)) >= cell.
                let numerator = (2 * cell as u64 * length as u64).saturating_sub(cells as u64);
                let denominator = 2 * cells as u64;
                (numerator.div_ceil(denominator) as u32).min(length)
            })
            .collect();
        BlockMap { length, starts }
    }

    /// Pixels along the axis.
    pub fn length(&self) -> u32 {
        self.length
    }

    /// Cells along the axis.
    pub fn cells(&self) -> u32 {
        self.starts.len() as u32 - 1
    }

    /// The pixels `start..end` cell `cell` covers.
    pub fn span(&self, cell: u32) -> std::ops::Range<u32> {
        self.starts[cell as usize]..self.starts[cell as usize + 1]
    }

    /// The cell that pixel `position` shows.
    pub fn cell_of(&self, position: u32) -> u32 {
        (self.starts.partition_point(|&start| start <= position) as u32).saturating_sub(1)
    }

    /// The pixel at the centre of a cell's span, or `None` for a cell that covers no
    /// pixel.
    pub fn center(&self, cell: u32) -> Option<u32> {
        let span = self.span(cell);
        (!span.is_empty()).then(|| (span.start + span.end - 1) / 2)
    }
}

/// Writes one full-size RGBA row of `grid`: output row `y` of an image `width x
/// height`, into `out` (`width * 4` bytes).
pub fn render_row(
    grid: &Grid,
    columns: &BlockMap,
    grid_row: u32,
    out: &mut [u8],
) -> Result<(), GridError> {
    let expected = columns.length() as usize * 4;
    if out.len() != expected {
        return Err(GridError::BufferSize {
            expected,
            actual: out.len(),
        });
    }
    let cells = grid.row(grid_row);
    for (cell, colour) in cells.iter().enumerate() {
        let span = columns.span(cell as u32);
        for pixel in out[span.start as usize * 4..span.end as usize * 4].chunks_exact_mut(4) {
            pixel.copy_from_slice(colour);
        }
    }
    Ok(())
}

/// The whole variant: `grid` enlarged to `width x height` RGBA pixels.
pub fn render_rgba(grid: &Grid, width: u32, height: u32) -> Result<Vec<u8>, GridError> {
    if width == 0 || height == 0 {
        return Err(GridError::EmptyImage { width, height });
    }
    let row_bytes = width as usize * 4;
    let total = row_bytes
        .checked_mul(height as usize)
        .ok_or(GridError::TooLarge { width, height })?;
    let columns = BlockMap::new(width, grid.shape().columns);
    let rows = BlockMap::new(height, grid.shape().rows);
    let mut pixels = vec![0u8; total];
    for grid_row in 0..grid.shape().rows {
        let span = rows.span(grid_row);
        if span.is_empty() {
            continue;
        }
        let first = span.start as usize * row_bytes;
        render_row(
            grid,
            &columns,
            grid_row,
            &mut pixels[first..first + row_bytes],
        )?;
        for y in span.start + 1..span.end {
            pixels.copy_within(first..first + row_bytes, y as usize * row_bytes);
        }
    }
    Ok(pixels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::GridShape;

    #[test]
    fn block_map_matches_pillows_nearest_neighbour() {
        for &(length, cells) in &[(2268, 8), (4032, 64), (533, 48), (7, 8), (1, 64), (100, 3)] {
            let map = BlockMap::new(length, cells);
            for x in 0..length {
                let expected = ((2 * x as u64 + 1) * cells as u64 / (2 * length as u64)) as u32;
                assert_eq!(
                    map.cell_of(x),
                    expected,
                    "{length} px, {cells} cells, x = {x}"
                );
                assert!(map.span(expected).contains(&x));
            }
        }
    }

    #[test]
    fn exact_ties_go_to_the_next_cell() {
        // Pixel 283 of 2268 sits exactly on the edge between cells 0 and 1 of 8:
        // (283 + 0.5) * 8 / 2268 = 1. The map uses exact integer arithmetic, so the
        // tie goes up; Pillow's floating point sends such ties either way, which
        // moves an edge by one pixel and never a block centre.
        let map = BlockMap::new(2268, 8);
        assert_eq!(map.span(0), 0..283);
        assert_eq!(map.span(1), 283..567);
        assert_eq!(map.span(7), 1984..2268);
        assert_eq!(map.center(0), Some(141));
    }

    #[test]
    fn more_cells_than_pixels_leaves_some_cells_unseen() {
        let map = BlockMap::new(3, 8);
        let seen: Vec<u32> = (0..3).map(|x| map.cell_of(x)).collect();
        assert_eq!(seen, vec![1, 4, 6]);
        assert_eq!(map.center(0), None);
    }

    #[test]
    fn render_draws_each_cell_over_its_span() {
        let cells = vec![
            [1, 2, 3, 255],
            [4, 5, 6, 255],
            [7, 8, 9, 255],
            [10, 11, 12, 128],
        ];
        let grid = Grid::from_cells(GridShape::new(2, 2), cells).unwrap();
        let pixels = render_rgba(&grid, 5, 3).unwrap();
        let at = |x: usize, y: usize| &pixels[(y * 5 + x) * 4..(y * 5 + x) * 4 + 4];
        assert_eq!(at(0, 0), [1, 2, 3, 255]);
        assert_eq!(at(1, 0), [1, 2, 3, 255]);
        assert_eq!(at(2, 0), [4, 5, 6, 255]);
        assert_eq!(at(0, 2), [7, 8, 9, 255]);
        assert_eq!(at(4, 2), [10, 11, 12, 128]);
        assert_eq!(
            render_rgba(&grid, 0, 3),
            Err(GridError::EmptyImage {
                width: 0,
                height: 3
            })
        );
    }
}
