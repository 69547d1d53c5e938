//! A baseline JPEG encoder for pixelated images, working from the grid and never from
//! a full-size picture.
//!
//! A variant is its grid drawn with the nearest-neighbour block map, so most 8x8
//! blocks of every component lie inside one cell and are flat: their only non-zero
//! coefficient is DC, known without a DCT. Blocks that straddle a cell edge in one
//! direction only are the same in every row (or column), so their transform is a
//! single 8-point DCT; only blocks at a corner of four cells need the 2-D transform.
//! The encoder walks the blocks in file order, turns each into Huffman symbols,
//! counts them, builds optimal Huffman tables from the counts and writes the symbols
//! with those tables (what `cjpeg -optimize` does, in one walk over the blocks
//! instead of two).
//!
//! Every cell centre decodes within one level of its cell in each channel (for
//! cells of 8 pixels or more): a block inside one cell gets the DC that decodes to
//! exactly the 8-bit Y, Cb and Cr samples which convert back within that level,
//! and a block that a cell edge crosses has its DC moved so that the centre it
//! holds decodes to those samples too.
//!
//! Output: a JFIF baseline file, 8 bits, YCbCr (or one grey component when every
//! cell is grey), 4:4:4 or 4:2:0 with chroma averaged over each 2x2 pixel square,
//! quantisation tables of the IJG formula at the chosen quality, no restart markers,
//! no metadata (so no orientation tag: the grid is already upright). Alpha, where a
//! grid has it, is ignored: JPEG has none.

use std::f32::consts::PI;

use pixelator_shared::grid::Grid;
use pixelator_shared::render::BlockMap;

use crate::codec::huffman::HuffmanTable;

/// How the two chroma components are sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChromaSampling {
    /// Every pixel has its own chroma (4:4:4).
    Full,
    /// One chroma sample per 2x2 pixels (4:2:0).
    Quarter,
}

impl ChromaSampling {
    /// 4:2:0 when the colour it would smear at the grid's cell edges keeps the
    /// variant's estimated PSNR at or above [`QUARTER_CHROMA_MIN_PSNR`] and leaves
    /// every cell centre's chroma untouched, 4:4:4 otherwise.
    ///
    /// The centres are where a variant is read back cell by cell, so their colour
    /// must come back within a level: a cell centre whose chroma would come from a
    /// 16-pixel chroma block that a cell edge crosses (which can happen to cells
    /// under 36 pixels wide or high) keeps the whole grid at 4:4:4.
    ///
    /// Subsampled chroma is blurred across every cell edge by a decoder's chroma
    /// upsampling: about two pixels a row pick up a share of the neighbouring cell's
    /// colour. The estimate adds, over every edge, its length times the squared
    /// RGB difference that the two cells' chroma alone makes, times
    /// [`EDGE_SMEAR`]. Photos have gentle colour steps between neighbouring cells
    /// and get 4:2:0 (about half the bytes); graphics with saturated neighbours get
    /// 4:4:4.
    pub fn for_grid(grid: &Grid, width: u32, height: u32) -> ChromaSampling {
        if grid.is_gray() {
            return ChromaSampling::Full;
        }
        let columns = BlockMap::new(width, grid.shape().columns);
        let rows = BlockMap::new(height, grid.shape().rows);
        if !(centres_clear_of_chroma_edges(&columns) && centres_clear_of_chroma_edges(&rows)) {
            return ChromaSampling::Full;
        }
        let chroma = |cell: [u8; 4]| {
            let (r, g, b) = (cell[0] as f64, cell[1] as f64, cell[2] as f64);
            (
                -0.168_735_9 * r - 0.331_264_1 * g + 0.5 * b,
                0.5 * r - 0.418_687_6 * g - 0.081_312_4 * b,
            )
        };
        let step = |a: [u8; 4], b: [u8; 4]| {
            let ((blue_a, red_a), (blue_b, red_b)) = (chroma(a), chroma(b));
            let (blue, red) = (blue_a - blue_b, red_a - red_b);
            (1.402 * red).powi(2)
                + (0.344_136 * blue + 0.714_136 * red).powi(2)
                + (1.772 * blue).powi(2)
        };
        let mut energy = 0.0;
        let (columns_count, rows_count) = (grid.shape().columns, grid.shape().rows);
        for row in 0..rows_count {
            let length = rows.span(row).len() as f64;
            for column in 1..columns_count {
                energy += length * step(grid.cell(column - 1, row), grid.cell(column, row));
            }
        }
        for column in 0..columns_count {
            let length = columns.span(column).len() as f64;
            for row in 1..rows_count {
                energy += length * step(grid.cell(column, row - 1), grid.cell(column, row));
            }
        }
        let mse = EDGE_SMEAR * energy / (width as f64 * height as f64 * 3.0);
        let psnr = 10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10();
        if psnr >= QUARTER_CHROMA_MIN_PSNR {
            ChromaSampling::Quarter
        } else {
            ChromaSampling::Full
        }
    }
}

/// Whether, with chroma subsampled, every cell centre along one axis takes its
/// chroma from flat blocks of its own cell only.
///
/// A decoder's chroma upsampling mixes the chroma sample over a pixel with its
/// neighbours on either side, so the three samples around a centre must all lie in
/// 16-pixel chroma blocks wholly inside the centre's cell: a block that a cell
/// edge crosses carries quantised ringing, which chroma, scaled up by the colour
/// conversion, turns into a few levels of error. Cells narrower than about 20
/// pixels rarely pass; their variants keep full chroma, where the DC of the
/// crossed blocks can be steered onto the centres (see `steer_centres`).
fn centres_clear_of_chroma_edges(map: &BlockMap) -> bool {
    let blocks = block_axis(map, 2, 1);
    let samples = map.length().div_ceil(2);
    (0..map.cells()).all(|cell| {
        let Some(centre) = map.center(cell) else {
            return true;
        };
        let sample = centre / 2;
        let first = sample.saturating_sub(1);
        let last = (sample + 1).min(samples - 1);
        (first..=last).all(|neighbour| {
            matches!(blocks[neighbour as usize / 8], BlockAxis::Flat(flat) if flat == cell)
        })
    })
}

/// The share of a colour step's squared error that chroma upsampling leaves per
/// pixel of edge length (two pixels at up to half the step).
pub const EDGE_SMEAR: f64 = 0.5;

/// The least estimated PSNR (dB) at which [`ChromaSampling::for_grid`] subsamples
/// chroma; well above the 40 dB a variant must keep, for the quantisation error
/// that comes on top.
pub const QUARTER_CHROMA_MIN_PSNR: f64 = 46.0;

/// Settings of the pixelated-image JPEG encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JpegSettings {
    /// Quality 1 to 100 on the IJG scale (scales the standard quantisation tables).
    pub quality: u8,
    /// Chroma sampling.
    pub chroma: ChromaSampling,
}

/// Why a grid could not be written as JPEG.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JpegEncodeError {
    /// Baseline JPEG stores width and height in 16 bits.
    #[error("{width}x{height} is too large for JPEG (at most 65535 pixels a side)")]
    TooLarge {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// A zero width or height.
    #[error("cannot write an image of {width}x{height} pixels")]
    Empty {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
}

/// The standard luminance quantisation table (natural order), before scaling.
const LUMA_QUANT: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// The standard chrominance quantisation table (natural order), before scaling.
const CHROMA_QUANT: [u16; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// For each position in zigzag order, its index in natural (row-major) order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The quantisation table for `quality` on the IJG scale, natural order.
fn scaled_table(base: &[u16; 64], quality: u8) -> [u16; 64] {
    let quality = quality.clamp(1, 100) as u32;
    let scale = if quality < 50 {
        5000 / quality
    } else {
        200 - 2 * quality
    };
    base.map(|value| ((value as u32 * scale + 50) / 100).clamp(1, 255) as u16)
}

/// Writes `grid` drawn at `width x height` as a JPEG file.
pub fn encode_grid(
    grid: &Grid,
    width: u32,
    height: u32,
    settings: &JpegSettings,
) -> Result<Vec<u8>, JpegEncodeError> {
    if width == 0 || height == 0 {
        return Err(JpegEncodeError::Empty { width, height });
    }
    if width > 65535 || height > 65535 {
        return Err(JpegEncodeError::TooLarge { width, height });
    }
    let columns = BlockMap::new(width, grid.shape().columns);
    let rows = BlockMap::new(height, grid.shape().rows);
    let gray = grid.is_gray();
    let subsampled = !gray && settings.chroma == ChromaSampling::Quarter;
    let luma_quant = scaled_table(&LUMA_QUANT, settings.quality);
    let chroma_quant = scaled_table(&CHROMA_QUANT, settings.quality);

    // Per component: cell values, level-shifted, in grid order.
    let planes = colour_planes(grid, gray);
    let luma_factor = if subsampled { 2 } else { 1 };
    let mut components = Vec::with_capacity(planes.len());
    for (index, plane) in planes.into_iter().enumerate() {
        let (sampling, step, quant, tables) = if index == 0 {
            (luma_factor, 1, &luma_quant, 0)
        } else {
            (1, luma_factor, &chroma_quant, 1)
        };
        let block_columns = block_axis(&columns, step, sampling);
        let block_rows = block_axis(&rows, step, sampling);
        let flat_dcs = plane
            .values
            .iter()
            .zip(&plane.levels)
            .map(|(&value, &level)| flat_block_dc(value, level, quant[0]))
            .collect();
        components.push(Component {
            id: index as u8 + 1,
            sampling: sampling as u8,
            tables,
            quant_index: tables,
            values: plane.values,
            levels: plane.levels,
            flat_dcs,
            columns_in_grid: grid.shape().columns as usize,
            centre_columns: centres_by_block(&columns, step, block_columns.len()),
            centre_rows: centres_by_block(&rows, step, block_rows.len()),
            block_columns,
            block_rows,
            quant: *quant,
            divisors: quant.map(|q| 1.0 / q as f32),
        });
    }

    let mcu_pixels = 8 * luma_factor as u32;
    let mcus_across = width.div_ceil(mcu_pixels) as usize;
    let mcus_down = height.div_ceil(mcu_pixels) as usize;

    // Rows of MCUs whose blocks are all flat and show the same grid rows as the two
    // rows before them repeat the previous row's symbols exactly (the DC
    // predictions they start from are the same too), so they are counted and
    // written again without being generated.
    let mut symbols = SymbolStream::default();
    let mut mcu_rows: Vec<Option<std::ops::Range<usize>>> = Vec::with_capacity(mcus_down);
    let mut block = [0i32; 64];
    let mut predictions = vec![0i32; components.len()];
    let mut previous_signature = None;
    let mut same_content_run = 0;
    let mut row_counts = [[0u32; 256]; 4];
    for mcu_y in 0..mcus_down {
        let signature = row_signature(&components, mcu_y);
        if signature.is_some() && signature == previous_signature {
            same_content_run += 1;
        } else {
            same_content_run = 0;
        }
        previous_signature = signature;
        if same_content_run >= 2 {
            for (total, row) in symbols.frequencies.iter_mut().zip(&row_counts) {
                for (count, added) in total.iter_mut().zip(row) {
                    *count += added;
                }
            }
            mcu_rows.push(None);
            continue;
        }

        let before = symbols.frequencies;
        let start = symbols.entries.len();
        for mcu_x in 0..mcus_across {
            for (component, prediction) in components.iter().zip(predictions.iter_mut()) {
                let sampling = component.sampling as usize;
                for sub_y in 0..sampling {
                    for sub_x in 0..sampling {
                        let block_x = mcu_x * sampling + sub_x;
                        let block_y = mcu_y * sampling + sub_y;
                        match component.flat_dc(block_x, block_y) {
                            Some(dc) => symbols.push_flat_block(dc, prediction, component.tables),
                            None => {
                                component.quantised_block(block_x, block_y, &mut block);
                                symbols.push_block(&block, prediction, component.tables);
                            }
                        }
                    }
                }
            }
        }
        for ((row, total), earlier) in row_counts.iter_mut().zip(&symbols.frequencies).zip(&before)
        {
            for ((count, now), then) in row.iter_mut().zip(total).zip(earlier) {
                *count = now - then;
            }
        }
        mcu_rows.push(Some(start..symbols.entries.len()));
    }

    let tables = [
        HuffmanTable::optimal(&symbols.frequencies[0]),
        HuffmanTable::optimal(&symbols.frequencies[1]),
        HuffmanTable::optimal(&symbols.frequencies[2]),
        HuffmanTable::optimal(&symbols.frequencies[3]),
    ];

    let mut out = Vec::with_capacity(symbols.entries.len() / 2 + 1024);
    write_headers(
        &mut out,
        width,
        height,
        &components,
        [&luma_quant, &chroma_quant],
        &tables,
    );
    write_entropy(&mut out, &symbols.entries, &mcu_rows, &tables);
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

/// For an MCU row whose blocks are all flat: the grid row each of its block rows
/// shows, per component; `None` when a cell edge crosses the row.
fn row_signature(components: &[Component], mcu_y: usize) -> Option<Vec<u32>> {
    let mut signature = Vec::with_capacity(4);
    for component in components {
        let sampling = component.sampling as usize;
        for sub_y in 0..sampling {
            match component.block_rows[mcu_y * sampling + sub_y] {
                BlockAxis::Flat(row) => signature.push(row),
                BlockAxis::Mixed(_) => return None,
            }
        }
    }
    Some(signature)
}

/// One component's cells: exact values and the decoded samples to aim for.
struct Plane {
    /// The cell values, level-shifted by 128.
    values: Vec<f32>,
    /// Each value rounded to the 8-bit sample a decoder should produce for it,
    /// level-shifted by 128.
    levels: Vec<i32>,
}

impl Plane {
    fn with_capacity(capacity: usize) -> Plane {
        Plane {
            values: Vec::with_capacity(capacity),
            levels: Vec::with_capacity(capacity),
        }
    }

    /// Adds a cell of `value` on the 0..=255 sample scale.
    fn push(&mut self, value: f64) {
        self.values.push((value - 128.0) as f32);
        self.levels
            .push(value.round().clamp(0.0, 255.0) as i32 - 128);
    }
}

/// The Y, Cb and Cr planes of the grid, or Y alone.
///
/// The rounded samples are the ones whose conversion back to RGB lands within one
/// level of the cell in every channel, with the conversion of libjpeg and of the
/// `image` crate's decoder alike (checked over the whole RGB cube), so the flat
/// blocks are quantised to decode to exactly those samples.
fn colour_planes(grid: &Grid, gray: bool) -> Vec<Plane> {
    let cells = grid.cells();
    if gray {
        let mut luma = Plane::with_capacity(cells.len());
        cells.iter().for_each(|cell| luma.push(cell[0] as f64));
        return vec![luma];
    }
    let mut luma = Plane::with_capacity(cells.len());
    let mut blue = Plane::with_capacity(cells.len());
    let mut red = Plane::with_capacity(cells.len());
    for &[r, g, b, _] in cells {
        let (r, g, b) = (r as f64, g as f64, b as f64);
        luma.push(0.299 * r + 0.587 * g + 0.114 * b);
        blue.push(-0.168_735_9 * r - 0.331_264_1 * g + 0.5 * b + 128.0);
        red.push(0.5 * r - 0.418_687_6 * g - 0.081_312_4 * b + 128.0);
    }
    vec![luma, blue, red]
}

/// One component's samples for a row of 8 block pixels: which cells, how weighed.
#[derive(Clone, Debug)]
enum BlockAxis {
    /// All 8 samples show this one cell.
    Flat(u32),
    /// Sample `i` is `(1 - w) * cell_a + w * cell_b` for `taps[i] = (a, b, w)`.
    Mixed([(u32, u32, f32); 8]),
}

/// The block structure along one axis of a component sampled once every `step`
/// image pixels, for `blocks_per_mcu` blocks per MCU of `8 * luma_factor` pixels.
fn block_axis(map: &BlockMap, step: usize, blocks_per_mcu: usize) -> Vec<BlockAxis> {
    let length = map.length() as usize;
    let luma_factor = step * blocks_per_mcu;
    let mcus = length.div_ceil(8 * luma_factor);
    let samples = length.div_ceil(step);
    let blocks = mcus * blocks_per_mcu;

    let tap = |sample: usize| {
        // Past the edge, the last sample is repeated (the usual padding).
        let sample = sample.min(samples - 1);
        let first = sample * step;
        let last = (first + step - 1).min(length - 1);
        let (a, b) = (map.cell_of(first as u32), map.cell_of(last as u32));
        if a == b || first == last {
            (a, a, 0.0)
        } else {
            (a, b, 0.5)
        }
    };
    (0..blocks)
        .map(|block| {
            let taps: [(u32, u32, f32); 8] = std::array::from_fn(|i| tap(block * 8 + i));
            if taps.iter().all(|t| t.0 == taps[0].0 && t.1 == taps[0].0) {
                BlockAxis::Flat(taps[0].0)
            } else {
                BlockAxis::Mixed(taps)
            }
        })
        .collect()
}

/// For each block along one axis of a component sampled once every `step` image
/// pixels: the cell centres it holds, as (sample within the block, cell).
fn centres_by_block(map: &BlockMap, step: usize, blocks: usize) -> Vec<Vec<(u8, u32)>> {
    let mut centres = vec![Vec::new(); blocks];
    for cell in 0..map.cells() {
        if let Some(centre) = map.center(cell) {
            let sample = centre as usize / step;
            centres[sample / 8].push(((sample % 8) as u8, cell));
        }
    }
    centres
}

struct Component {
    id: u8,
    /// Blocks per MCU along each axis (1, or 2 for luma with 4:2:0).
    sampling: u8,
    /// Huffman tables: 0 luma, 1 chroma.
    tables: usize,
    quant_index: usize,
    values: Vec<f32>,
    /// The sample each cell should decode to (see [`Plane`]).
    levels: Vec<i32>,
    /// The quantised DC of a block inside each cell (see [`flat_block_dc`]).
    flat_dcs: Vec<i32>,
    columns_in_grid: usize,
    block_columns: Vec<BlockAxis>,
    block_rows: Vec<BlockAxis>,
    /// The cell centres in each block column and block row.
    centre_columns: Vec<Vec<(u8, u32)>>,
    centre_rows: Vec<Vec<(u8, u32)>>,
    /// The quantisers, natural order.
    quant: [u16; 64],
    /// One over each quantiser, natural order.
    divisors: [f32; 64],
}

/// `COSINES[u][x]` = C(u)/2 * cos((2x + 1) u π / 16), the 8-point DCT-II basis.
fn cosines() -> &'static [[f32; 8]; 8] {
    use std::sync::OnceLock;
    static TABLE: OnceLock<[[f32; 8]; 8]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|u| {
            let scale = if u == 0 { 0.5 / 2f32.sqrt() } else { 0.5 };
            std::array::from_fn(|x| scale * ((2 * x + 1) as f32 * u as f32 * PI / 16.0).cos())
        })
    })
}

/// `value.round() as i32` (halves away from zero, saturating), without the call into
/// libm that `f32::round` costs on CPUs without SSE4.1's rounding instruction. Every
/// `f32` is exact in `f64`, and so is adding one half to any that fits an `i32`, so
/// truncating that sum toward zero rounds exactly as `f32::round` does; larger
/// values saturate either way.
#[inline]
fn round_to_i32(value: f32) -> i32 {
    let value = f64::from(value);
    (value + 0.5_f64.copysign(value)) as i32
}

/// The quantised DC of a block inside a cell of `value` (level-shifted) whose
/// samples should decode to `level`: the one nearest the value among those that
/// decode to the level.
///
/// A decoder makes a DC-only block's samples `round(dc * quantiser / 8)`, halves
/// rounded up (libjpeg's and every other integer IDCT's shortcut), so the DCs with
/// `8 * level - 4 <= dc * quantiser < 8 * level + 4` hit the level; there is at least
/// one whenever the quantiser is at most 8 (quality 50 and up). With a coarser one
/// the nearest DC is taken.
fn flat_block_dc(value: f32, level: i32, quantiser: u16) -> i32 {
    let quantiser = quantiser as i32;
    let nearest = round_to_i32(value * (FLAT_GAIN * FLAT_GAIN) / quantiser as f32);
    // The least and the greatest DC with a sample of `level`.
    let least = -((4 - 8 * level).div_euclid(quantiser));
    let greatest = -((-4 - 8 * level).div_euclid(quantiser)) - 1;
    if least <= greatest {
        nearest.clamp(least, greatest)
    } else {
        nearest
    }
}

/// The 8-point DCT of `samples`.
fn dct8(samples: &[f32; 8]) -> [f32; 8] {
    let basis = cosines();
    std::array::from_fn(|u| {
        basis[u]
            .iter()
            .zip(samples)
            .map(|(weight, sample)| weight * sample)
            .sum()
    })
}

/// The DCT of a constant 8-sample row, per unit of the constant: 8 * C(0) / 2.
const FLAT_GAIN: f32 = std::f32::consts::SQRT_2 * 2.0;

impl Component {
    fn value(&self, column: u32, row: u32) -> f32 {
        self.values[row as usize * self.columns_in_grid + column as usize]
    }

    /// A sample through the column tap `(a, b, w)` on grid row `row`.
    fn across(&self, (a, b, w): (u32, u32, f32), row: u32) -> f32 {
        let first = self.value(a, row);
        if w == 0.0 {
            first
        } else {
            first + w * (self.value(b, row) - first)
        }
    }

    fn level(&self, column: u32, row: u32) -> i32 {
        self.levels[row as usize * self.columns_in_grid + column as usize]
    }

    fn flat_block_dc(&self, column: u32, row: u32) -> i32 {
        self.flat_dcs[row as usize * self.columns_in_grid + column as usize]
    }

    /// The quantised DC coefficient of a block inside one cell, or `None` for a block
    /// a cell edge crosses.
    #[inline]
    fn flat_dc(&self, block_x: usize, block_y: usize) -> Option<i32> {
        match (&self.block_columns[block_x], &self.block_rows[block_y]) {
            (BlockAxis::Flat(column), BlockAxis::Flat(row)) => {
                Some(self.flat_block_dc(*column, *row))
            }
            _ => None,
        }
    }

    /// Moves the DC of a block a cell edge crosses so that the samples at the cell
    /// centres it holds decode as close to their cells' levels as one DC can bring
    /// them: the centres are where a variant is read back. With one centre (cells
    /// of 8 pixels or more) it lands within 3/16 of a level at quality 90, which
    /// leaves a decoder's IDCT room to round; with several, their mean error is
    /// cancelled.
    fn steer_centres(&self, block_x: usize, block_y: usize, out: &mut [i32; 64]) {
        let (columns, rows) = (&self.centre_columns[block_x], &self.centre_rows[block_y]);
        if columns.is_empty() || rows.is_empty() {
            return;
        }
        let basis = cosines();
        let dc_step = self.quant[0] as f32 / 8.0;
        // The mean over the centres of the decoded sample minus the cell's level,
        // with the DC as quantised.
        let mut total_miss = 0.0;
        for &(y, row) in rows {
            for &(x, column) in columns {
                let mut sample = 0.0;
                for (index, &coefficient) in out.iter().enumerate() {
                    if coefficient != 0 {
                        let (u, v) = (index % 8, index / 8);
                        sample += (coefficient * self.quant[index] as i32) as f32
                            * basis[u][x as usize]
                            * basis[v][y as usize];
                    }
                }
                total_miss += sample - self.level(column, row) as f32;
            }
        }
        let mean = total_miss / (columns.len() * rows.len()) as f32;
        out[0] -= round_to_i32(mean / dc_step);
    }

    /// Quantised coefficients of block `block_x`, `block_y` of this component, in
    /// natural order.
    fn quantised_block(&self, block_x: usize, block_y: usize, out: &mut [i32; 64]) {
        *out = [0; 64];
        let quantise = |coefficient: f32, index: usize| -> i32 {
            round_to_i32(coefficient * self.divisors[index])
        };
        match (&self.block_columns[block_x], &self.block_rows[block_y]) {
            (BlockAxis::Flat(column), BlockAxis::Flat(row)) => {
                out[0] = self.flat_block_dc(*column, *row);
                return;
            }
            (BlockAxis::Mixed(taps), BlockAxis::Flat(row)) => {
                let samples: [f32; 8] = std::array::from_fn(|x| self.across(taps[x], *row));
                for (u, coefficient) in dct8(&samples).into_iter().enumerate() {
                    out[u] = quantise(coefficient * FLAT_GAIN, u);
                }
            }
            (BlockAxis::Flat(column), BlockAxis::Mixed(taps)) => {
                let samples: [f32; 8] = std::array::from_fn(|y| {
                    let (a, b, w) = taps[y];
                    let first = self.value(*column, a);
                    first + w * (self.value(*column, b) - first)
                });
                for (v, coefficient) in dct8(&samples).into_iter().enumerate() {
                    out[v * 8] = quantise(coefficient * FLAT_GAIN, v * 8);
                }
            }
            (BlockAxis::Mixed(column_taps), BlockAxis::Mixed(row_taps)) => {
                // Rows first: each grid row a block row touches, transformed across.
                let mut by_row = [[0f32; 8]; 8];
                for (y, &(a, b, w)) in row_taps.iter().enumerate() {
                    let top: [f32; 8] = std::array::from_fn(|x| self.across(column_taps[x], a));
                    by_row[y] = if w == 0.0 {
                        top
                    } else {
                        let bottom: [f32; 8] =
                            std::array::from_fn(|x| self.across(column_taps[x], b));
                        std::array::from_fn(|x| top[x] + w * (bottom[x] - top[x]))
                    };
                    by_row[y] = dct8(&by_row[y]);
                }
                for u in 0..8 {
                    let column: [f32; 8] = std::array::from_fn(|y| by_row[y][u]);
                    for (v, coefficient) in dct8(&column).into_iter().enumerate() {
                        out[v * 8 + u] = quantise(coefficient, v * 8 + u);
                    }
                }
            }
        }
        self.steer_centres(block_x, block_y, out);
    }
}

/// The Huffman symbols of the scan in file order, with their extra bits, and how
/// often each symbol occurs per table (DC luma, AC luma, DC chroma, AC chroma).
struct SymbolStream {
    /// `table << 24 | symbol << 16 | extra bits`.
    entries: Vec<u32>,
    frequencies: [[u32; 256]; 4],
}

impl Default for SymbolStream {
    fn default() -> Self {
        SymbolStream {
            entries: Vec::new(),
            frequencies: [[0; 256]; 4],
        }
    }
}

/// The magnitude category of a coefficient (bits needed) and its extra bits.
fn category(value: i32) -> (u32, u32) {
    let magnitude = value.unsigned_abs();
    let size = 32 - magnitude.leading_zeros();
    let bits = if value < 0 {
        (value - 1) as u32 & ((1 << size) - 1)
    } else {
        value as u32
    };
    (size, bits)
}

impl SymbolStream {
    fn push(&mut self, table: usize, symbol: u32, bits: u32) {
        self.frequencies[table][symbol as usize] += 1;
        self.entries
            .push((table as u32) << 24 | symbol << 16 | (bits & 0xFFFF));
    }

    /// A block whose only non-zero coefficient is DC: its difference and the end of
    /// block.
    #[inline]
    fn push_flat_block(&mut self, dc: i32, prediction: &mut i32, tables: usize) {
        let (size, bits) = category(dc - *prediction);
        *prediction = dc;
        self.push(tables * 2, size, bits);
        self.push(tables * 2 + 1, 0x00, 0);
    }

    fn push_block(&mut self, coefficients: &[i32; 64], prediction: &mut i32, tables: usize) {
        let (dc_table, ac_table) = (tables * 2, tables * 2 + 1);
        let dc = coefficients[0];
        let (size, bits) = category(dc - *prediction);
        *prediction = dc;
        self.push(dc_table, size, bits);

        let mut run = 0u32;
        for &natural in &ZIGZAG[1..] {
            let value = coefficients[natural];
            if value == 0 {
                run += 1;
                continue;
            }
            while run > 15 {
                self.push(ac_table, 0xF0, 0);
                run -= 16;
            }
            let (size, bits) = category(value);
            self.push(ac_table, run << 4 | size, bits);
            run = 0;
        }
        if run > 0 {
            self.push(ac_table, 0x00, 0);
        }
    }
}

fn write_segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
    out.extend_from_slice(body);
}

fn write_headers(
    out: &mut Vec<u8>,
    width: u32,
    height: u32,
    components: &[Component],
    quant: [&[u16; 64]; 2],
    tables: &[HuffmanTable; 4],
) {
    out.extend_from_slice(&[0xFF, 0xD8]);
    // JFIF 1.01, no units, 1:1 pixel aspect, no thumbnail.
    write_segment(out, 0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");

    let tables_used = if components.len() == 1 { 1 } else { 2 };
    let mut body = Vec::new();
    for (index, table) in quant.iter().take(tables_used).enumerate() {
        body.push(index as u8);
        body.extend(ZIGZAG.iter().map(|&natural| table[natural] as u8));
    }
    write_segment(out, 0xDB, &body);

    let mut body = vec![8];
    body.extend_from_slice(&(height as u16).to_be_bytes());
    body.extend_from_slice(&(width as u16).to_be_bytes());
    body.push(components.len() as u8);
    for component in components {
        body.extend_from_slice(&[
            component.id,
            component.sampling << 4 | component.sampling,
            component.quant_index as u8,
        ]);
    }
    write_segment(out, 0xC0, &body);

    let mut body = Vec::new();
    for (index, table) in tables.iter().take(tables_used * 2).enumerate() {
        let class = (index % 2) as u8;
        let id = (index / 2) as u8;
        body.push(class << 4 | id);
        body.extend_from_slice(&table.counts);
        body.extend_from_slice(&table.symbols);
    }
    write_segment(out, 0xC4, &body);

    let mut body = vec![components.len() as u8];
    for component in components {
        let id = component.tables as u8;
        body.extend_from_slice(&[component.id, id << 4 | id]);
    }
    body.extend_from_slice(&[0, 63, 0]);
    write_segment(out, 0xDA, &body);
}

/// Writes the entropy-coded data, with 0xFF bytes stuffed and the last byte padded
/// with one bits.
fn write_entropy(
    out: &mut Vec<u8>,
    entries: &[u32],
    mcu_rows: &[Option<std::ops::Range<usize>>],
    tables: &[HuffmanTable; 4],
) {
    let mut writer = BitWriter {
        out,
        acc: 0,
        bits: 0,
    };
    let mut row_bits = BitString::default();
    for row in mcu_rows {
        if let Some(range) = row {
            row_bits.clear();
            for &entry in &entries[range.clone()] {
                let table = (entry >> 24) as usize;
                let symbol = (entry >> 16) & 0xFF;
                let extra = entry & 0xFFFF;
                let (code, length) = tables[table].codes[symbol as usize];
                let extra_length = if table.is_multiple_of(2) {
                    symbol
                } else {
                    symbol & 15
                };
                row_bits.put(code as u32, length as u32);
                row_bits.put(extra, extra_length);
            }
        }
        writer.append(&row_bits);
    }
    writer.finish();
}

/// The bits of one MCU row, before byte stuffing, most significant first.
#[derive(Default)]
struct BitString {
    words: Vec<u64>,
    /// The last `used` bits, right-aligned.
    tail: u64,
    used: u32,
}

impl BitString {
    fn clear(&mut self) {
        self.words.clear();
        self.tail = 0;
        self.used = 0;
    }

    /// Appends the low `length` (at most 16) bits of `value`.
    #[inline]
    fn put(&mut self, value: u32, length: u32) {
        if self.used + length <= 64 {
            self.tail = self.tail << length | value as u64;
            self.used += length;
        } else {
            let room = 64 - self.used;
            let spill = length - room;
            self.words.push(self.tail << room | (value as u64) >> spill);
            self.tail = value as u64 & ((1u64 << spill) - 1);
            self.used = spill;
        }
    }
}

struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter<'_> {
    #[inline]
    fn put(&mut self, value: u32, length: u32) {
        self.acc = self.acc << length | value as u64;
        self.bits += length;
        if self.bits >= 32 {
            self.flush_bytes();
        }
    }

    /// Appends a whole bit string.
    fn append(&mut self, bits: &BitString) {
        for &word in &bits.words {
            self.put((word >> 32) as u32, 32);
            self.put(word as u32, 32);
        }
        if bits.used > 32 {
            self.put((bits.tail >> 32) as u32, bits.used - 32);
            self.put(bits.tail as u32, 32);
        } else {
            self.put(bits.tail as u32, bits.used);
        }
    }

    fn flush_bytes(&mut self) {
        while self.bits >= 8 {
            self.bits -= 8;
            let byte = (self.acc >> self.bits) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
        }
    }

    fn finish(&mut self) {
        let pad = (8 - self.bits % 8) % 8;
        self.put((1 << pad) - 1, pad);
        self.flush_bytes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pixelator_shared::grid::GridShape;
    use pixelator_shared::render::render_rgba;

    #[test]
    fn round_to_i32_rounds_like_f32_round() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -2.5,
            0.49999997,
            -0.49999997,
            8_388_607.5,
            -8_388_608.5,
            1e10,
            -1e10,
            f32::MAX,
            f32::MIN,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        let mut state = 0x2545_f491_u32;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            values.push((state as i32) as f32 / 4096.0);
            values.push(f32::from_bits(state));
        }
        for value in values {
            assert_eq!(round_to_i32(value), value.round() as i32, "{value:?}");
        }
    }

    fn grid(columns: u32, rows: u32, seed: u32) -> Grid {
        crate::codec::test_grids::random_grid(columns, rows, seed, false)
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let squared: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum();
        let mse = squared / a.len() as f64;
        10.0 * (255.0 * 255.0 / mse.max(1e-12)).log10()
    }

    fn decoded_rgb(bytes: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
            .expect("our JPEG decodes")
            .to_rgb8()
    }

    fn rendered_rgb(grid: &Grid, width: u32, height: u32) -> Vec<u8> {
        render_rgba(grid, width, height)
            .unwrap()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    }

    #[test]
    fn decodes_to_the_rendered_grid_at_any_size() {
        for chroma in [ChromaSampling::Full] {
            let settings = JpegSettings {
                quality: 90,
                chroma,
            };
            for &(width, height, size) in &[(64, 48, 8), (101, 77, 16), (8, 8, 8), (13, 200, 3)] {
                let grid = grid(size, size, width + height);
                let bytes = encode_grid(&grid, width, height, &settings).unwrap();
                let decoded = decoded_rgb(&bytes);
                assert_eq!(decoded.dimensions(), (width, height));
                let quality = psnr(decoded.as_raw(), &rendered_rgb(&grid, width, height));
                assert!(
                    quality > 30.0,
                    "{width}x{height} n={size} {chroma:?}: {quality:.1} dB"
                );
            }
        }
    }

    /// The largest difference, over the channels of every cell centre, between the
    /// decoded variant and its grid.
    fn off_at_cell_centres(grid: &Grid, width: u32, height: u32, chroma: ChromaSampling) -> u8 {
        let settings = JpegSettings {
            quality: 90,
            chroma,
        };
        let decoded = decoded_rgb(&encode_grid(grid, width, height, &settings).unwrap());
        let columns = BlockMap::new(width, grid.shape().columns);
        let rows = BlockMap::new(height, grid.shape().rows);
        let mut worst = 0;
        for row in 0..grid.shape().rows {
            let Some(y) = rows.center(row) else { continue };
            for column in 0..grid.shape().columns {
                let Some(x) = columns.center(column) else {
                    continue;
                };
                let (pixel, cell) = (decoded.get_pixel(x, y).0, grid.cell(column, row));
                for channel in 0..3 {
                    worst = worst.max(pixel[channel].abs_diff(cell[channel]));
                }
            }
        }
        worst
    }

    /// A photo-like grid: a smooth colour ramp with a little noise.
    fn gentle_grid(columns: u32, rows: u32) -> Grid {
        let noise = grid(columns, rows, 5);
        let cells = (0..rows)
            .flat_map(|row| (0..columns).map(move |column| (column, row)))
            .map(|(column, row)| {
                let speck = noise.cell(column, row);
                let ramp = |start: u32, along: u32, count: u32, shade: u8| {
                    (start + along * 60 / count + (shade % 6) as u32) as u8
                };
                [
                    ramp(90, column, columns, speck[0]),
                    ramp(70, row, rows, speck[1]),
                    ramp(50, column + row, columns + rows, speck[2]),
                    255,
                ]
            })
            .collect();
        Grid::from_cells(GridShape::new(columns, rows), cells).unwrap()
    }

    #[test]
    fn flat_cells_of_any_colour_decode_within_a_level() {
        // Cells of whole blocks: every block is flat, for either sampling.
        let grid = grid(64, 64, 7);
        assert!(off_at_cell_centres(&grid, 512, 512, ChromaSampling::Full) <= 1);
        assert!(off_at_cell_centres(&grid, 1024, 1024, ChromaSampling::Quarter) <= 1);
    }

    #[test]
    fn small_cells_decode_within_a_level_at_their_centres() {
        // Saturated neighbours, cells of 8 to 28 pixels that blocks straddle: the
        // blocks holding a centre are steered onto it.
        for &(width, height, columns, rows) in &[
            (197, 131, 24, 16),
            (301, 211, 24, 16),
            (1200, 1800, 64, 64),
            (1800, 1200, 48, 48),
        ] {
            let grid = grid(columns, rows, width);
            let off = off_at_cell_centres(&grid, width, height, ChromaSampling::Full);
            assert!(off <= 1, "{width}x{height} in {columns}x{rows}: {off} off");
        }

        // A photo: subsampled chroma where the cells leave room for it around their
        // centres, whole chroma where they are too small to.
        let photo = gentle_grid(64, 64);
        for &(width, height, expected) in &[
            (4032, 3024, ChromaSampling::Quarter),
            (1200, 1800, ChromaSampling::Full),
            (1800, 1200, ChromaSampling::Full),
        ] {
            let chroma = ChromaSampling::for_grid(&photo, width, height);
            assert_eq!(chroma, expected, "{width}x{height}");
            let off = off_at_cell_centres(&photo, width, height, chroma);
            assert!(off <= 1, "{width}x{height} {chroma:?}: {off} off");
        }
    }

    #[test]
    fn chroma_is_subsampled_only_where_it_stays_faithful() {
        // Saturated neighbours: subsampling would smear them, so chroma stays whole,
        // and the variant stays faithful.
        let loud = grid(8, 8, 11);
        assert_eq!(
            ChromaSampling::for_grid(&loud, 101, 77),
            ChromaSampling::Full
        );
        // Gentle steps, as between the cells of a photo.
        let cells = (0..64u32)
            .map(|i| [100 + (i % 8) as u8, 90 + (i / 8) as u8, 80, 255])
            .collect();
        let gentle = Grid::from_cells(GridShape::new(8, 8), cells).unwrap();
        let chroma = ChromaSampling::for_grid(&gentle, 640, 480);
        assert_eq!(chroma, ChromaSampling::Quarter);
        let settings = JpegSettings {
            quality: 90,
            chroma,
        };
        let bytes = encode_grid(&gentle, 640, 480, &settings).unwrap();
        let quality = psnr(
            decoded_rgb(&bytes).as_raw(),
            &rendered_rgb(&gentle, 640, 480),
        );
        assert!(quality >= 40.0, "{quality:.1} dB");
    }

    #[test]
    fn a_grey_grid_is_written_with_one_component() {
        let cells = (0..64u8).map(|i| [i * 4, i * 4, i * 4, 255]).collect();
        let grid = Grid::from_cells(GridShape::new(8, 8), cells).unwrap();
        let settings = JpegSettings {
            quality: 90,
            chroma: ChromaSampling::Quarter,
        };
        let bytes = encode_grid(&grid, 80, 80, &settings).unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!(decoded.color(), image::ColorType::L8);
        let grey = decoded.to_luma8();
        assert!((grey.get_pixel(75, 75).0[0] as i32 - 252).abs() <= 2);
    }

    #[test]
    fn sizes_jpeg_cannot_hold_are_refused() {
        let grid = grid(2, 2, 1);
        let settings = JpegSettings {
            quality: 90,
            chroma: ChromaSampling::Full,
        };
        assert_eq!(
            encode_grid(&grid, 70_000, 10, &settings),
            Err(JpegEncodeError::TooLarge {
                width: 70_000,
                height: 10
            })
        );
        assert!(matches!(
            encode_grid(&grid, 0, 10, &settings),
            Err(JpegEncodeError::Empty { .. })
        ));
    }
}
