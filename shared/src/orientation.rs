//! EXIF orientation: how a photo's stored pixels are turned to be seen upright.
//!
//! Cameras store the sensor's pixels as read and record in an EXIF tag how to turn
//! them. The pipeline computes grids on the stored pixels and turns the small grid,
//! not the full image: the grid filter is separable and the same along both axes,
//! so turning before or after gives the same cells.

use crate::grid::{Grid, GridShape};

/// One of the eight EXIF orientations (tag 0x0112).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Orientation {
    /// 1: stored upright.
    #[default]
    Normal,
    /// 2: mirrored left to right.
    FlipHorizontal,
    /// 3: upside down.
    Rotate180,
    /// 4: mirrored top to bottom.
    FlipVertical,
    /// 5: mirrored along the main diagonal.
    Transpose,
    /// 6: to be turned 90 degrees clockwise.
    Rotate90,
    /// 7: mirrored along the other diagonal.
    Transverse,
    /// 8: to be turned 90 degrees counter-clockwise.
    Rotate270,
}

impl Orientation {
    /// The orientation for an EXIF value; anything outside 1..=8 reads as upright,
    /// as viewers treat it.
    pub fn from_exif(value: u16) -> Orientation {
        match value {
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => Orientation::Normal,
        }
    }

    /// The EXIF value, 1 to 8.
    pub fn exif_value(self) -> u16 {
        match self {
            Orientation::Normal => 1,
            Orientation::FlipHorizontal => 2,
            Orientation::Rotate180 => 3,
            Orientation::FlipVertical => 4,
            Orientation::Transpose => 5,
            Orientation::Rotate90 => 6,
            Orientation::Transverse => 7,
            Orientation::Rotate270 => 8,
        }
    }

    /// Whether turning upright swaps width and height.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Transpose
                | Orientation::Rotate90
                | Orientation::Transverse
                | Orientation::Rotate270
        )
    }

    /// The upright size of an image stored as `width x height`.
    pub fn upright_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// The stored pixel shown at upright position `x`, `y` of an image stored as
    /// `width x height`.
    pub fn stored_position(self, x: u32, y: u32, width: u32, height: u32) -> (u32, u32) {
        let (last_x, last_y) = (width - 1, height - 1);
        match self {
            Orientation::Normal => (x, y),
            Orientation::FlipHorizontal => (last_x - x, y),
            Orientation::Rotate180 => (last_x - x, last_y - y),
            Orientation::FlipVertical => (x, last_y - y),
            Orientation::Transpose => (y, x),
            Orientation::Rotate90 => (y, last_y - x),
            Orientation::Transverse => (last_x - y, last_y - x),
            Orientation::Rotate270 => (last_x - y, x),
        }
    }

    /// A grid computed on stored pixels, turned upright.
    pub fn apply(self, grid: &Grid) -> Grid {
        if self == Orientation::Normal {
            return grid.clone();
        }
        let stored = grid.shape();
        let upright = if self.swaps_axes() {
            stored.transposed()
        } else {
            stored
        };
        let mut cells = Vec::with_capacity(stored.cells());
        for y in 0..upright.rows {
            for x in 0..upright.columns {
                let (column, row) = self.stored_position(x, y, stored.columns, stored.rows);
                cells.push(grid.cell(column, row));
            }
        }
        Grid::from_cells(upright, cells).expect("a turned grid has as many cells as the original")
    }

    /// The shape to compute on stored pixels so that, turned, it is `upright`.
    pub fn stored_shape(self, upright: GridShape) -> GridShape {
        if self.swaps_axes() {
            upright.transposed()
        } else {
            upright
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(columns: u32, rows: u32) -> Grid {
        let cells = (0..columns * rows).map(|i| [i as u8, 0, 0, 255]).collect();
        Grid::from_cells(GridShape::new(columns, rows), cells).unwrap()
    }

    #[test]
    fn rotate_90_puts_the_stored_left_column_on_top() {
        // Stored 3x2: 0 1 2 / 3 4 5. Turned clockwise: 3 0 / 4 1 / 5 2.
        let turned = Orientation::Rotate90.apply(&numbered(3, 2));
        assert_eq!(turned.shape(), GridShape::new(2, 3));
        let firsts: Vec<u8> = turned.cells().iter().map(|cell| cell[0]).collect();
        assert_eq!(firsts, vec![3, 0, 4, 1, 5, 2]);
    }

    #[test]
    fn rotate_270_puts_the_stored_right_column_on_top() {
        let turned = Orientation::Rotate270.apply(&numbered(3, 2));
        let firsts: Vec<u8> = turned.cells().iter().map(|cell| cell[0]).collect();
        assert_eq!(firsts, vec![2, 5, 1, 4, 0, 3]);
    }

    #[test]
    fn every_orientation_is_a_permutation_and_round_trips_its_value() {
        for value in 1..=8 {
            let orientation = Orientation::from_exif(value);
            assert_eq!(orientation.exif_value(), value);
            let mut firsts: Vec<u8> = orientation
                .apply(&numbered(4, 3))
                .cells()
                .iter()
                .map(|cell| cell[0])
                .collect();
            firsts.sort_unstable();
            assert_eq!(firsts, (0..12).collect::<Vec<u8>>());
        }
        assert_eq!(Orientation::from_exif(0), Orientation::Normal);
        assert_eq!(Orientation::from_exif(9), Orientation::Normal);
    }
}
