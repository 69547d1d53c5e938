//! Grids of pseudo-random colours for the encoders' unit tests: every cell differs
//! from its neighbours, the hardest case for a writer that works from the grid.

use pixelator_shared::grid::{Grid, GridShape};

/// A `columns` x `rows` grid of colours drawn from `seed` (xorshift), opaque unless
/// `alpha`, when the alpha channel is drawn too.
pub(crate) fn random_grid(columns: u32, rows: u32, seed: u32, alpha: bool) -> Grid {
    let mut state = seed.wrapping_mul(2_654_435_761) | 1;
    let cells = (0..columns * rows)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let [r, g, b, a] = state.to_le_bytes();
            [r, g, b, if alpha { a } else { 255 }]
        })
        .collect();
    Grid::from_cells(GridShape::new(columns, rows), cells).expect("cells match the shape")
}
