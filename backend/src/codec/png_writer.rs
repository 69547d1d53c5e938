//! A PNG encoder for pixelated images that builds the compressed stream from the
//! grid's runs, never from a full-size picture.
//!
//! A variant's rows come in bands of identical rows (one band per grid row), and each
//! row is runs of identical pixels (one run per cell). So the first row of a band is
//! written unfiltered, each run as one literal pixel followed by a deflate
//! back-reference to the pixel before it, and every other row of the band with the
//! Up filter, which makes it all zeros: a zero literal and back-references at
//! distance one. The tokens are counted and coded with one dynamic Huffman block, so
//! a long run costs a couple of bits per 258 bytes. The zlib checksum of the repeated
//! rows is computed in closed form. The result decodes to exactly the rendered grid.
//!
//! Colour type: grey when every cell is grey, colour otherwise, each with an alpha
//! channel when asked to keep one; 8 bits per sample, not interlaced, no metadata.

use pixelator_shared::grid::Grid;
use pixelator_shared::render::BlockMap;

use super::huffman::{limited_code_lengths, lsb_canonical_codes, run_length_code_lengths};

/// Why a grid could not be written as PNG.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PngWriteError {
    /// A zero width or height.
    #[error("cannot write an image of {width}x{height} pixels")]
    Empty {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// A row would not fit the format's limits on this platform.
    #[error("{width}x{height} is too large for PNG")]
    TooLarge {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
}

/// Writes `grid` drawn at `width x height` as a PNG file, with an alpha channel when
/// `keep_alpha` (else the cells' alpha is ignored).
pub fn encode_grid(
    grid: &Grid,
    width: u32,
    height: u32,
    keep_alpha: bool,
) -> Result<Vec<u8>, PngWriteError> {
    if width == 0 || height == 0 {
        return Err(PngWriteError::Empty { width, height });
    }
    if width > i32::MAX as u32 / 8 || height > i32::MAX as u32 {
        return Err(PngWriteError::TooLarge { width, height });
    }
    let gray = grid.is_gray();
    let alpha = keep_alpha;
    let (colour_type, channels) = match (gray, alpha) {
        (true, false) => (0u8, 1usize),
        (true, true) => (4, 2),
        (false, false) => (2, 3),
        (false, true) => (6, 4),
    };
    let pixel = |cell: [u8; 4]| -> [u8; 4] {
        match channels {
            1 => [cell[0], 0, 0, 0],
            2 => [cell[0], cell[3], 0, 0],
            _ => cell,
        }
    };

    let columns = BlockMap::new(width, grid.shape().columns);
    let rows = BlockMap::new(height, grid.shape().rows);
    let stride = width as usize * channels;
    let mut tokens = Tokens::default();
    let mut checksum = Adler32::default();
    let mut row_bytes = Vec::with_capacity(stride + 1);

    for grid_row in 0..grid.shape().rows {
        let span = rows.span(grid_row);
        if span.is_empty() {
            continue;
        }
        // The band's first row: unfiltered, each cell a literal and a copy.
        row_bytes.clear();
        row_bytes.push(0);
        let cells = grid.row(grid_row);
        for (cell, colour) in cells.iter().enumerate() {
            let pixels = columns.span(cell as u32).len();
            let bytes = &pixel(*colour)[..channels];
            for _ in 0..pixels {
                row_bytes.extend_from_slice(bytes);
            }
        }
        checksum.update(&row_bytes);
        tokens.literal(0);
        let mut at = 1;
        for cell in 0..cells.len() {
            let pixels = columns.span(cell as u32).len();
            if pixels == 0 {
                continue;
            }
            for &byte in &row_bytes[at..at + channels] {
                tokens.literal(byte);
            }
            let copied = (pixels - 1) * channels;
            tokens.repeat(channels, copied, &row_bytes[at..at + channels]);
            at += pixels * channels;
        }

        // The rest of the band: Up-filtered, so all zeros after the filter byte.
        let repeats = span.len() - 1;
        for _ in 0..repeats {
            tokens.literal(2);
            tokens.literal(0);
            tokens.repeat(1, stride - 1, &[0]);
        }
        checksum.update_repeated_zero_rows(2, stride, repeats);
    }

    let mut out = Vec::with_capacity(tokens.entries.len() / 2 + 256);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, colour_type, 0, 0, 0]);
    write_chunk(&mut out, b"IHDR", &header);

    let mut zlib = vec![0x78, 0x9C];
    write_deflate(&mut zlib, &tokens);
    zlib.extend_from_slice(&checksum.value().to_be_bytes());
    write_chunk(&mut out, b"IDAT", &zlib);
    write_chunk(&mut out, b"IEND", &[]);
    Ok(out)
}

fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (IEEE, reflected), as PNG chunks carry it.
fn crc32(data: &[u8]) -> u32 {
    use std::sync::OnceLock;
    static TABLE: OnceLock<[u32; 256]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|index| {
            let mut value = index as u32;
            for _ in 0..8 {
                value = if value & 1 != 0 {
                    0xEDB8_8320 ^ (value >> 1)
                } else {
                    value >> 1
                };
            }
            value
        })
    });
    !data.iter().fold(!0u32, |crc, &byte| {
        table[((crc ^ byte as u32) & 0xFF) as usize] ^ (crc >> 8)
    })
}

const ADLER_MODULUS: u32 = 65521;

/// The zlib checksum, with a shortcut for rows of zeros.
struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    fn update(&mut self, data: &[u8]) {
        // 5552 bytes is the longest stretch whose sums cannot overflow 32 bits.
        for chunk in data.chunks(5552) {
            for &byte in chunk {
                self.a += byte as u32;
                self.b += self.a;
            }
            self.a %= ADLER_MODULUS;
            self.b %= ADLER_MODULUS;
        }
    }

    /// `count` rows, each the byte `first` followed by `zeros` zero bytes.
    fn update_repeated_zero_rows(&mut self, first: u8, zeros: usize, count: usize) {
        let zeros = (zeros % ADLER_MODULUS as usize) as u64;
        for _ in 0..count {
            self.a = (self.a + first as u32) % ADLER_MODULUS;
            let b = self.b as u64 + self.a as u64 * (1 + zeros);
            self.b = (b % ADLER_MODULUS as u64) as u32;
        }
    }

    fn value(&self) -> u32 {
        self.b << 16 | self.a
    }
}

/// Deflate tokens with their counts per alphabet.
struct Tokens {
    /// A literal byte `b` is `b`; a copy is `1 << 31 | distance << 16 | length`.
    entries: Vec<u32>,
    literal_lengths: [u32; 286],
    distances: [u32; 30],
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            entries: Vec::new(),
            literal_lengths: [0; 286],
            distances: [0; 30],
        }
    }
}

const COPY: u32 = 1 << 31;

impl Tokens {
    fn literal(&mut self, byte: u8) {
        self.literal_lengths[byte as usize] += 1;
        self.entries.push(byte as u32);
    }

    /// `length` bytes repeating the `distance` bytes before them; `pattern` holds
    /// those bytes (for the few that are too short to copy).
    fn repeat(&mut self, distance: usize, mut length: usize, pattern: &[u8]) {
        let mut phase = 0;
        while length >= 3 {
            let mut take = length.min(258);
            if (1..3).contains(&(length - take)) {
                take = length - 3;
            }
            self.literal_lengths[length_code(take).0 as usize] += 1;
            self.distances[distance_code(distance).0 as usize] += 1;
            self.entries
                .push(COPY | (distance as u32) << 16 | take as u32);
            phase = (phase + take) % distance;
            length -= take;
        }
        for _ in 0..length {
            self.literal(pattern[phase]);
            phase = (phase + 1) % distance;
        }
    }
}

/// The length symbol (257..=285) for a copy of `length` bytes, its extra bits and
/// their count.
fn length_code(length: usize) -> (u32, u32, u32) {
    const BASES: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    let index = BASES.partition_point(|&base| base as usize <= length) - 1;
    (
        257 + index as u32,
        (length - BASES[index] as usize) as u32,
        EXTRA[index] as u32,
    )
}

/// The distance symbol (0..=29) for `distance`, its extra bits and their count.
fn distance_code(distance: usize) -> (u32, u32, u32) {
    if distance <= 4 {
        return (distance as u32 - 1, 0, 0);
    }
    let extra_bits = usize::BITS - 1 - (distance - 1).leading_zeros() - 1;
    let half = ((distance - 1) >> extra_bits) & 1;
    let symbol = 2 * extra_bits as usize + 2 + half;
    let base = ((2 + half) << extra_bits) + 1;
    (symbol as u32, (distance - base) as u32, extra_bits)
}

/// One final dynamic-Huffman deflate block holding `tokens`.
fn write_deflate(out: &mut Vec<u8>, tokens: &Tokens) {
    let mut literal_counts = tokens.literal_lengths;
    literal_counts[256] = 1;
    let mut distance_counts = tokens.distances;
    // Two distance codes at least, so the distance code is complete for every
    // inflater.
    for count in distance_counts.iter_mut().take(2) {
        *count = (*count).max(1);
    }
    let literal_lengths = limited_code_lengths(&literal_counts, 15);
    let distance_lengths = limited_code_lengths(&distance_counts, 15);
    let literal_codes = lsb_canonical_codes(&literal_lengths);
    let distance_codes = lsb_canonical_codes(&distance_lengths);

    let literal_count = 257.max(last_used(&literal_lengths));
    let distance_count = 1.max(last_used(&distance_lengths));
    let mut all_lengths = literal_lengths[..literal_count].to_vec();
    all_lengths.extend_from_slice(&distance_lengths[..distance_count]);
    let length_tokens = run_length_code_lengths(&all_lengths);
    let mut length_counts = [0u32; 19];
    for &(symbol, _) in &length_tokens {
        length_counts[symbol as usize] += 1;
    }
    let length_code_lengths = limited_code_lengths(&length_counts, 7);
    let length_codes = lsb_canonical_codes(&length_code_lengths);
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let code_length_count = 4.max(
        ORDER
            .iter()
            .rposition(|&symbol| length_code_lengths[symbol] > 0)
            .map_or(0, |index| index + 1),
    );

    let mut writer = LsbWriter {
        out,
        acc: 0,
        bits: 0,
    };
    writer.put(1, 1); // final block
    writer.put(2, 2); // dynamic Huffman codes
    writer.put(literal_count as u32 - 257, 5);
    writer.put(distance_count as u32 - 1, 5);
    writer.put(code_length_count as u32 - 4, 4);
    for &symbol in &ORDER[..code_length_count] {
        writer.put(length_code_lengths[symbol] as u32, 3);
    }
    for &(symbol, extra) in &length_tokens {
        let (code, length) = length_codes[symbol as usize];
        writer.put(code, length);
        match symbol {
            16 => writer.put(extra, 2),
            17 => writer.put(extra, 3),
            18 => writer.put(extra, 7),
            _ => {}
        }
    }

    for &entry in &tokens.entries {
        if entry & COPY == 0 {
            let (code, length) = literal_codes[entry as usize];
            writer.put(code, length);
            continue;
        }
        let length = (entry & 0xFFFF) as usize;
        let distance = ((entry >> 16) & 0x7FFF) as usize;
        let (symbol, extra, extra_bits) = length_code(length);
        let (code, code_length) = literal_codes[symbol as usize];
        writer.put(code, code_length);
        writer.put(extra, extra_bits);
        let (symbol, extra, extra_bits) = distance_code(distance);
        let (code, code_length) = distance_codes[symbol as usize];
        writer.put(code, code_length);
        writer.put(extra, extra_bits);
    }
    let (code, length) = literal_codes[256];
    writer.put(code, length);
    writer.finish();
}

fn last_used(lengths: &[u8]) -> usize {
    lengths.iter().rposition(|&l| l > 0).map_or(0, |i| i + 1)
}

struct LsbWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl LsbWriter<'_> {
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

    fn finish(&mut self) {
        while self.bits > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits = self.bits.saturating_sub(8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::test_grids::random_grid as grid;
    use pixelator_shared::grid::GridShape;
    use pixelator_shared::render::render_rgba;

    fn decoded_rgba(bytes: &[u8]) -> Vec<u8> {
        image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
            .expect("our PNG decodes")
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
            (700, 5, 64, true),
            (9000, 3, 7, false),
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
    fn grey_grids_are_written_grey_and_keep_alpha() {
        let cells = (0..16u8)
            .map(|i| [i * 16, i * 16, i * 16, 255 - i])
            .collect();
        let grid = Grid::from_cells(GridShape::new(4, 4), cells).unwrap();
        let bytes = encode_grid(&grid, 40, 30, true).unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!(decoded.color(), image::ColorType::La8);
        assert_eq!(
            decoded.to_rgba8().into_raw(),
            render_rgba(&grid, 40, 30).unwrap()
        );
    }

    #[test]
    fn a_large_flat_variant_is_small() {
        let grid = grid(8, 8, 3, false);
        let bytes = encode_grid(&grid, 4000, 3000, false).unwrap();
        assert!(bytes.len() < 60_000, "{} bytes", bytes.len());
        assert_eq!(decoded_rgba(&bytes).len(), 4000 * 3000 * 4);
    }

    #[test]
    fn checksums_match_the_reference_definitions() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        let mut adler = Adler32::default();
        adler.update(b"Wikipedia");
        assert_eq!(adler.value(), 0x11E6_0398);
        let mut shortcut = Adler32::default();
        shortcut.update_repeated_zero_rows(2, 70_000, 3);
        let mut direct = Adler32::default();
        for _ in 0..3 {
            direct.update(&[2]);
            direct.update(&vec![0; 70_000]);
        }
        assert_eq!(shortcut.value(), direct.value());
    }

    #[test]
    fn distance_and_length_codes_follow_the_deflate_tables() {
        assert_eq!(distance_code(1), (0, 0, 0));
        assert_eq!(distance_code(4), (3, 0, 0));
        assert_eq!(distance_code(5), (4, 0, 1));
        assert_eq!(distance_code(7), (5, 0, 1));
        assert_eq!(distance_code(24577), (29, 0, 13));
        assert_eq!(distance_code(32768), (29, 8191, 13));
        assert_eq!(length_code(3), (257, 0, 0));
        assert_eq!(length_code(11), (265, 0, 1));
        assert_eq!(length_code(257), (284, 30, 5));
        assert_eq!(length_code(258), (285, 0, 0));
    }
}
