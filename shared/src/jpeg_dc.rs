//! A JPEG decoder that keeps only the DC coefficient of every block: the picture at
//! 1/8 of its size, each pixel the exact mean of one 8x8 block.
//!
//! Pixelation shrinks a photo to at most 64 cells a side, so it needs the block means,
//! not the pixels: the triangle filter over the 1/8-scale picture lands within a
//! level or so of the filter over the full one when a cell spans several blocks. The
//! decoder still Huffman-decodes every coefficient of a sequential file (that is how
//! the blocks are found, and it checks the stream on the way), but it runs no inverse
//! DCT, no colour conversion of full-size pixels and no upsampling. In a progressive
//! file only the DC scans are decoded; the AC scans are stepped over by their
//! markers.
//!
//! What it reads: 8-bit Huffman-coded JPEG, sequential (SOF0, SOF1) or progressive
//! (SOF2), with one component (grey) or three (YCbCr), any sampling factors, restart
//! intervals. Anything else (arithmetic coding, 12 bits, lossless, CMYK or YCCK,
//! Adobe RGB, a height given by a DNL marker) is [`DcError::Unsupported`], and the
//! caller decodes the file with the general decoder. A stream that ends before its
//! end-of-image marker is [`DcError::Truncated`]; a stream that breaks the format is
//! [`DcError::Corrupt`]. No input makes it panic.
//!
//! The grids of the small picture ([`DcImage::grid_builder`], [`DcImage::grids`])
//! are laid out over the full image's geometry. Pillow's triangle filter over 8x8
//! block means lands within a level or two of the filter over the pixels while every
//! cell spans a few blocks. Measured against the classic reference grids of the bench
//! photos: with at least [`MIN_BLOCKS_PER_CELL`] blocks per cell along each axis every
//! channel of every cell is within 2 levels (mean under 0.2); at about 3 blocks per
//! cell the worst cells reach 3 levels and at 2.3 blocks per cell 6. So callers take
//! this path only where [`DcImage::grids_are_faithful`] holds, and decode smaller
//! images in full.
//!
//! The pipeline and the web page both compute the grids of a large JPEG this way, so
//! the page's previews of such a photo are the pipeline's grids exactly.

use std::fmt;

use crate::grid::{Grid, GridBuilder, GridError, GridShape, PixelLayout};

/// Why a file was not decoded at 1/8 scale. None of these is helped by trying
/// again: the same bytes give the same answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcError {
    /// A valid kind of JPEG this decoder does not read; a general decoder may.
    Unsupported(&'static str),
    /// The data ends before the image does.
    Truncated,
    /// The data breaks the JPEG format.
    Corrupt(&'static str),
    /// The image is larger than the limits allow.
    TooLarge {
        /// Width declared in the file.
        width: u32,
        /// Height declared in the file.
        height: u32,
    },
}

impl fmt::Display for DcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DcError::Unsupported(what) => write!(f, "not handled by the DC decoder: {what}"),
            DcError::Truncated => f.write_str("the JPEG data ends before the image is complete"),
            DcError::Corrupt(what) => write!(f, "corrupt JPEG data: {what}"),
            DcError::TooLarge { width, height } => {
                write!(f, "image of {width}x{height} pixels is larger than allowed")
            }
        }
    }
}

impl std::error::Error for DcError {}

/// Size limits checked against the frame header before anything is allocated.
#[derive(Clone, Copy, Debug)]
pub struct DcLimits {
    /// Largest width x height.
    pub max_pixels: u64,
    /// Largest width or height.
    pub max_dimension: u32,
}

/// The picture at 1/8 scale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcImage {
    /// Width of the full-size image.
    pub width: u32,
    /// Height of the full-size image.
    pub height: u32,
    /// Width of the small picture: one pixel per 8 full-size pixels, rounded up.
    pub dc_width: u32,
    /// Height of the small picture.
    pub dc_height: u32,
    /// `Gray` or `Rgb`.
    pub layout: PixelLayout,
    /// The small picture, row by row, tightly packed.
    pub pixels: Vec<u8>,
}

/// Decodes the DC coefficients of a JPEG file into a 1/8-scale picture.
pub fn decode_dc(bytes: &[u8], limits: DcLimits) -> Result<DcImage, DcError> {
    let mut state = Decoder {
        data: bytes,
        quant: [None; 4],
        dc_tables: Default::default(),
        ac_tables: Default::default(),
        restart_interval: 0,
        frame: None,
        adobe_transform: None,
        limits,
    };
    state.run()?;
    state.finish()
}

/// Cells of every grid must span at least this many 8x8 blocks along each axis for
/// grids of the 1/8-scale picture to be faithful to the full image's.
pub const MIN_BLOCKS_PER_CELL: u32 = 4;

/// Whether grids of `shapes`, on the stored pixels of a `width x height` JPEG, may
/// be computed from its 1/8-scale picture: every cell spans at least
/// [`MIN_BLOCKS_PER_CELL`] blocks along each axis. Known from the header alone, so a
/// caller can choose its path before decoding.
pub fn grids_are_faithful(width: u32, height: u32, shapes: &[GridShape]) -> bool {
    let least_pixels = 8 * MIN_BLOCKS_PER_CELL;
    shapes.iter().all(|shape| {
        width / shape.columns.max(1) >= least_pixels && height / shape.rows.max(1) >= least_pixels
    })
}

impl DcImage {
    /// Whether grids of `shapes` (on the stored pixels) computed from this picture
    /// stay faithful to the full image's (see [`grids_are_faithful`]).
    pub fn grids_are_faithful(&self, shapes: &[GridShape]) -> bool {
        grids_are_faithful(self.width, self.height, shapes)
    }

    /// A grid builder for this picture that lays the cells out where they lie on the
    /// full image (the picture's last column and row of blocks may be partly
    /// padding). Feed it [`DcImage::rows`].
    pub fn grid_builder(&self, shapes: &[GridShape]) -> Result<GridBuilder, GridError> {
        let extent = (self.width as f64 / 8.0, self.height as f64 / 8.0);
        GridBuilder::with_extent(self.dc_width, self.dc_height, extent, self.layout, shapes)
    }

    /// The rows of the picture, top to bottom.
    pub fn rows(&self) -> impl Iterator<Item = &[u8]> {
        let row_bytes = self.dc_width as usize * self.layout.channels();
        self.pixels.chunks_exact(row_bytes.max(1))
    }

    /// The grids of `shapes` (on the stored pixels, in their order): the builder of
    /// [`DcImage::grid_builder`] fed every row.
    pub fn grids(&self, shapes: &[GridShape]) -> Result<Vec<Grid>, GridError> {
        let mut builder = self.grid_builder(shapes)?;
        for row in self.rows() {
            builder.push_row(row)?;
        }
        builder.finish()
    }
}

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DQT: u8 = 0xDB;
const DHT: u8 = 0xC4;
const DRI: u8 = 0xDD;

struct Decoder<'a> {
    data: &'a [u8],
    /// The DC quantiser of each table as last defined.
    quant: [Option<u16>; 4],
    dc_tables: [Option<Box<HuffmanDecoder>>; 4],
    ac_tables: [Option<Box<HuffmanDecoder>>; 4],
    restart_interval: u16,
    frame: Option<Frame>,
    adobe_transform: Option<u8>,
    limits: DcLimits,
}

struct Frame {
    progressive: bool,
    width: u32,
    height: u32,
    max_h: u32,
    max_v: u32,
    mcus_across: u32,
    mcus_down: u32,
    components: Vec<FrameComponent>,
}

struct FrameComponent {
    id: u8,
    h: u32,
    v: u32,
    quant_table: usize,
    /// The DC quantiser, latched at the component's first scan.
    dc_quant: Option<u16>,
    /// Blocks across and down in the MCU-padded plane.
    blocks_across: u32,
    blocks_down: u32,
    /// Blocks that hold image data (the extent of a non-interleaved scan).
    real_across: u32,
    real_down: u32,
    /// DC coefficient of every block (quantised), row by row.
    dc: Vec<i32>,
    /// Whether a DC scan has covered this component.
    seen: bool,
}

/// One scan's view of a component.
struct ScanComponent {
    index: usize,
    dc_table: usize,
    ac_table: usize,
}

impl<'a> Decoder<'a> {
    fn run(&mut self) -> Result<(), DcError> {
        if self.data.len() < 2 || self.data[0] != 0xFF || self.data[1] != SOI {
            return Err(DcError::Corrupt("no start-of-image marker"));
        }
        let mut position = 2;
        loop {
            let (marker, at) = next_marker(self.data, position)?;
            position = at + 2;
            match marker {
                EOI => {
                    return if self.frame.is_some() {
                        Ok(())
                    } else {
                        Err(DcError::Corrupt("end of image before any frame"))
                    };
                }
                SOS => {
                    let body = segment(self.data, position)?;
                    let scan_start = position + 2 + body.len();
                    position = self.scan(body, scan_start)?;
                }
                0xD0..=0xD7 => return Err(DcError::Corrupt("restart marker outside a scan")),
                0x01 => {}
                _ => {
                    let body = segment(self.data, position)?;
                    position += 2 + body.len();
                    self.header_segment(marker, body)?;
                }
            }
        }
    }

    fn header_segment(&mut self, marker: u8, body: &[u8]) -> Result<(), DcError> {
        match marker {
            0xC0..=0xC2 => self.frame_header(marker == 0xC2, body),
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => Err(DcError::Unsupported(
                "lossless, hierarchical or arithmetic-coded JPEG",
            )),
            DHT => self.huffman_tables(body),
            DQT => self.quant_tables(body),
            DRI => {
                if body.len() != 2 {
                    return Err(DcError::Corrupt("bad restart interval segment"));
                }
                self.restart_interval = u16::from_be_bytes([body[0], body[1]]);
                Ok(())
            }
            0xDC => Err(DcError::Unsupported("height given by a DNL marker")),
            0xEE => {
                if body.len() >= 12 && body.starts_with(b"Adobe") {
                    self.adobe_transform = Some(body[11]);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn frame_header(&mut self, progressive: bool, body: &[u8]) -> Result<(), DcError> {
        if self.frame.is_some() {
            return Err(DcError::Unsupported("more than one frame"));
        }
        if body.len() < 6 {
            return Err(DcError::Corrupt("short frame header"));
        }
        if body[0] != 8 {
            return Err(DcError::Unsupported("sample precision other than 8 bits"));
        }
        let height = u16::from_be_bytes([body[1], body[2]]) as u32;
        let width = u16::from_be_bytes([body[3], body[4]]) as u32;
        let count = body[5] as usize;
        if height == 0 {
            return Err(DcError::Unsupported("height given by a DNL marker"));
        }
        if width == 0 {
            return Err(DcError::Corrupt("zero width"));
        }
        if width > self.limits.max_dimension
            || height > self.limits.max_dimension
            || width as u64 * height as u64 > self.limits.max_pixels
        {
            return Err(DcError::TooLarge { width, height });
        }
        if count != 1 && count != 3 {
            return Err(DcError::Unsupported("component count other than 1 or 3"));
        }
        if body.len() != 6 + 3 * count {
            return Err(DcError::Corrupt("frame header length"));
        }
        let mut components = Vec::with_capacity(count);
        for raw in body[6..].chunks_exact(3) {
            let (h, v) = ((raw[1] >> 4) as u32, (raw[1] & 15) as u32);
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || raw[2] > 3 {
                return Err(DcError::Corrupt("bad component in frame header"));
            }
            components.push(FrameComponent {
                id: raw[0],
                h,
                v,
                quant_table: raw[2] as usize,
                dc_quant: None,
                blocks_across: 0,
                blocks_down: 0,
                real_across: 0,
                real_down: 0,
                dc: Vec::new(),
                seen: false,
            });
        }
        if components
            .iter()
            .enumerate()
            .any(|(i, a)| components[..i].iter().any(|b| b.id == a.id))
        {
            return Err(DcError::Corrupt("two components with one id"));
        }
        let max_h = components.iter().map(|c| c.h).max().unwrap_or(1);
        let max_v = components.iter().map(|c| c.v).max().unwrap_or(1);
        let mcus_across = width.div_ceil(8 * max_h);
        let mcus_down = height.div_ceil(8 * max_v);
        for component in &mut components {
            component.blocks_across = mcus_across * component.h;
            component.blocks_down = mcus_down * component.v;
            component.real_across = (width * component.h).div_ceil(max_h).div_ceil(8);
            component.real_down = (height * component.v).div_ceil(max_v).div_ceil(8);
            component.dc =
                vec![0; component.blocks_across as usize * component.blocks_down as usize];
        }
        self.frame = Some(Frame {
            progressive,
            width,
            height,
            max_h,
            max_v,
            mcus_across,
            mcus_down,
            components,
        });
        Ok(())
    }

    fn huffman_tables(&mut self, mut body: &[u8]) -> Result<(), DcError> {
        while !body.is_empty() {
            if body.len() < 17 {
                return Err(DcError::Corrupt("short Huffman table"));
            }
            let (class, id) = (body[0] >> 4, (body[0] & 15) as usize);
            if class > 1 || id > 3 {
                return Err(DcError::Corrupt("bad Huffman table id"));
            }
            let mut counts = [0u8; 16];
            counts.copy_from_slice(&body[1..17]);
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            if total > 256 || body.len() < 17 + total {
                return Err(DcError::Corrupt("bad Huffman table size"));
            }
            let table = HuffmanDecoder::new(&counts, &body[17..17 + total], class == 1)?;
            if class == 0 {
                self.dc_tables[id] = Some(Box::new(table));
            } else {
                self.ac_tables[id] = Some(Box::new(table));
            }
            body = &body[17 + total..];
        }
        Ok(())
    }

    fn quant_tables(&mut self, mut body: &[u8]) -> Result<(), DcError> {
        while !body.is_empty() {
            let (precision, id) = (body[0] >> 4, (body[0] & 15) as usize);
            let size = if precision == 0 { 64 } else { 128 };
            if precision > 1 || id > 3 || body.len() < 1 + size {
                return Err(DcError::Corrupt("bad quantisation table"));
            }
            let dc = if precision == 0 {
                body[1] as u16
            } else {
                u16::from_be_bytes([body[1], body[2]])
            };
            self.quant[id] = Some(dc);
            body = &body[1 + size..];
        }
        Ok(())
    }

    /// Decodes (or steps over) one scan whose entropy data starts at `start`;
    /// returns where the marker after it starts.
    fn scan(&mut self, header: &[u8], start: usize) -> Result<usize, DcError> {
        let frame = self
            .frame
            .as_mut()
            .ok_or(DcError::Corrupt("scan before frame header"))?;
        if header.is_empty() {
            return Err(DcError::Corrupt("empty scan header"));
        }
        let count = header[0] as usize;
        if count == 0 || count > 4 || header.len() != 1 + 2 * count + 3 {
            return Err(DcError::Corrupt("scan header length"));
        }
        let mut components = Vec::with_capacity(count);
        for raw in header[1..1 + 2 * count].chunks_exact(2) {
            let index = frame
                .components
                .iter()
                .position(|c| c.id == raw[0])
                .ok_or(DcError::Corrupt("scan names an unknown component"))?;
            if components.iter().any(|c: &ScanComponent| c.index == index) {
                return Err(DcError::Corrupt("component twice in one scan"));
            }
            components.push(ScanComponent {
                index,
                dc_table: (raw[1] >> 4) as usize,
                ac_table: (raw[1] & 15) as usize,
            });
        }
        let tail = &header[1 + 2 * count..];
        let (spectral_start, spectral_end) = (tail[0], tail[1]);
        let (high, low) = (tail[2] >> 4, tail[2] & 15);

        if frame.progressive {
            if spectral_start > 0 {
                // An AC scan: nothing in it changes a block's mean.
                return skip_entropy_data(self.data, start);
            }
            if spectral_end != 0 || low > 13 {
                return Err(DcError::Corrupt("bad progressive DC scan"));
            }
        } else if spectral_start != 0 || spectral_end != 63 || high != 0 || low != 0 {
            return Err(DcError::Corrupt("bad sequential scan parameters"));
        }
        if count > 1 {
            let blocks: u32 = components
                .iter()
                .map(|c| frame.components[c.index].h * frame.components[c.index].v)
                .sum();
            if blocks > 10 {
                return Err(DcError::Corrupt("too many blocks in an MCU"));
            }
        }

        for scan_component in &components {
            let component = &mut frame.components[scan_component.index];
            if component.dc_quant.is_none() {
                component.dc_quant = Some(self.quant[component.quant_table].ok_or(
                    DcError::Corrupt("scan uses an undefined quantisation table"),
                )?);
            }
            let needs_ac = !frame.progressive;
            let dc_needed = high == 0;
            if (dc_needed
                && (scan_component.dc_table > 3
                    || self.dc_tables[scan_component.dc_table].is_none()))
                || (needs_ac
                    && (scan_component.ac_table > 3
                        || self.ac_tables[scan_component.ac_table].is_none()))
            {
                return Err(DcError::Corrupt("scan uses an undefined Huffman table"));
            }
            if high > 0 && !component.seen {
                return Err(DcError::Corrupt("DC refinement before the first DC scan"));
            }
        }

        let mut reader = BitReader::new(self.data, start);
        let mut predictions = [0i32; 4];
        let interleaved = count > 1;
        let (units_across, units_down) = if interleaved {
            (frame.mcus_across, frame.mcus_down)
        } else {
            let component = &frame.components[components[0].index];
            (component.real_across, component.real_down)
        };
        let total_units = units_across as u64 * units_down as u64;
        let restart = self.restart_interval as u64;

        let mut unit = 0u64;
        while unit < total_units {
            if restart > 0 && unit > 0 && unit.is_multiple_of(restart) {
                reader.restart()?;
                predictions = [0; 4];
            }
            let (unit_x, unit_y) = (
                (unit % units_across as u64) as u32,
                (unit / units_across as u64) as u32,
            );
            for (slot, scan_component) in components.iter().enumerate() {
                let component = &mut frame.components[scan_component.index];
                let (h, v) = if interleaved {
                    (component.h, component.v)
                } else {
                    (1, 1)
                };
                for sub_y in 0..v {
                    for sub_x in 0..h {
                        let block_x = unit_x * h + sub_x;
                        let block_y = unit_y * v + sub_y;
                        let at =
                            block_y as usize * component.blocks_across as usize + block_x as usize;
                        reader.refill();
                        if high == 0 {
                            let table = self.dc_tables[scan_component.dc_table]
                                .as_deref()
                                .expect("checked above");
                            let size = table.decode(&mut reader)? as u32;
                            if size > 11 {
                                return Err(DcError::Corrupt("DC difference out of range"));
                            }
                            let difference = reader.receive_extend(size);
                            predictions[slot] = predictions[slot].wrapping_add(difference);
                            component.dc[at] = predictions[slot].wrapping_shl(low as u32);
                        } else {
                            let bit = reader.bits(1) as i32;
                            component.dc[at] |= bit.wrapping_shl(low as u32);
                        }
                        if !frame.progressive {
                            let table = self.ac_tables[scan_component.ac_table]
                                .as_deref()
                                .expect("checked above");
                            table.skip_ac(&mut reader)?;
                        }
                    }
                }
            }
            unit += 1;
            if reader.overran() {
                break;
            }
        }
        reader.check_end()?;
        for scan_component in &components {
            frame.components[scan_component.index].seen = true;
        }
        reader.marker_position()
    }

    fn finish(self) -> Result<DcImage, DcError> {
        let frame = self.frame.expect("run() checked a frame exists");
        if frame.components.iter().any(|c| !c.seen) {
            return Err(DcError::Corrupt("a component has no DC scan"));
        }
        let layout = if frame.components.len() == 1 {
            PixelLayout::Gray
        } else {
            match self.adobe_transform {
                Some(0) => return Err(DcError::Unsupported("RGB JPEG (Adobe transform 0)")),
                _ => {
                    let ids: Vec<u8> = frame.components.iter().map(|c| c.id).collect();
                    if ids == b"RGB" {
                        return Err(DcError::Unsupported("RGB JPEG"));
                    }
                    PixelLayout::Rgb
                }
            }
        };
        let dc_width = frame.width.div_ceil(8);
        let dc_height = frame.height.div_ceil(8);

        // Per component: for each small-picture column and row, its block.
        let means: Vec<Vec<f32>> = frame
            .components
            .iter()
            .map(|c| {
                let scale = c.dc_quant.unwrap_or(1) as f32 / 8.0;
                c.dc.iter().map(|&value| value as f32 * scale).collect()
            })
            .collect();
        let lookup = |c: &FrameComponent| -> (Vec<usize>, Vec<usize>) {
            let columns = (0..dc_width)
                .map(|x| ((x * c.h / frame.max_h).min(c.blocks_across - 1)) as usize)
                .collect();
            let rows = (0..dc_height)
                .map(|y| {
                    ((y * c.v / frame.max_v).min(c.blocks_down - 1)) as usize
                        * c.blocks_across as usize
                })
                .collect();
            (columns, rows)
        };
        let maps: Vec<(Vec<usize>, Vec<usize>)> = frame.components.iter().map(lookup).collect();

        let channels = layout.channels();
        let mut pixels = Vec::with_capacity(dc_width as usize * dc_height as usize * channels);
        let byte = |value: f32| (value + 0.5).clamp(0.0, 255.0) as u8;
        for y in 0..dc_height as usize {
            for x in 0..dc_width as usize {
                let sample = |c: usize| means[c][maps[c].1[y] + maps[c].0[x]];
                let luma = sample(0) + 128.0;
                if channels == 1 {
                    pixels.push(byte(luma));
                } else {
                    let (blue, red) = (sample(1), sample(2));
                    pixels.push(byte(luma + 1.402 * red));
                    pixels.push(byte(luma - 0.344_136_3 * blue - 0.714_136_3 * red));
                    pixels.push(byte(luma + 1.772 * blue));
                }
            }
        }
        Ok(DcImage {
            width: frame.width,
            height: frame.height,
            dc_width,
            dc_height,
            layout,
            pixels,
        })
    }
}

/// The next marker at or after `position` (fill bytes 0xFF skipped): its code and
/// the offset of its 0xFF.
fn next_marker(data: &[u8], position: usize) -> Result<(u8, usize), DcError> {
    let mut at = position;
    loop {
        if at + 1 >= data.len() {
            return Err(DcError::Truncated);
        }
        if data[at] != 0xFF {
            return Err(DcError::Corrupt("expected a marker"));
        }
        if data[at + 1] == 0xFF {
            at += 1;
            continue;
        }
        return Ok((data[at + 1], at));
    }
}

/// The body of the segment whose length field is at `position`.
fn segment(data: &[u8], position: usize) -> Result<&[u8], DcError> {
    if position + 2 > data.len() {
        return Err(DcError::Truncated);
    }
    let length = u16::from_be_bytes([data[position], data[position + 1]]) as usize;
    if length < 2 {
        return Err(DcError::Corrupt("segment length below 2"));
    }
    data.get(position + 2..position + length)
        .ok_or(DcError::Truncated)
}

/// Steps over entropy-coded data from `start` to the next marker that is neither a
/// stuffed 0xFF nor a restart marker; returns the offset of that marker.
fn skip_entropy_data(data: &[u8], start: usize) -> Result<usize, DcError> {
    let mut at = start;
    while at + 1 < data.len() {
        match memchr_ff(&data[at..]) {
            None => break,
            Some(offset) => at += offset,
        }
        if at + 1 >= data.len() {
            break;
        }
        match data[at + 1] {
            0x00 | 0xD0..=0xD7 => at += 2,
            0xFF => at += 1,
            _ => return Ok(at),
        }
    }
    Err(DcError::Truncated)
}

fn memchr_ff(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == 0xFF)
}

/// Reads the bits of entropy-coded data, most significant first, undoing byte
/// stuffing and stopping at the first marker. Past a marker or the end of the data
/// it feeds zero bits and counts them, so a stream that runs short is noticed.
struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
    /// The low `count` bits are unread, oldest highest.
    buffer: u64,
    count: u32,
    /// How many of the unread bits are zeros fed after the data stopped.
    padding: u32,
    /// The marker the data stopped at (its 0xFF is at `position`).
    marker: Option<u8>,
    /// Whether the data ran out without a marker.
    ended: bool,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], position: usize) -> BitReader<'a> {
        BitReader {
            data,
            position,
            buffer: 0,
            count: 0,
            padding: 0,
            marker: None,
            ended: false,
        }
    }

    /// Tops the buffer up to at least 57 bits.
    #[inline]
    fn refill(&mut self) {
        // Eight bytes at once when none of them is 0xFF (no stuffing, no marker).
        if self.count <= 56
            && self.marker.is_none()
            && let Some(chunk) = self.data.get(self.position..self.position + 8)
        {
            let word = u64::from_be_bytes(chunk.try_into().expect("a slice of eight bytes"));
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                let take = (64 - self.count) / 8;
                self.buffer = if take == 8 {
                    word
                } else {
                    self.buffer << (8 * take) | word >> (64 - 8 * take)
                };
                self.position += take as usize;
                self.count += 8 * take;
                return;
            }
        }
        while self.count <= 56 {
            let byte = self.next_byte();
            self.buffer = self.buffer << 8 | byte as u64;
            self.count += 8;
        }
    }

    #[inline]
    fn next_byte(&mut self) -> u8 {
        if self.marker.is_none() && !self.ended {
            if let Some(&byte) = self.data.get(self.position) {
                if byte != 0xFF {
                    self.position += 1;
                    return byte;
                }
                // Skip fill bytes: 0xFF 0xFF ... before a marker.
                let mut next = self.position + 1;
                while self.data.get(next) == Some(&0xFF) {
                    next += 1;
                }
                match self.data.get(next) {
                    Some(0) => {
                        self.position = next + 1;
                        return 0xFF;
                    }
                    Some(&code) => {
                        self.position = next - 1;
                        self.marker = Some(code);
                    }
                    None => self.ended = true,
                }
            } else {
                self.ended = true;
            }
        }
        self.padding += 8;
        0
    }

    #[inline]
    fn peek(&self, bits: u32) -> u32 {
        ((self.buffer >> (self.count - bits)) & ((1u64 << bits) - 1)) as u32
    }

    #[inline]
    fn consume(&mut self, bits: u32) {
        self.count -= bits;
    }

    /// Reads `bits` (at most 16) bits; the buffer must hold them (after `refill`).
    #[inline]
    fn bits(&mut self, bits: u32) -> u32 {
        if self.count < bits {
            self.refill();
        }
        let value = self.peek(bits);
        self.consume(bits);
        value
    }

    /// Reads a `size`-bit coefficient and extends its sign (JPEG's EXTEND).
    #[inline]
    fn receive_extend(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let value = self.bits(size) as i32;
        if value < 1 << (size - 1) {
            value - (1 << size) + 1
        } else {
            value
        }
    }

    /// Whether more bits were read than the data held.
    fn overran(&self) -> bool {
        self.count < self.padding
    }

    /// After the last unit of a scan: the bits read must all have been data.
    fn check_end(&self) -> Result<(), DcError> {
        if self.overran() {
            if self.ended {
                return Err(DcError::Truncated);
            }
            return Err(DcError::Corrupt("entropy data ends early"));
        }
        Ok(())
    }

    /// Moves past the restart marker that must end this interval.
    fn restart(&mut self) -> Result<(), DcError> {
        self.check_end()?;
        if self.marker.is_none() && !self.ended {
            // Leftover bytes before the marker: skip to it.
            let at = skip_entropy_until_any_marker(self.data, self.position);
            match at {
                Some((code, offset)) => {
                    self.position = offset;
                    self.marker = Some(code);
                }
                None => self.ended = true,
            }
        }
        match self.marker {
            Some(0xD0..=0xD7) => {
                self.position += 2;
                self.marker = None;
                self.buffer = 0;
                self.count = 0;
                self.padding = 0;
                Ok(())
            }
            Some(_) => Err(DcError::Corrupt("missing restart marker")),
            None => Err(DcError::Truncated),
        }
    }

    /// Where the marker after the scan starts.
    fn marker_position(&self) -> Result<usize, DcError> {
        if self.marker.is_some() {
            return Ok(self.position);
        }
        if self.ended {
            return Err(DcError::Truncated);
        }
        skip_entropy_data(self.data, self.position)
    }
}

/// The first marker of any kind (restart markers included) at or after `start`.
fn skip_entropy_until_any_marker(data: &[u8], start: usize) -> Option<(u8, usize)> {
    let mut at = start;
    while at + 1 < data.len() {
        at += memchr_ff(&data[at..])?;
        if at + 1 >= data.len() {
            return None;
        }
        match data[at + 1] {
            0x00 => at += 2,
            0xFF => at += 1,
            code => return Some((code, at)),
        }
    }
    None
}

/// Bits looked up at once when decoding a Huffman code.
const LOOKUP_BITS: u32 = 9;

/// A Huffman table prepared for decoding.
struct HuffmanDecoder {
    /// Indexed by the next `LOOKUP_BITS` bits: `length << 8 | symbol`, or 0 when the
    /// code is longer.
    lookup: Vec<u16>,
    /// For AC tables, indexed the same way: when the code and the coefficient's
    /// extra bits both fit, `bits consumed | positions advanced << 5` (advance 64
    /// for end of block); 0 otherwise.
    skip: Vec<u16>,
    /// Largest code of each length (index = length), -1 when none.
    max_code: [i32; 18],
    /// `symbols` index of the first code of each length, minus that code.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl HuffmanDecoder {
    fn new(counts: &[u8; 16], symbols: &[u8], ac: bool) -> Result<HuffmanDecoder, DcError> {
        let mut lookup = vec![0u16; 1 << LOOKUP_BITS];
        let mut skip = vec![0u16; if ac { 1 << LOOKUP_BITS } else { 0 }];
        let mut max_code = [-1i32; 18];
        let mut offset = [0i32; 17];
        let mut code = 0u32;
        let mut index = 0usize;
        for length in 1..=16u32 {
            let count = counts[length as usize - 1] as u32;
            offset[length as usize] = index as i32 - code as i32;
            for _ in 0..count {
                if code >= 1 << length {
                    return Err(DcError::Corrupt("over-subscribed Huffman table"));
                }
                let symbol = symbols[index];
                if length <= LOOKUP_BITS {
                    let shift = LOOKUP_BITS - length;
                    let first = (code << shift) as usize;
                    for slot in first..first + (1 << shift) {
                        lookup[slot] = (length as u16) << 8 | symbol as u16;
                        if ac {
                            let (run, size) = ((symbol >> 4) as u32, (symbol & 15) as u32);
                            if size == 0 && run == 0 {
                                skip[slot] = length as u16 | 64 << 5;
                            } else if size == 0 && run == 15 {
                                skip[slot] = length as u16 | 16 << 5;
                            } else if size > 0 && length + size <= LOOKUP_BITS {
                                skip[slot] = (length + size) as u16 | ((run + 1) as u16) << 5;
                            }
                        }
                    }
                }
                code += 1;
                index += 1;
            }
            if count > 0 {
                max_code[length as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        max_code[17] = i32::MAX;
        Ok(HuffmanDecoder {
            lookup,
            skip,
            max_code,
            offset,
            symbols: symbols.to_vec(),
        })
    }

    /// Decodes one symbol; the reader must hold at least 16 bits.
    #[inline]
    fn decode(&self, reader: &mut BitReader<'_>) -> Result<u8, DcError> {
        if reader.count < 16 {
            reader.refill();
        }
        let entry = self.lookup[reader.peek(LOOKUP_BITS) as usize];
        if entry != 0 {
            reader.consume((entry >> 8) as u32);
            return Ok(entry as u8);
        }
        self.decode_long(reader)
    }

    #[cold]
    fn decode_long(&self, reader: &mut BitReader<'_>) -> Result<u8, DcError> {
        for length in LOOKUP_BITS + 1..=16 {
            let code = reader.peek(length) as i32;
            if code <= self.max_code[length as usize] {
                reader.consume(length);
                let index = self.offset[length as usize] + code;
                return self
                    .symbols
                    .get(index as usize)
                    .copied()
                    .ok_or(DcError::Corrupt("bad Huffman code"));
            }
        }
        Err(DcError::Corrupt("bad Huffman code"))
    }

    /// Steps over the 63 AC coefficients of a block.
    #[inline]
    fn skip_ac(&self, reader: &mut BitReader<'_>) -> Result<(), DcError> {
        let mut position = 1u32;
        while position < 64 {
            if reader.count < 32 {
                reader.refill();
            }
            let entry = self.skip[reader.peek(LOOKUP_BITS) as usize];
            if entry != 0 {
                reader.consume((entry & 31) as u32);
                let advance = (entry >> 5) as u32;
                if advance == 64 {
                    return Ok(());
                }
                position += advance;
                continue;
            }
            let symbol = self.decode(reader)?;
            let (run, size) = ((symbol >> 4) as u32, (symbol & 15) as u32);
            if size == 0 {
                if run == 15 {
                    position += 16;
                    continue;
                }
                if run == 0 {
                    return Ok(());
                }
                return Err(DcError::Corrupt("bad AC symbol"));
            }
            if size > 10 {
                return Err(DcError::Corrupt("AC coefficient out of range"));
            }
            reader.consume(size);
            position += run + 1;
        }
        if position > 64 {
            return Err(DcError::Corrupt("AC run past the end of a block"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[cfg(not(target_arch = "wasm32"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: DcLimits = DcLimits {
        max_pixels: 100_000_000,
        max_dimension: 30_000,
    };

    fn test_file(path: &str) -> Vec<u8> {
        let full = format!(
            "{}/../backend/tests/data/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&full).unwrap_or_else(|error| panic!("{full}: {error}"))
    }

    /// The 8x8 block means of the general decoder's full-size output.
    fn block_means(bytes: &[u8]) -> (u32, u32, usize, Vec<f64>) {
        let decoded = image::load_from_memory(bytes).unwrap();
        let (width, height) = (decoded.width(), decoded.height());
        let (channels, samples) = if decoded.color().channel_count() == 1 {
            (1, decoded.to_luma8().into_raw())
        } else {
            (3, decoded.to_rgb8().into_raw())
        };
        let (across, down) = (width.div_ceil(8), height.div_ceil(8));
        let mut means = vec![0f64; (across * down) as usize * channels];
        for by in 0..down {
            for bx in 0..across {
                // Blocks at the right and bottom edges are padded by repeating the
                // last pixel, as encoders do.
                for y in by * 8..by * 8 + 8 {
                    for x in bx * 8..bx * 8 + 8 {
                        let (x, y) = (x.min(width - 1), y.min(height - 1));
                        for c in 0..channels {
                            let at = ((y * width + x) as usize) * channels + c;
                            means[((by * across + bx) as usize) * channels + c] +=
                                samples[at] as f64 / 64.0;
                        }
                    }
                }
            }
        }
        (across, down, channels, means)
    }

    fn assert_close_to_block_means(path: &str) {
        let bytes = test_file(path);
        let dc = decode_dc(&bytes, LIMITS).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (across, down, channels, means) = block_means(&bytes);
        assert_eq!((dc.dc_width, dc.dc_height), (across, down), "{path}");
        assert_eq!(dc.layout.channels(), channels, "{path}");
        let differences: Vec<f64> = dc
            .pixels
            .iter()
            .zip(&means)
            .map(|(&ours, &theirs)| (ours as f64 - theirs).abs())
            .collect();
        let mean = differences.iter().sum::<f64>() / differences.len() as f64;
        // Interior blocks match to rounding; chroma upsampling and clamping in the
        // general decoder move some edge blocks by a few levels.
        assert!(mean < 1.5, "{path}: mean difference {mean:.2}");
    }

    #[test]
    fn block_means_match_the_general_decoder_for_every_sampling() {
        for path in [
            "jpeg/odd-420.jpg",
            "jpeg/odd-422.jpg",
            "jpeg/odd-444.jpg",
            "jpeg/odd-gray.jpg",
            "jpeg/odd-420-optimized.jpg",
        ] {
            assert_close_to_block_means(path);
        }
    }

    #[test]
    fn progressive_files_and_restart_intervals_are_read() {
        for path in [
            "jpeg/odd-420-progressive.jpg",
            "jpeg/odd-gray-progressive.jpg",
            "jpeg/odd-420-restart.jpg",
            "jpeg/odd-444-progressive-restart.jpg",
        ] {
            assert_close_to_block_means(path);
        }
    }

    #[test]
    fn progressive_and_sequential_encodings_agree() {
        let sequential = decode_dc(&test_file("jpeg/odd-420.jpg"), LIMITS).unwrap();
        let progressive = decode_dc(&test_file("jpeg/odd-420-progressive.jpg"), LIMITS).unwrap();
        assert_eq!(sequential.pixels, progressive.pixels);
    }

    #[test]
    fn a_truncated_file_is_refused_as_truncated() {
        let bytes = test_file("cases/c17-truncated.jpg");
        assert_eq!(decode_dc(&bytes, LIMITS), Err(DcError::Truncated));
        let whole = test_file("jpeg/odd-420-progressive.jpg");
        for cut in [whole.len() - 2, whole.len() / 2, 700] {
            assert_eq!(
                decode_dc(&whole[..cut], LIMITS),
                Err(DcError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn cmyk_and_ycck_are_left_to_the_general_decoder() {
        for path in ["cases/c11-cmyk-adobe.jpg", "cases/c11-ycck.jpg"] {
            assert!(
                matches!(
                    decode_dc(&test_file(path), LIMITS),
                    Err(DcError::Unsupported(_))
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn sizes_past_the_limits_are_refused_from_the_header() {
        let bytes = test_file("jpeg/odd-420.jpg");
        let tight = DcLimits {
            max_pixels: 1000,
            max_dimension: 30_000,
        };
        assert_eq!(
            decode_dc(&bytes, tight),
            Err(DcError::TooLarge {
                width: 301,
                height: 203
            })
        );
    }

    #[test]
    fn damaged_data_is_an_error() {
        let mut bytes = test_file("jpeg/odd-420.jpg");
        // Cut a hole in the middle of the entropy data: it now ends early or reads
        // codes that do not exist.
        let middle = bytes.len() / 2;
        bytes.drain(middle..middle + 1000);
        assert!(decode_dc(&bytes, LIMITS).is_err());
        assert!(decode_dc(b"", LIMITS).is_err());
        assert!(decode_dc(b"\xFF\xD8\xFF\xD9", LIMITS).is_err());
    }

    #[test]
    fn grids_of_the_small_picture_are_taken_only_where_cells_span_four_blocks() {
        let image = decode_dc(&test_file("jpeg/odd-420.jpg"), LIMITS).unwrap();
        // 301 x 203 pixels: 2 cells across span 18 blocks, 3 cells down 8.
        assert!(image.grids_are_faithful(&[GridShape::new(2, 3)]));
        assert!(!image.grids_are_faithful(&[GridShape::new(2, 3), GridShape::new(8, 8)]));
        assert!(grids_are_faithful(4032, 3024, &[GridShape::new(64, 64)]));
        assert!(!grids_are_faithful(2000, 1500, &[GridShape::new(64, 64)]));

        let grids = image.grids(&[GridShape::new(2, 3)]).unwrap();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].shape(), GridShape::new(2, 3));
        // The grid of the block means lies within the picture's range of colours.
        let (least, most) = (
            *image.pixels.iter().min().unwrap(),
            *image.pixels.iter().max().unwrap(),
        );
        for cell in grids[0].cells() {
            assert!(
                cell[..3]
                    .iter()
                    .all(|&sample| (least..=most).contains(&sample))
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Random damage to real files never makes the decoder panic or hang.
        #[test]
        fn mutated_files_never_panic(
            file in 0usize..4,
            edits in prop::collection::vec((0.0f64..1.0, any::<u8>(), 0u8..3), 1..8),
        ) {
            let name = [
                "jpeg/odd-420.jpg",
                "jpeg/odd-444-progressive-restart.jpg",
                "jpeg/odd-gray-progressive.jpg",
                "jpeg/odd-420-restart.jpg",
            ][file];
            let mut bytes = test_file(name);
            for (place, value, kind) in edits {
                let at = ((bytes.len() - 1) as f64 * place) as usize;
                match kind {
                    0 => bytes[at] = value,
                    1 => bytes.insert(at, value),
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            let _ = decode_dc(&bytes, LIMITS);
        }
    }
}
