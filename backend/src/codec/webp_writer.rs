//! A lossless WebP (VP8L) encoder for pixelated images, working from the grid.
//!
//! VP8L codes pixels as literals or as backward references of up to 4096 pixels,
//! whose distance can be given as "the pixel above". A variant is bands of identical
//! rows made of runs of identical pixels, so the first row of a band is one literal
//! per cell followed by a reference to the pixel just before it, and the rest of the
//! band is references to the row above, each covering 4096 pixels, across row ends.
//! One group of prefix (Huffman) codes serves the whole image; no transforms, no
//! colour cache. The file decodes to exactly the rendered grid.

use pixelator_shared::grid::Grid;
use pixelator_shared::render::BlockMap;

use super::huffman::{limited_code_lengths, lsb_canonical_codes, run_length_code_lengths};

/// The largest width or height VP8L can store.
pub const MAX_SIDE: u32 = 16384;

/// Why a grid could not be written as WebP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebpWriteError {
    /// A zero width or height.
    #[error("cannot write an image of {width}x{height} pixels")]
    Empty {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// VP8L stores sides of at most 16384 pixels.
    #[error("{width}x{height} is too large for lossless WebP (at most 16384 pixels a side)")]
    TooLarge {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
}

/// Green alphabet: 256 literals and 24 length prefixes (no colour cache).
const GREEN_SYMBOLS: usize = 256 + 24;
const DISTANCE_SYMBOLS: usize = 40;
const MAX_COPY: usize = 4096;
/// Distance code of the pixel above (first entry of VP8L's distance map) and of the
/// pixel to the left (second entry).
const ABOVE: u32 = 1;
const LEFT: u32 = 2;

/// Writes `grid` drawn at `width x height` as a lossless WebP file, with the cells'
/// alpha when `keep_alpha` (else every pixel is opaque).
pub fn encode_grid(
    grid: &Grid,
    width: u32,
    height: u32,
    keep_alpha: bool,
) -> Result<Vec<u8>, WebpWriteError> {
    if width == 0 || height == 0 {
        return Err(WebpWriteError::Empty { width, height });
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(WebpWriteError::TooLarge { width, height });
    }
    let columns = BlockMap::new(width, grid.shape().columns);
    let rows = BlockMap::new(height, grid.shape().rows);

    // Tokens: a literal is its ARGB value; a copy is COPY | distance code << 16 |
    // length.
    const COPY: u64 = 1 << 40;
    let mut tokens: Vec<u64> = Vec::new();
    let mut counts = [
        vec![0u32; GREEN_SYMBOLS],
        vec![0u32; 256],
        vec![0u32; 256],
        vec![0u32; 256],
        vec![0u32; DISTANCE_SYMBOLS],
    ];
    let copy =
        |tokens: &mut Vec<u64>, counts: &mut [Vec<u32>; 5], distance: u32, mut length: usize| {
            while length > 0 {
                let take = length.min(MAX_COPY);
                counts[0][256 + prefix(take as u32).0 as usize] += 1;
                counts[4][prefix(distance).0 as usize] += 1;
                tokens.push(COPY | (distance as u64) << 16 | take as u64);
                length -= take;
            }
        };

    for grid_row in 0..grid.shape().rows {
        let span = rows.span(grid_row);
        if span.is_empty() {
            continue;
        }
        for (cell, &[r, g, b, alpha]) in grid.row(grid_row).iter().enumerate() {
            let a = if keep_alpha { alpha } else { u8::MAX };
            let pixels = columns.span(cell as u32).len();
            if pixels == 0 {
                continue;
            }
            counts[0][g as usize] += 1;
            counts[1][r as usize] += 1;
            counts[2][b as usize] += 1;
            counts[3][a as usize] += 1;
            tokens.push(u32::from_be_bytes([a, r, g, b]) as u64);
            copy(&mut tokens, &mut counts, LEFT, pixels - 1);
        }
        copy(
            &mut tokens,
            &mut counts,
            ABOVE,
            (span.len() - 1) * width as usize,
        );
    }

    let mut bits = LsbWriter::default();
    bits.put(0x2F, 8);
    bits.put(width - 1, 14);
    bits.put(height - 1, 14);
    bits.put(keep_alpha as u32, 1);
    bits.put(0, 3); // version
    bits.put(0, 1); // no transform
    bits.put(0, 1); // no colour cache
    bits.put(0, 1); // one group of prefix codes for the whole image

    let codes: Vec<Vec<(u32, u32)>> = counts
        .iter()
        .map(|c| write_prefix_code(&mut bits, c))
        .collect();
    for &token in &tokens {
        if token & COPY == 0 {
            let [a, r, g, b] = (token as u32).to_be_bytes();
            for (alphabet, value) in [(0, g), (1, r), (2, b), (3, a)] {
                let (code, length) = codes[alphabet][value as usize];
                bits.put(code, length);
            }
            continue;
        }
        let length = (token & 0xFFFF) as u32;
        let distance = ((token >> 16) & 0xFF) as u32;
        let (symbol, extra, extra_bits) = prefix(length);
        let (code, code_length) = codes[0][256 + symbol as usize];
        bits.put(code, code_length);
        bits.put(extra, extra_bits);
        let (symbol, extra, extra_bits) = prefix(distance);
        let (code, code_length) = codes[4][symbol as usize];
        bits.put(code, code_length);
        bits.put(extra, extra_bits);
    }
    let stream = bits.finish();

    let padded = stream.len() + stream.len() % 2;
    let mut out = Vec::with_capacity(20 + padded);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((12 + padded) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBPVP8L");
    out.extend_from_slice(&(stream.len() as u32).to_le_bytes());
    out.extend_from_slice(&stream);
    if stream.len() % 2 == 1 {
        out.push(0);
    }
    Ok(out)
}

/// VP8L's prefix coding of a length or distance code `value` (at least 1): the
/// prefix symbol, the extra bits and their count.
fn prefix(value: u32) -> (u32, u32, u32) {
    let offset = value - 1;
    if offset < 4 {
        return (offset, 0, 0);
    }
    let highest = 31 - offset.leading_zeros();
    let second = (offset >> (highest - 1)) & 1;
    let extra_bits = highest - 1;
    (
        2 * highest + second,
        offset & ((1 << extra_bits) - 1),
        extra_bits,
    )
}

/// Writes the prefix code for symbols counted `counts` times and returns each
/// symbol's (bit-reversed code, length).
fn write_prefix_code(bits: &mut LsbWriter, counts: &[u32]) -> Vec<(u32, u32)> {
    let used: Vec<usize> = (0..counts.len()).filter(|&s| counts[s] > 0).collect();
    let mut codes = vec![(0u32, 0u32); counts.len()];
    if used.len() <= 2 && used.iter().all(|&symbol| symbol < 256) {
        // Simple code: one symbol takes no bits, two take one bit each.
        let symbols: Vec<usize> = if used.is_empty() { vec![0] } else { used };
        bits.put(1, 1);
        bits.put(symbols.len() as u32 - 1, 1);
        if symbols[0] < 2 {
            bits.put(0, 1);
            bits.put(symbols[0] as u32, 1);
        } else {
            bits.put(1, 1);
            bits.put(symbols[0] as u32, 8);
        }
        if let Some(&second) = symbols.get(1) {
            bits.put(second as u32, 8);
            codes[symbols[0]] = (0, 1);
            codes[second] = (1, 1);
        }
        return codes;
    }

    let lengths = limited_code_lengths(counts, 15);
    let tokens = run_length_code_lengths(&lengths);
    let mut length_counts = [0u32; 19];
    for &(symbol, _) in &tokens {
        length_counts[symbol as usize] += 1;
    }
    let length_lengths = limited_code_lengths(&length_counts, 7);
    let length_codes = vp8l_codes(&length_lengths);
    const ORDER: [usize; 19] = [
        17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ];
    let written = 4.max(
        ORDER
            .iter()
            .rposition(|&symbol| length_lengths[symbol] > 0)
            .map_or(0, |index| index + 1),
    );
    bits.put(0, 1); // normal code
    bits.put(written as u32 - 4, 4);
    for &symbol in &ORDER[..written] {
        bits.put(length_lengths[symbol] as u32, 3);
    }
    bits.put(0, 1); // every symbol's length follows
    for &(symbol, extra) in &tokens {
        let (code, length) = length_codes[symbol as usize];
        bits.put(code, length);
        match symbol {
            16 => bits.put(extra, 2),
            17 => bits.put(extra, 3),
            18 => bits.put(extra, 7),
            _ => {}
        }
    }
    codes = vp8l_codes(&lengths);
    codes
}

/// Canonical codes for `lengths`; a code with a single symbol takes no bits, as
/// VP8L decoders read it.
fn vp8l_codes(lengths: &[u8]) -> Vec<(u32, u32)> {
    if lengths.iter().filter(|&&l| l > 0).count() == 1 {
        return lengths.iter().map(|_| (0, 0)).collect();
    }
    lsb_canonical_codes(lengths)
}

#[derive(Default)]
struct LsbWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl LsbWriter {
    #[inline]
    fn put(&mut self, value: u32, length: u32) {
        self.acc |= (value as u64) << self.bits;
        self.bits += length;
        if self.bits >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.bits -= 32;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.bits > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits = self.bits.saturating_sub(8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_grids::random_grid as grid;
    use pixelator_shared::grid::GridShape;
    use pixelator_shared::render::render_rgba;

    fn decoded_rgba(bytes: &[u8]) -> Vec<u8> {
        image::load_from_memory_with_format(bytes, image::ImageFormat::WebP)
            .expect("our WebP decodes")
            .to_rgba8()
            .into_raw()
    }

    #[test]
    fn decodes_to_exactly_the_rendered_grid() {
        for &(width, height, size, alpha) in &[
            (64, 48, 8, true),
            (101, 77, 16, false),
            (3, 2, 8, true),
            (1, 1, 1, false),
            (5000, 3, 64, true),
            (300, 200, 2, false),
        ] {
            let grid = grid(size, size, width + height, alpha);
            let bytes = encode_grid(&grid, width, height, alpha).unwrap();
            assert_eq!(
                decoded_rgba(&bytes),
                render_rgba(&grid, width, height).unwrap(),
                "{width}x{height} n={size}"
            );
        }
    }

    #[test]
    fn a_one_colour_image_decodes() {
        let cells = vec![[10, 20, 30, 255]; 4];
        let grid = Grid::from_cells(GridShape::new(2, 2), cells).unwrap();
        let bytes = encode_grid(&grid, 50, 40, false).unwrap();
        assert_eq!(decoded_rgba(&bytes), render_rgba(&grid, 50, 40).unwrap());
    }

    #[test]
    fn sides_past_the_format_limit_are_refused() {
        let grid = grid(2, 2, 1, false);
        assert_eq!(
            encode_grid(&grid, 16385, 2, false),
            Err(WebpWriteError::TooLarge {
                width: 16385,
                height: 2
            })
        );
    }

    #[test]
    fn prefix_coding_follows_the_format() {
        assert_eq!(prefix(1), (0, 0, 0));
        assert_eq!(prefix(4), (3, 0, 0));
        assert_eq!(prefix(5), (4, 0, 1));
        assert_eq!(prefix(6), (4, 1, 1));
        assert_eq!(prefix(7), (5, 0, 1));
        assert_eq!(prefix(4096), (23, 1023, 10));
    }
}
