//! The grid step of pixelation: shrink a whole image to a small grid of cells.
//!
//! The filter is the one Pillow's `Image.resize(size, BILINEAR)` applies, which the
//! classic pipeline uses: a triangle whose support widens with the reduction factor,
//! so every source pixel contributes to the cells around it. Pillow resizes in two
//! separable passes, horizontal first, rounding to 8 bits in between; images with
//! alpha are resized premultiplied so that transparent pixels lend no colour. This
//! module computes the same thing, to within one level of Pillow's fixed-point
//! rounding.
//!
//! The image arrives one row at a time through a [`GridBuilder`], which keeps only
//! the running sums for the grids it was asked for, so a decoder can stream rows into
//! it and never hold the whole picture. Several grids are computed in one pass.
//!
//! The horizontal pass does not weight each pixel for each cell. The triangle is
//! linear on either side of a cell's centre, so a cell's weighted sum follows from
//! two running sums over the row, `Σp` and `Σx·p`, read at the ends and the centre of
//! the cell's support; one pass over a row serves every grid size at once. The sums
//! are exact integers, so no precision is lost however wide the row.
//!
//! Degenerate input has a defined result and never panics: a zero-sized image, a
//! zero-sized grid, a row of the wrong length or too many rows are
//! [`GridError`]s; a grid with more cells than the image has pixels is computed as
//! Pillow computes it (each cell samples the pixels nearest its centre).

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a grid size `n` maps onto an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GridMode {
    /// `n x n` cells whatever the aspect ratio, so the blocks of a 4:3 photo are not
    /// square. The classic pipeline's behaviour.
    #[default]
    Classic,
    /// `n` cells along the longer side and as many along the shorter side as keeps
    /// the blocks square (at least one).
    Square,
}

impl GridMode {
    /// The mode's name as written in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            GridMode::Classic => "classic",
            GridMode::Square => "square",
        }
    }
}

impl std::str::FromStr for GridMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "classic" => Ok(GridMode::Classic),
            "square" => Ok(GridMode::Square),
            other => Err(format!(
                "unknown grid mode {other:?} (expected classic or square)"
            )),
        }
    }
}

/// The number of cells of a grid across and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GridShape {
    /// Cells across.
    pub columns: u32,
    /// Cells down.
    pub rows: u32,
}

impl GridShape {
    /// A grid of `columns x rows` cells.
    pub fn new(columns: u32, rows: u32) -> Self {
        GridShape { columns, rows }
    }

    /// The grid for size `size` on an image of `width x height` pixels in `mode`.
    pub fn for_image(
        width: u32,
        height: u32,
        size: u32,
        mode: GridMode,
    ) -> Result<GridShape, GridError> {
        if width == 0 || height == 0 {
            return Err(GridError::EmptyImage { width, height });
        }
        if size == 0 {
            return Err(GridError::EmptyGrid);
        }
        let shape = match mode {
            GridMode::Classic => GridShape::new(size, size),
            GridMode::Square => {
                let (long, short) = (width.max(height) as u64, width.min(height) as u64);
                let across_short = ((size as u64 * short * 2 + long) / (2 * long)).max(1) as u32;
                if width >= height {
                    GridShape::new(size, across_short)
                } else {
                    GridShape::new(across_short, size)
                }
            }
        };
        Ok(shape)
    }

    /// The same grid with columns and rows swapped.
    pub fn transposed(self) -> GridShape {
        GridShape::new(self.rows, self.columns)
    }

    /// Number of cells.
    pub fn cells(self) -> usize {
        self.columns as usize * self.rows as usize
    }
}

impl fmt::Display for GridShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.columns, self.rows)
    }
}

/// How the 8-bit samples of an input row are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelLayout {
    /// One grey sample per pixel.
    Gray,
    /// Grey and alpha.
    GrayAlpha,
    /// Red, green, blue.
    Rgb,
    /// Red, green, blue, alpha (straight, not premultiplied).
    Rgba,
}

impl PixelLayout {
    /// Samples per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelLayout::Gray => 1,
            PixelLayout::GrayAlpha => 2,
            PixelLayout::Rgb => 3,
            PixelLayout::Rgba => 4,
        }
    }

    /// Whether the last sample is alpha.
    pub fn has_alpha(self) -> bool {
        matches!(self, PixelLayout::GrayAlpha | PixelLayout::Rgba)
    }
}

/// Why a grid could not be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GridError {
    /// The image has no pixels.
    EmptyImage {
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
    /// A grid of zero cells was asked for.
    EmptyGrid,
    /// No grid was asked for at all.
    NoGrids,
    /// A buffer does not hold exactly the pixels its size says.
    BufferSize {
        /// Bytes a buffer of that size and layout holds.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// More rows were pushed than the image has.
    TooManyRows {
        /// Rows in the image.
        height: u32,
    },
    /// The grid was finished before every row was pushed.
    MissingRows {
        /// Rows pushed.
        pushed: u32,
        /// Rows in the image.
        height: u32,
    },
    /// The image is too large to address on this platform.
    TooLarge {
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
}

impl fmt::Display for GridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GridError::EmptyImage { width, height } => {
                write!(f, "image has no pixels ({width}x{height})")
            }
            GridError::EmptyGrid => f.write_str("grid size must be at least 1"),
            GridError::NoGrids => f.write_str("no grid sizes were asked for"),
            GridError::BufferSize { expected, actual } => {
                write!(f, "pixel buffer holds {actual} bytes, expected {expected}")
            }
            GridError::TooManyRows { height } => {
                write!(f, "more rows pushed than the image's height of {height}")
            }
            GridError::MissingRows { pushed, height } => {
                write!(f, "only {pushed} of {height} rows were pushed")
            }
            GridError::TooLarge { width, height } => {
                write!(f, "image of {width}x{height} is too large to address")
            }
        }
    }
}

impl std::error::Error for GridError {}

/// A computed grid: straight (not premultiplied) RGBA cells, row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    shape: GridShape,
    cells: Vec<[u8; 4]>,
}

impl Grid {
    /// A grid from its cells, row by row; the count must match the shape.
    pub fn from_cells(shape: GridShape, cells: Vec<[u8; 4]>) -> Result<Grid, GridError> {
        if shape.columns == 0 || shape.rows == 0 {
            return Err(GridError::EmptyGrid);
        }
        if cells.len() != shape.cells() {
            return Err(GridError::BufferSize {
                expected: shape.cells() * 4,
                actual: cells.len() * 4,
            });
        }
        Ok(Grid { shape, cells })
    }

    /// The grid's shape.
    pub fn shape(&self) -> GridShape {
        self.shape
    }

    /// All cells, row by row.
    pub fn cells(&self) -> &[[u8; 4]] {
        &self.cells
    }

    /// One row of cells.
    pub fn row(&self, row: u32) -> &[[u8; 4]] {
        let columns = self.shape.columns as usize;
        let start = row as usize * columns;
        &self.cells[start..start + columns]
    }

    /// The cell at `column`, `row`.
    pub fn cell(&self, column: u32, row: u32) -> [u8; 4] {
        self.row(row)[column as usize]
    }

    /// Whether every cell is fully opaque.
    pub fn is_opaque(&self) -> bool {
        self.cells.iter().all(|cell| cell[3] == 255)
    }

    /// Whether every cell is grey (red, green and blue equal).
    pub fn is_gray(&self) -> bool {
        self.cells.iter().all(|&[r, g, b, _]| r == g && g == b)
    }
}

/// The grids of every shape in `shapes` for an image held whole in memory.
///
/// `pixels` holds `height` rows of `width` pixels in `layout`, tightly packed.
pub fn grids_of(
    pixels: &[u8],
    width: u32,
    height: u32,
    layout: PixelLayout,
    shapes: &[GridShape],
) -> Result<Vec<Grid>, GridError> {
    let row_bytes = row_bytes(width, layout)?;
    let expected = row_bytes
        .checked_mul(height as usize)
        .ok_or(GridError::TooLarge { width, height })?;
    if pixels.len() != expected {
        return Err(GridError::BufferSize {
            expected,
            actual: pixels.len(),
        });
    }
    let mut builder = GridBuilder::new(width, height, layout, shapes)?;
    for row in pixels.chunks_exact(row_bytes.max(1)) {
        builder.push_row(row)?;
    }
    builder.finish()
}

fn row_bytes(width: u32, layout: PixelLayout) -> Result<usize, GridError> {
    (width as usize)
        .checked_mul(layout.channels())
        .ok_or(GridError::TooLarge { width, height: 0 })
}

/// Computes grids from an image streamed in row by row, top to bottom.
///
/// Memory is proportional to the image's width and the grids' cells, never to the
/// image's height.
#[derive(Clone, Debug)]
pub struct GridBuilder {
    width: u32,
    height: u32,
    layout: PixelLayout,
    rows_pushed: u32,
    /// Distinct column counts among the grids, each with its horizontal plan.
    horizontal: Vec<HorizontalPlan>,
    /// Every position in a row where some plan reads the running sums, ascending.
    breakpoints: Vec<u32>,
    /// One per requested grid, in the order asked.
    targets: Vec<Target>,
    /// Running sums at each breakpoint for the current row: `Σp` then `Σx·p` per
    /// channel.
    snapshots: Vec<u64>,
    /// The current row, premultiplied where it has alpha.
    scratch: Vec<u16>,
}

/// Where one output cell reads a row and how it weighs what it reads.
#[derive(Clone, Copy, Debug)]
struct CellSpan {
    /// First pixel of the support.
    start: u32,
    /// First pixel right of the cell's centre.
    split: u32,
    /// One past the last pixel of the support.
    end: u32,
    /// Centre of the cell in pixel coordinates.
    center: f64,
    /// Width of the triangle's half (the reduction factor, at least 1).
    half_width: f64,
    /// One over the sum of the cell's discrete weights.
    norm: f64,
}

impl CellSpan {
    /// The weight of pixel `position` in this cell, normalised.
    fn weight(&self, position: u32) -> f64 {
        let distance = (position as f64 + 0.5 - self.center).abs() / self.half_width;
        (1.0 - distance).max(0.0) * self.norm
    }
}

/// Pillow's support and weights for the cells of one axis of `length` samples that
/// stand for an axis `extent` samples long (the same as `length` but for a picture
/// at reduced scale, see [`GridBuilder::with_extent`]): the filter's geometry
/// follows the extent, the support is clipped to the samples there are.
fn scaled_axis_spans(length: u32, extent: f64, cells: u32) -> Vec<CellSpan> {
    let scale = extent / cells as f64;
    let half_width = scale.max(1.0);
    (0..cells)
        .map(|cell| {
            let center = (cell as f64 + 0.5) * scale;
            let start = ((center - half_width + 0.5).floor().max(0.0) as u32).min(length - 1);
            let end = ((center + half_width + 0.5).floor() as u32).clamp(start + 1, length);
            let split = ((center - 0.5).floor() + 1.0).clamp(start as f64, end as f64) as u32;
            let mut span = CellSpan {
                start,
                split,
                end,
                center,
                half_width,
                norm: 1.0,
            };
            let total: f64 = (start..end).map(|position| span.weight(position)).sum();
            span.norm = if total > 0.0 { 1.0 / total } else { 0.0 };
            span
        })
        .collect()
}

#[derive(Clone, Debug)]
struct HorizontalPlan {
    /// For each span, the indices into the breakpoints of its start, split and end.
    reads: Vec<[usize; 3]>,
    /// For each span, the constants of its triangle's two sides, worked out once
    /// rather than for every row (see [`TriangleSides`]).
    sides: Vec<TriangleSides>,
    /// The current row reduced to this plan's columns, premultiplied, 8 bits, as
    /// Pillow keeps it between its two passes.
    reduced: Vec<f64>,
}

#[derive(Clone, Debug)]
struct Target {
    shape: GridShape,
    plan: usize,
    rows: Vec<CellSpan>,
    /// First output row whose support has not yet ended.
    first_open_row: usize,
    /// Weighted sums per cell and channel, row by row.
    sums: Vec<f64>,
}

impl GridBuilder {
    /// A builder for an image of `width x height` pixels in `layout`, computing one
    /// grid for each of `shapes`.
    pub fn new(
        width: u32,
        height: u32,
        layout: PixelLayout,
        shapes: &[GridShape],
    ) -> Result<GridBuilder, GridError> {
        GridBuilder::with_extent(width, height, (width as f64, height as f64), layout, shapes)
    }

    /// A builder for `width x height` samples that stand for an image whose size, in
    /// units of one sample, is `extent` (width, height), which may be fractional
    /// and at most one sample smaller than the sample counts.
    ///
    /// This is for a picture decoded at a reduced scale: a JPEG's DC coefficients
    /// give one sample per 8x8 block, so a 6028-pixel-wide photo gives 754 samples
    /// standing for 753.5. Sample `x` is centred at `x + 0.5` as usual; the grid
    /// cells are laid out over the extent, exactly where they lie on the full image.
    pub fn with_extent(
        width: u32,
        height: u32,
        extent: (f64, f64),
        layout: PixelLayout,
        shapes: &[GridShape],
    ) -> Result<GridBuilder, GridError> {
        let (extent_width, extent_height) = extent;
        if width == 0 || height == 0 || !(extent_width > 0.0 && extent_height > 0.0) {
            return Err(GridError::EmptyImage { width, height });
        }
        if shapes.is_empty() {
            return Err(GridError::NoGrids);
        }
        if shapes
            .iter()
            .any(|shape| shape.columns == 0 || shape.rows == 0)
        {
            return Err(GridError::EmptyGrid);
        }
        let channels = layout.channels();
        row_bytes(width, layout)?;

        let mut column_counts: Vec<u32> = shapes.iter().map(|shape| shape.columns).collect();
        column_counts.sort_unstable();
        column_counts.dedup();
        let column_spans: Vec<Vec<CellSpan>> = column_counts
            .iter()
            .map(|&columns| scaled_axis_spans(width, extent_width, columns))
            .collect();

        let mut breakpoints: Vec<u32> = column_spans
            .iter()
            .flatten()
            .flat_map(|span| [span.start, span.split, span.end])
            .collect();
        breakpoints.sort_unstable();
        breakpoints.dedup();
        let index_of = |position: u32| {
            breakpoints
                .binary_search(&position)
                .expect("every span position is a breakpoint")
        };

        let horizontal = column_spans
            .into_iter()
            .map(|spans| HorizontalPlan {
                reads: spans
                    .iter()
                    .map(|span| {
                        [
                            index_of(span.start),
                            index_of(span.split),
                            index_of(span.end),
                        ]
                    })
                    .collect(),
                sides: spans.iter().map(TriangleSides::of).collect(),
                reduced: vec![0.0; spans.len() * channels],
            })
            .collect();

        let targets = shapes
            .iter()
            .map(|&shape| Target {
                shape,
                plan: column_counts
                    .binary_search(&shape.columns)
                    .expect("counted above"),
                rows: scaled_axis_spans(height, extent_height, shape.rows),
                first_open_row: 0,
                sums: vec![0.0; shape.cells() * channels],
            })
            .collect();

        Ok(GridBuilder {
            width,
            height,
            layout,
            rows_pushed: 0,
            horizontal,
            snapshots: vec![0; breakpoints.len() * 2 * channels],
            breakpoints,
            targets,
            scratch: vec![0; width as usize * channels],
        })
    }

    /// The image's width, height and layout as given to [`GridBuilder::new`].
    pub fn image(&self) -> (u32, u32, PixelLayout) {
        (self.width, self.height, self.layout)
    }

    /// Rows pushed so far.
    pub fn rows_pushed(&self) -> u32 {
        self.rows_pushed
    }

    /// Adds the next row of the image, `width` pixels in the builder's layout.
    pub fn push_row(&mut self, row: &[u8]) -> Result<(), GridError> {
        let channels = self.layout.channels();
        let expected = self.width as usize * channels;
        if row.len() != expected {
            return Err(GridError::BufferSize {
                expected,
                actual: row.len(),
            });
        }
        if self.rows_pushed == self.height {
            return Err(GridError::TooManyRows {
                height: self.height,
            });
        }

        self.load_row(row);
        self.take_snapshots();
        for plan in &mut self.horizontal {
            plan.reduce(&self.snapshots, channels);
        }

        let y = self.rows_pushed;
        for target in &mut self.targets {
            target.accumulate(y, &self.horizontal[target.plan].reduced, channels);
        }
        self.rows_pushed += 1;
        Ok(())
    }

    /// Copies a row into the scratch buffer, premultiplying colour by alpha the way
    /// Pillow does (rounded to 8 bits).
    fn load_row(&mut self, row: &[u8]) {
        match self.layout {
            PixelLayout::Gray => load_pixels::<1>(row, &mut self.scratch, false),
            PixelLayout::GrayAlpha => load_pixels::<2>(row, &mut self.scratch, true),
            PixelLayout::Rgb => load_pixels::<3>(row, &mut self.scratch, false),
            PixelLayout::Rgba => load_pixels::<4>(row, &mut self.scratch, true),
        }
    }

    /// Walks the row once, recording `Σp` and `Σx·p` per channel at every breakpoint.
    fn take_snapshots(&mut self) {
        let (scratch, breakpoints, snapshots) =
            (&self.scratch, &self.breakpoints, &mut self.snapshots);
        match self.layout.channels() {
            1 => snapshot_sums::<1>(scratch, breakpoints, snapshots),
            2 => snapshot_sums::<2>(scratch, breakpoints, snapshots),
            3 => snapshot_sums::<3>(scratch, breakpoints, snapshots),
            _ => snapshot_sums::<4>(scratch, breakpoints, snapshots),
        }
    }

    /// The finished grids, in the order their shapes were given.
    pub fn finish(self) -> Result<Vec<Grid>, GridError> {
        if self.rows_pushed != self.height {
            return Err(GridError::MissingRows {
                pushed: self.rows_pushed,
                height: self.height,
            });
        }
        let layout = self.layout;
        Ok(self
            .targets
            .into_iter()
            .map(|target| target.into_grid(layout))
            .collect())
    }
}

/// [`GridBuilder::load_row`] for pixels of `CHANNELS` samples, the last of them
/// alpha when `has_alpha`. The channel count is a constant so that the loop over a
/// pixel's samples unrolls: this and [`snapshot_sums`] are the only steps that
/// touch every pixel.
fn load_pixels<const CHANNELS: usize>(row: &[u8], scratch: &mut [u16], has_alpha: bool) {
    let pixels = row
        .chunks_exact(CHANNELS)
        .zip(scratch.chunks_exact_mut(CHANNELS));
    if has_alpha {
        for (pixel, out) in pixels {
            let alpha = pixel[CHANNELS - 1] as u32;
            for channel in 0..CHANNELS - 1 {
                out[channel] = multiply_div_255(pixel[channel] as u32, alpha) as u16;
            }
            out[CHANNELS - 1] = alpha as u16;
        }
    } else {
        for (pixel, out) in pixels {
            for channel in 0..CHANNELS {
                out[channel] = pixel[channel] as u16;
            }
        }
    }
}

/// [`GridBuilder::take_snapshots`] for pixels of `CHANNELS` samples: the running
/// `Σp` and `Σx·p` of each channel, written at every breakpoint as `CHANNELS`
/// sums then `CHANNELS` moments.
fn snapshot_sums<const CHANNELS: usize>(
    scratch: &[u16],
    breakpoints: &[u32],
    snapshots: &mut [u64],
) {
    let mut sum = [0u64; CHANNELS];
    let mut moment = [0u64; CHANNELS];
    let mut position = 0u32;
    for (&breakpoint, slot) in breakpoints
        .iter()
        .zip(snapshots.chunks_exact_mut(2 * CHANNELS))
    {
        let segment = &scratch[position as usize * CHANNELS..breakpoint as usize * CHANNELS];
        for (x, pixel) in (position as u64..).zip(segment.chunks_exact(CHANNELS)) {
            for channel in 0..CHANNELS {
                let sample = pixel[channel] as u64;
                sum[channel] += sample;
                moment[channel] += x * sample;
            }
        }
        position = breakpoint;
        slot[..CHANNELS].copy_from_slice(&sum);
        slot[CHANNELS..].copy_from_slice(&moment);
    }
}

impl HorizontalPlan {
    /// Reduces the current row to this plan's columns from the breakpoint snapshots.
    fn reduce(&mut self, snapshots: &[u64], channels: usize) {
        match channels {
            1 => self.reduce_channels::<1>(snapshots),
            2 => self.reduce_channels::<2>(snapshots),
            3 => self.reduce_channels::<3>(snapshots),
            _ => self.reduce_channels::<4>(snapshots),
        }
    }

    fn reduce_channels<const CHANNELS: usize>(&mut self, snapshots: &[u64]) {
        let at = |index: usize, channel: usize| {
            let slot = &snapshots[index * 2 * CHANNELS..(index + 1) * 2 * CHANNELS];
            (slot[channel], slot[CHANNELS + channel])
        };
        let cells = self.reads.iter().zip(&self.sides);
        for ((reads, sides), out) in cells.zip(self.reduced.chunks_exact_mut(CHANNELS)) {
            let [start, split, end] = *reads;
            for (channel, out) in out.iter_mut().enumerate() {
                let left = sides.rising(at(start, channel), at(split, channel));
                let right = sides.falling(at(split, channel), at(end, channel));
                *out = round_to_byte((left + right) * sides.norm);
            }
        }
    }
}

/// The two sides of one cell's triangle, as constants of the cell: the weighted sum
/// of a side is `bias · Σp ± slope · Σ(x - from)·p` over the side's pixels, where
/// `from` is the side's first pixel.
#[derive(Clone, Copy, Debug)]
struct TriangleSides {
    /// First pixel of the rising side (the support's start).
    rising_from: u32,
    /// The rising side's weight at its first pixel, before normalising.
    rising_bias: f64,
    /// First pixel of the falling side (right of the cell's centre).
    falling_from: u32,
    /// The falling side's weight at its first pixel, before normalising.
    falling_bias: f64,
    /// How much the weight changes from one pixel to the next.
    slope: f64,
    /// One over the sum of the cell's discrete weights.
    norm: f64,
}

impl TriangleSides {
    fn of(span: &CellSpan) -> TriangleSides {
        let offset = |from: u32| (from as f64 + 0.5 - span.center) / span.half_width;
        TriangleSides {
            rising_from: span.start,
            rising_bias: 1.0 + offset(span.start),
            falling_from: span.split,
            falling_bias: 1.0 - offset(span.split),
            slope: 1.0 / span.half_width,
            norm: span.norm,
        }
    }

    /// The unnormalised weighted sum of the rising side, from the running sums
    /// `(Σp, Σx·p)` at its first pixel and one past its last.
    fn rising(&self, before: (u64, u64), after: (u64, u64)) -> f64 {
        let (sum, local_moment) = side_sums(before, after, self.rising_from);
        if sum == 0 {
            return 0.0;
        }
        self.rising_bias * sum as f64 + self.slope * local_moment as f64
    }

    /// The same for the falling side.
    fn falling(&self, before: (u64, u64), after: (u64, u64)) -> f64 {
        let (sum, local_moment) = side_sums(before, after, self.falling_from);
        if sum == 0 {
            return 0.0;
        }
        self.falling_bias * sum as f64 - self.slope * local_moment as f64
    }
}

/// `Σp` and `Σ(x - from)·p` over a side, exact in integers, from the running sums at
/// either end of it.
fn side_sums(
    (sum_before, moment_before): (u64, u64),
    (sum_after, moment_after): (u64, u64),
    from: u32,
) -> (u64, u64) {
    let sum = sum_after - sum_before;
    (sum, (moment_after - moment_before) - from as u64 * sum)
}

impl Target {
    /// Adds row `y`, already reduced horizontally, to every output row it falls in.
    fn accumulate(&mut self, y: u32, reduced: &[f64], channels: usize) {
        while self.first_open_row < self.rows.len() && self.rows[self.first_open_row].end <= y {
            self.first_open_row += 1;
        }
        let row_len = self.shape.columns as usize * channels;
        for (index, span) in self.rows.iter().enumerate().skip(self.first_open_row) {
            if span.start > y {
                break;
            }
            let weight = span.weight(y);
            if weight == 0.0 {
                continue;
            }
            let sums = &mut self.sums[index * row_len..(index + 1) * row_len];
            for (sum, value) in sums.iter_mut().zip(reduced) {
                *sum += weight * value;
            }
        }
    }

    fn into_grid(self, layout: PixelLayout) -> Grid {
        let channels = layout.channels();
        let cells = self
            .sums
            .chunks_exact(channels)
            .map(|samples| {
                let byte = |index: usize| round_to_byte(samples[index]) as u8;
                let (colour, alpha) = match layout {
                    PixelLayout::Gray => ([byte(0); 3], 255),
                    PixelLayout::GrayAlpha => ([byte(0); 3], byte(1)),
                    PixelLayout::Rgb => ([byte(0), byte(1), byte(2)], 255),
                    PixelLayout::Rgba => ([byte(0), byte(1), byte(2)], byte(3)),
                };
                let [r, g, b] = if layout.has_alpha() {
                    colour.map(|sample| unpremultiply(sample, alpha))
                } else {
                    colour
                };
                [r, g, b, alpha]
            })
            .collect();
        Grid {
            shape: self.shape,
            cells,
        }
    }
}

/// `value` rounded half up and clamped to 0..=255, as Pillow's resampler stores it.
fn round_to_byte(value: f64) -> f64 {
    (value + 0.5).floor().clamp(0.0, 255.0)
}

/// `a·b/255` rounded, exactly as Pillow premultiplies.
fn multiply_div_255(a: u32, b: u32) -> u32 {
    let product = a * b + 128;
    ((product >> 8) + product) >> 8
}

/// Undoes premultiplication the way Pillow does: truncating, and leaving fully
/// transparent and fully opaque cells as they are.
fn unpremultiply(sample: u8, alpha: u8) -> u8 {
    if alpha == 0 || alpha == 255 {
        sample
    } else {
        (255 * sample as u32 / alpha as u32).min(255) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(sizes: &[u32]) -> Vec<GridShape> {
        sizes
            .iter()
            .map(|&size| GridShape::new(size, size))
            .collect()
    }

    /// A direct, slow transcription of Pillow's two-pass resample, for comparison.
    fn pillow_reference(pixels: &[u8], width: u32, height: u32, shape: GridShape) -> Vec<[u8; 4]> {
        let premultiplied: Vec<u32> = pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let a = p[3] as u32;
                [
                    multiply_div_255(p[0] as u32, a),
                    multiply_div_255(p[1] as u32, a),
                    multiply_div_255(p[2] as u32, a),
                    a,
                ]
            })
            .collect();
        let columns = scaled_axis_spans(width, width as f64, shape.columns);
        let rows = scaled_axis_spans(height, height as f64, shape.rows);
        let mut horizontal = vec![0f64; height as usize * shape.columns as usize * 4];
        for y in 0..height as usize {
            for (cell, span) in columns.iter().enumerate() {
                for channel in 0..4 {
                    let value: f64 = (span.start..span.end)
                        .map(|x| {
                            span.weight(x)
                                * premultiplied[(y * width as usize + x as usize) * 4 + channel]
                                    as f64
                        })
                        .sum();
                    horizontal[(y * shape.columns as usize + cell) * 4 + channel] =
                        round_to_byte(value);
                }
            }
        }
        let mut out = Vec::new();
        for span in &rows {
            for cell in 0..shape.columns as usize {
                let mut sample = [0u8; 4];
                for channel in 0..4 {
                    let value: f64 = (span.start..span.end)
                        .map(|y| {
                            span.weight(y)
                                * horizontal
                                    [(y as usize * shape.columns as usize + cell) * 4 + channel]
                        })
                        .sum();
                    sample[channel] = round_to_byte(value) as u8;
                }
                let alpha = sample[3];
                out.push(
                    [0, 1, 2]
                        .map(|c| unpremultiply(sample[c], alpha))
                        .into_iter()
                        .chain([alpha])
                        .collect::<Vec<_>>()
                        .try_into()
                        .unwrap(),
                );
            }
        }
        out
    }

    fn noise(width: u32, height: u32, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..width * height * 4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn matches_a_direct_transcription_of_pillow() {
        for &(width, height) in &[(97, 61), (640, 480), (33, 200), (5, 3), (1, 1), (64, 64)] {
            let pixels = noise(width, height, width * 31 + height);
            let wanted = shapes(&[8, 16, 32, 48, 64]);
            let grids = grids_of(&pixels, width, height, PixelLayout::Rgba, &wanted).unwrap();
            for (grid, shape) in grids.iter().zip(&wanted) {
                let reference = pillow_reference(&pixels, width, height, *shape);
                for (ours, theirs) in grid.cells().iter().zip(&reference) {
                    // One level of rounding in the premultiplied sums becomes up to
                    // 255 / alpha levels once colour is divided by alpha again.
                    let alpha = ours[3].max(theirs[3]).max(1) as i32;
                    for channel in 0..4 {
                        let difference = (ours[channel] as i32 - theirs[channel] as i32).abs();
                        let allowed = if channel == 3 { 1 } else { 1 + 255 / alpha };
                        assert!(
                            difference <= allowed,
                            "{width}x{height} {shape}: {ours:?} vs {theirs:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_extent_equal_to_the_sample_counts_changes_nothing() {
        let pixels = noise(90, 70, 5);
        let wanted = shapes(&[8, 64]);
        let plain = grids_of(&pixels, 90, 70, PixelLayout::Rgba, &wanted).unwrap();
        let mut builder =
            GridBuilder::with_extent(90, 70, (90.0, 70.0), PixelLayout::Rgba, &wanted).unwrap();
        for row in pixels.chunks_exact(90 * 4) {
            builder.push_row(row).unwrap();
        }
        assert_eq!(builder.finish().unwrap(), plain);
    }

    #[test]
    fn block_means_with_a_fractional_extent_give_the_full_images_grid() {
        // A smooth picture 8 * 61 - 4 pixels wide: its 8x8 block means (the last
        // column of blocks half outside, padded by repeating the edge) stand for an
        // image 60.5 blocks wide.
        let (width, height) = (8 * 61 - 4, 8 * 40);
        let value = |x: u32, y: u32| ((x * 180) / width + (y * 60) / height) as u8;
        let pixels: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).map(move |x| value(x, y)))
            .collect();
        let wanted = shapes(&[8, 16]);
        let full = grids_of(&pixels, width, height, PixelLayout::Gray, &wanted).unwrap();

        let (across, down) = (width.div_ceil(8), height / 8);
        let mut builder = GridBuilder::with_extent(
            across,
            down,
            (width as f64 / 8.0, down as f64),
            PixelLayout::Gray,
            &wanted,
        )
        .unwrap();
        for block_y in 0..down {
            let row: Vec<u8> = (0..across)
                .map(|block_x| {
                    let sum: u32 = (0..64)
                        .map(|i| {
                            let x = (block_x * 8 + i % 8).min(width - 1);
                            value(x, block_y * 8 + i / 8) as u32
                        })
                        .sum();
                    ((sum + 32) / 64) as u8
                })
                .collect();
            builder.push_row(&row).unwrap();
        }
        for (ours, theirs) in builder.finish().unwrap().iter().zip(&full) {
            for (a, b) in ours.cells().iter().zip(theirs.cells()) {
                assert!((a[0] as i32 - b[0] as i32).abs() <= 1, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn a_flat_image_gives_a_flat_grid() {
        let pixels: Vec<u8> = [200u8, 40, 90].repeat(300 * 200);
        let grids = grids_of(&pixels, 300, 200, PixelLayout::Rgb, &shapes(&[8, 64])).unwrap();
        for grid in grids {
            assert!(grid.cells().iter().all(|&cell| cell == [200, 40, 90, 255]));
        }
    }

    #[test]
    fn transparent_pixels_lend_no_colour() {
        // Left half transparent magenta, right half opaque blue.
        let mut pixels = Vec::new();
        for _ in 0..64 {
            for x in 0..64 {
                pixels.extend_from_slice(if x < 32 {
                    &[255, 0, 255, 0]
                } else {
                    &[0, 0, 255, 255]
                });
            }
        }
        let grid = &grids_of(&pixels, 64, 64, PixelLayout::Rgba, &shapes(&[8])).unwrap()[0];
        // Cell 4 straddles the edge: mostly opaque blue, never magenta.
        let boundary = grid.cell(4, 0);
        assert!(boundary[0] <= 16, "magenta bled into {boundary:?}");
        assert!((215..=230).contains(&boundary[3]), "alpha {boundary:?}");
        assert_eq!(boundary[2], 255);
        assert_eq!(grid.cell(0, 0)[3], 0);
        assert_eq!(grid.cell(7, 7), [0, 0, 255, 255]);
    }

    #[test]
    fn gray_layouts_expand_to_rgba() {
        let pixels = vec![77u8; 20 * 10];
        let grid = &grids_of(&pixels, 20, 10, PixelLayout::Gray, &shapes(&[4])).unwrap()[0];
        assert!(grid.cells().iter().all(|&cell| cell == [77, 77, 77, 255]));
        assert!(grid.is_gray());
    }

    #[test]
    fn a_grid_larger_than_the_image_samples_the_nearest_pixels() {
        let pixels = [10u8, 20, 30, 255];
        let grid = &grids_of(&pixels, 1, 1, PixelLayout::Rgba, &shapes(&[8])).unwrap()[0];
        assert!(grid.cells().iter().all(|&cell| cell == [10, 20, 30, 255]));
    }

    #[test]
    fn degenerate_input_is_an_error_not_a_panic() {
        assert_eq!(
            grids_of(&[], 0, 5, PixelLayout::Rgb, &shapes(&[8])),
            Err(GridError::EmptyImage {
                width: 0,
                height: 5
            })
        );
        assert_eq!(
            grids_of(&[0; 12], 2, 2, PixelLayout::Rgb, &shapes(&[0])),
            Err(GridError::EmptyGrid)
        );
        assert_eq!(
            grids_of(&[0; 12], 2, 2, PixelLayout::Rgb, &[]),
            Err(GridError::NoGrids)
        );
        assert_eq!(
            grids_of(&[0; 11], 2, 2, PixelLayout::Rgb, &shapes(&[8])),
            Err(GridError::BufferSize {
                expected: 12,
                actual: 11
            })
        );
        let mut builder = GridBuilder::new(2, 1, PixelLayout::Gray, &shapes(&[1])).unwrap();
        assert_eq!(
            builder.push_row(&[1]),
            Err(GridError::BufferSize {
                expected: 2,
                actual: 1
            })
        );
        builder.push_row(&[1, 2]).unwrap();
        assert_eq!(
            builder.push_row(&[1, 2]),
            Err(GridError::TooManyRows { height: 1 })
        );
        let unfinished = GridBuilder::new(2, 2, PixelLayout::Gray, &shapes(&[1])).unwrap();
        assert_eq!(
            unfinished.finish(),
            Err(GridError::MissingRows {
                pushed: 0,
                height: 2
            })
        );
    }

    #[test]
    fn square_mode_keeps_blocks_square() {
        assert_eq!(
            GridShape::for_image(4032, 3024, 64, GridMode::Square).unwrap(),
            GridShape::new(64, 48)
        );
        assert_eq!(
            GridShape::for_image(1200, 1800, 8, GridMode::Square).unwrap(),
            GridShape::new(5, 8)
        );
        assert_eq!(
            GridShape::for_image(10_000, 10, 8, GridMode::Square).unwrap(),
            GridShape::new(8, 1)
        );
        assert_eq!(
            GridShape::for_image(4032, 3024, 64, GridMode::Classic).unwrap(),
            GridShape::new(64, 64)
        );
    }

    #[test]
    fn grid_mode_parses_its_names() {
        assert_eq!("Square".parse::<GridMode>(), Ok(GridMode::Square));
        assert!("round".parse::<GridMode>().is_err());
    }
}
