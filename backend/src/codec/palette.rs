//! A palette for a grid, for formats that store colour indices (GIF).
//!
//! A grid has at most a few thousand cells, so its colours are few: when they fit in
//! 256 entries the palette holds exactly the grid's colours and the variant shows the
//! averaged colours unchanged. Otherwise the colours are split by median cut (the box
//! of colours with the widest spread, weighted by how many cells use each colour, is
//! halved along its widest channel until there are enough boxes), each box becomes
//! its cells' mean colour, and each cell takes its nearest palette entry. There is no
//! dithering: a block stays one flat colour.
//!
//! Transparency in GIF is all or nothing: a cell less than half opaque becomes the
//! transparent entry, any other cell is drawn opaque.

use std::collections::HashMap;

use pixelator_shared::Grid;

/// The most entries a palette can have.
pub const MAX_ENTRIES: usize = 256;

/// A grid's cells as palette indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedGrid {
    /// Red, green, blue per entry.
    pub palette: Vec<[u8; 3]>,
    /// The entry that stands for "transparent", if any cell is.
    pub transparent: Option<u8>,
    /// One index per grid cell, row by row.
    pub indices: Vec<u8>,
}

impl IndexedGrid {
    /// The palette as consecutive red, green, blue bytes.
    pub fn palette_bytes(&self) -> Vec<u8> {
        self.palette.iter().flatten().copied().collect()
    }
}

/// Whether a cell is drawn at all in a format with one-bit transparency.
fn is_visible(cell: [u8; 4]) -> bool {
    cell[3] >= 128
}

/// The palette and indices for `grid`.
pub fn index_grid(grid: &Grid) -> IndexedGrid {
    let has_transparent = grid.cells().iter().any(|&cell| !is_visible(cell));
    let room = MAX_ENTRIES - usize::from(has_transparent);

    // Distinct visible colours and how many cells show each, in first-seen order so
    // the result does not depend on hashing.
    let mut counts: HashMap<[u8; 3], u32> = HashMap::new();
    let mut colours: Vec<[u8; 3]> = Vec::new();
    for &cell in grid.cells().iter().filter(|&&cell| is_visible(cell)) {
        let colour = [cell[0], cell[1], cell[2]];
        let count = counts.entry(colour).or_insert(0);
        if *count == 0 {
            colours.push(colour);
        }
        *count += 1;
    }

    let mut palette = if colours.len() <= room {
        colours.clone()
    } else {
        let weighted = colours
            .iter()
            .map(|colour| (*colour, counts[colour]))
            .collect();
        median_cut(weighted, room)
    };
    let visible_entries = palette.len();
    let transparent = has_transparent.then(|| {
        palette.push([0, 0, 0]);
        (palette.len() - 1) as u8
    });

    let mut lookup: HashMap<[u8; 3], u8> = HashMap::with_capacity(colours.len());
    for colour in colours {
        lookup.insert(colour, nearest(&palette[..visible_entries], colour));
    }
    let indices = grid
        .cells()
        .iter()
        .map(|&cell| match transparent {
            Some(index) if !is_visible(cell) => index,
            _ => lookup[&[cell[0], cell[1], cell[2]]],
        })
        .collect();
    IndexedGrid {
        palette,
        transparent,
        indices,
    }
}

/// The index of the entry of `palette` closest to `colour`.
fn nearest(palette: &[[u8; 3]], colour: [u8; 3]) -> u8 {
    let distance = |entry: &[u8; 3]| -> u32 {
        entry
            .iter()
            .zip(colour)
            .map(|(&a, b)| (a as i32 - b as i32).unsigned_abs().pow(2))
            .sum()
    };
    let (index, _) = palette
        .iter()
        .enumerate()
        .min_by_key(|(_, entry)| distance(entry))
        .expect("a palette for visible colours has at least one entry");
    index as u8
}

/// A set of colours with their cell counts.
struct ColourBox {
    colours: Vec<([u8; 3], u32)>,
}

impl ColourBox {
    /// The channel with the widest range, and that range.
    fn widest_channel(&self) -> (usize, u8) {
        (0..3)
            .map(|channel| {
                let values = self.colours.iter().map(|(colour, _)| colour[channel]);
                let low = values.clone().min().unwrap_or(0);
                let high = values.max().unwrap_or(0);
                (channel, high - low)
            })
            .max_by_key(|&(channel, range)| (range, std::cmp::Reverse(channel)))
            .unwrap_or((0, 0))
    }

    fn population(&self) -> u64 {
        self.colours.iter().map(|&(_, count)| count as u64).sum()
    }

    /// The box's mean colour, weighted by cell counts.
    fn mean(&self) -> [u8; 3] {
        let population = self.population().max(1);
        let mut sums = [0u64; 3];
        for &(colour, count) in &self.colours {
            for (sum, value) in sums.iter_mut().zip(colour) {
                *sum += value as u64 * count as u64;
            }
        }
        sums.map(|sum| ((sum + population / 2) / population) as u8)
    }

    /// Splits the box in two at the weighted median of its widest channel.
    fn split(mut self) -> (ColourBox, ColourBox) {
        let (channel, _) = self.widest_channel();
        self.colours.sort_by_key(|&(colour, _)| colour[channel]);
        let half = self.population() / 2;
        let mut seen = 0u64;
        let mut at = 1;
        for (index, &(_, count)) in self.colours.iter().enumerate() {
            seen += count as u64;
            if seen >= half {
                at = (index + 1).clamp(1, self.colours.len() - 1);
                break;
            }
        }
        let upper = self.colours.split_off(at);
        (self, ColourBox { colours: upper })
    }
}

/// At most `entries` colours that stand for `colours`.
fn median_cut(colours: Vec<([u8; 3], u32)>, entries: usize) -> Vec<[u8; 3]> {
    let mut boxes = vec![ColourBox { colours }];
    while boxes.len() < entries {
        // Split the box whose widest channel spreads furthest, ties to the fuller box.
        let candidate = boxes
            .iter()
            .enumerate()
            .filter(|(_, colour_box)| colour_box.colours.len() > 1)
            .max_by_key(|(_, colour_box)| (colour_box.widest_channel().1, colour_box.population()))
            .map(|(index, _)| index);
        let Some(index) = candidate else { break };
        let (lower, upper) = boxes.swap_remove(index).split();
        boxes.push(lower);
        boxes.push(upper);
    }
    boxes.iter().map(ColourBox::mean).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixelator_shared::GridShape;

    fn grid_of(cells: Vec<[u8; 4]>, columns: u32) -> Grid {
        let rows = cells.len() as u32 / columns;
        Grid::from_cells(GridShape::new(columns, rows), cells).unwrap()
    }

    #[test]
    fn few_colours_are_kept_exactly() {
        let cells = vec![
            [10, 20, 30, 255],
            [200, 100, 0, 255],
            [10, 20, 30, 255],
            [0, 0, 0, 10],
        ];
        let indexed = index_grid(&grid_of(cells, 2));
        assert_eq!(
            indexed.palette,
            vec![[10, 20, 30], [200, 100, 0], [0, 0, 0]]
        );
        assert_eq!(indexed.transparent, Some(2));
        assert_eq!(indexed.indices, vec![0, 1, 0, 2]);
    }

    #[test]
    fn many_colours_are_reduced_without_straying_far() {
        // 64 x 64 cells, every one a different colour on a smooth ramp.
        let cells: Vec<[u8; 4]> = (0..64u32 * 64)
            .map(|i| {
                [
                    (i % 64 * 4) as u8,
                    (i / 64 * 4) as u8,
                    ((i * 7) % 256) as u8,
                    255,
                ]
            })
            .collect();
        let grid = grid_of(cells.clone(), 64);
        let indexed = index_grid(&grid);
        assert_eq!(indexed.palette.len(), MAX_ENTRIES);
        assert_eq!(indexed.transparent, None);
        let worst = cells
            .iter()
            .zip(&indexed.indices)
            .map(|(cell, &index)| {
                let entry = indexed.palette[index as usize];
                (0..3)
                    .map(|c| (cell[c] as i32 - entry[c] as i32).abs())
                    .max()
                    .unwrap()
            })
            .max()
            .unwrap();
        assert!(worst <= 64, "a cell strayed {worst} levels from its colour");
    }

    #[test]
    fn a_fully_transparent_grid_needs_only_the_transparent_entry() {
        let indexed = index_grid(&grid_of(vec![[5, 5, 5, 0]; 4], 2));
        assert_eq!(indexed.palette.len(), 1);
        assert_eq!(indexed.transparent, Some(0));
        assert_eq!(indexed.indices, vec![0; 4]);
    }
}
