//! Encoding: one upright grid drawn at full size, written in one format.
//!
//! A variant is a grid enlarged with the nearest-neighbour block map, so it is
//! nothing but flat rectangles. The encoders are chosen and set up for that:
//!
//! - **JPEG**, written by [`super::jpeg::encode`] straight from the grid: a block
//!   inside one cell is flat and costs only its DC coefficient, a block a cell edge
//!   crosses gets a one-dimensional DCT (a two-dimensional one only at a cell's
//!   corner), and the Huffman tables are optimised for each variant. Quality
//!   [`JPEG_QUALITY`]: low quality rings and smears colour around the cell edges,
//!   which on flat colour is plain to see, while high quality costs little because
//!   most blocks are flat. Chroma is subsampled (4:2:0) only when the grid's colour
//!   edges are gentle enough for it to stay faithful (see
//!   [`super::jpeg::encode::ChromaSampling::for_grid`]), otherwise kept whole.
//! - **PNG**, written by [`super::png_writer`] from the grid's runs: 8-bit
//!   truecolour (grey when the grid is grey), with alpha when the source has
//!   transparency; the deflate stream is built from back-references, so a repeated
//!   row costs a few bytes.
//! - **GIF**, one frame with the exact palette of the grid's colours when they fit
//!   in 256 entries, otherwise a median-cut palette of them (see [`super::palette`]);
//!   no dithering.
//! - **WebP**, lossless (VP8L), written by [`super::webp_writer`] from the grid:
//!   a repeated row is one back-reference to the row above; the colours stay exact.
//! - **TIFF**, Deflate with the horizontal predictor, which turns each block's row
//!   into zeros after its first pixel.
//! - **BMP**, uncompressed 24-bit, or 32-bit with alpha.
//!
//! Formats whose encoders take a whole picture (TIFF, BMP, GIF's index buffer) get
//! one full-size buffer, dropped before the next variant is drawn.

use std::io::Cursor;

use image::{ExtendedColorType, ImageEncoder};
use pixelator_shared::wire::ImageFormat;
use pixelator_shared::{BlockMap, Grid};

use super::jpeg::encode::{ChromaSampling, JpegSettings};
use super::{CodecError, jpeg, palette, png_writer, webp_writer};

/// The JPEG quality of variants (1-100); see the module documentation for why it
/// is high.
pub const JPEG_QUALITY: u8 = 90;

/// Writes `grid` enlarged to `width x height` in `format`. `has_alpha` says whether
/// the source had transparency to keep; formats without alpha (JPEG) ignore it.
pub fn encode(
    grid: &Grid,
    width: u32,
    height: u32,
    format: ImageFormat,
    has_alpha: bool,
) -> Result<Vec<u8>, CodecError> {
    if width == 0 || height == 0 {
        return Err(CodecError::Unwritable {
            format,
            detail: format!("a {width}x{height} image has no pixels"),
        });
    }
    let gray = grid.is_gray();
    match format {
        ImageFormat::Jpeg => encode_jpeg(grid, width, height),
        ImageFormat::Png => png_writer::encode_grid(grid, width, height, has_alpha)
            .map_err(|error| unwritable(format, error)),
        ImageFormat::Gif => encode_gif(grid, width, height),
        ImageFormat::Webp => webp_writer::encode_grid(grid, width, height, has_alpha)
            .map_err(|error| unwritable(format, error)),
        ImageFormat::Tiff => {
            let channels = Channels::choose(has_alpha, gray);
            encode_tiff(&Painter::new(grid, width, height, channels))
        }
        ImageFormat::Bmp => {
            let channels = Channels::choose(has_alpha, false);
            encode_bmp(&Painter::new(grid, width, height, channels))
        }
    }
}

/// Which samples a written pixel has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channels {
    Gray,
    Rgb,
    Rgba,
}

impl Channels {
    fn choose(has_alpha: bool, gray: bool) -> Channels {
        match (has_alpha, gray) {
            (true, _) => Channels::Rgba,
            (false, true) => Channels::Gray,
            (false, false) => Channels::Rgb,
        }
    }

    fn count(self) -> usize {
        match self {
            Channels::Gray => 1,
            Channels::Rgb => 3,
            Channels::Rgba => 4,
        }
    }

    fn extended(self) -> ExtendedColorType {
        match self {
            Channels::Gray => ExtendedColorType::L8,
            Channels::Rgb => ExtendedColorType::Rgb8,
            Channels::Rgba => ExtendedColorType::Rgba8,
        }
    }
}

/// Draws a grid at full size, one row at a time.
struct Painter<'a> {
    grid: &'a Grid,
    columns: BlockMap,
    rows: BlockMap,
    channels: Channels,
}

impl<'a> Painter<'a> {
    fn new(grid: &'a Grid, width: u32, height: u32, channels: Channels) -> Painter<'a> {
        Painter {
            grid,
            columns: BlockMap::new(width, grid.shape().columns),
            rows: BlockMap::new(height, grid.shape().rows),
            channels,
        }
    }

    fn width(&self) -> u32 {
        self.columns.length()
    }

    fn height(&self) -> u32 {
        self.rows.length()
    }

    fn row_bytes(&self) -> usize {
        self.width() as usize * self.channels.count()
    }

    /// Draws grid row `grid_row` into `out`, one full-size row.
    fn paint(&self, grid_row: u32, out: &mut [u8]) {
        let channels = self.channels.count();
        for (column, cell) in self.grid.row(grid_row).iter().enumerate() {
            let span = self.columns.span(column as u32);
            let pixels = &mut out[span.start as usize * channels..span.end as usize * channels];
            match self.channels {
                Channels::Gray => pixels.fill(cell[0]),
                Channels::Rgb => pixels
                    .chunks_exact_mut(3)
                    .for_each(|pixel| pixel.copy_from_slice(&cell[..3])),
                Channels::Rgba => pixels
                    .chunks_exact_mut(4)
                    .for_each(|pixel| pixel.copy_from_slice(cell)),
            }
        }
    }

    /// Calls `write` with every full-size row, top to bottom. Each grid row is drawn
    /// once and handed out as many times as it is tall.
    fn for_each_row<E>(&self, mut write: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut row = vec![0u8; self.row_bytes()];
        for grid_row in 0..self.grid.shape().rows {
            let span = self.rows.span(grid_row);
            if span.is_empty() {
                continue;
            }
            self.paint(grid_row, &mut row);
            for _ in span {
                write(&row)?;
            }
        }
        Ok(())
    }

    /// The whole picture in one buffer, for encoders that need it.
    fn materialise(&self) -> Vec<u8> {
        let mut pixels = Vec::with_capacity(self.row_bytes() * self.height() as usize);
        self.for_each_row(|row| {
            pixels.extend_from_slice(row);
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        pixels
    }
}

fn encode_jpeg(grid: &Grid, width: u32, height: u32) -> Result<Vec<u8>, CodecError> {
    let settings = JpegSettings {
        quality: JPEG_QUALITY,
        chroma: ChromaSampling::for_grid(grid, width, height),
    };
    jpeg::encode::encode_grid(grid, width, height, &settings)
        .map_err(|error| unwritable(ImageFormat::Jpeg, error))
}

fn encode_gif(grid: &Grid, width: u32, height: u32) -> Result<Vec<u8>, CodecError> {
    let format = ImageFormat::Gif;
    let (Ok(gif_width), Ok(gif_height)) = (u16::try_from(width), u16::try_from(height)) else {
        return Err(CodecError::Unwritable {
            format,
            detail: format!("GIF cannot hold {width}x{height} pixels (at most 65535 a side)"),
        });
    };
    let indexed = palette::index_grid(grid);

    // The index buffer is drawn like a one-channel picture of the indices.
    let index_cells = indexed
        .indices
        .iter()
        .map(|&index| [index, index, index, u8::MAX])
        .collect();
    let index_grid =
        Grid::from_cells(grid.shape(), index_cells).expect("one index per cell of a valid grid");
    let indices = Painter::new(&index_grid, width, height, Channels::Gray).materialise();

    let failed = |error: gif::EncodingError| unwritable(format, error);
    let mut out = Vec::new();
    let mut encoder = gif::Encoder::new(&mut out, gif_width, gif_height, &indexed.palette_bytes())
        .map_err(failed)?;
    let frame = gif::Frame {
        width: gif_width,
        height: gif_height,
        transparent: indexed.transparent,
        buffer: indices.into(),
        ..gif::Frame::default()
    };
    encoder.write_frame(&frame).map_err(failed)?;
    drop(encoder);
    Ok(out)
}

fn encode_bmp(painter: &Painter<'_>) -> Result<Vec<u8>, CodecError> {
    let format = ImageFormat::Bmp;
    let pixels = painter.materialise();
    let mut out = Vec::new();
    image::codecs::bmp::BmpEncoder::new(&mut out)
        .write_image(
            &pixels,
            painter.width(),
            painter.height(),
            painter.channels.extended(),
        )
        .map_err(|error| unwritable(format, error))?;
    Ok(out)
}

fn encode_tiff(painter: &Painter<'_>) -> Result<Vec<u8>, CodecError> {
    use tiff::encoder::{Compression, DeflateLevel, Predictor, TiffEncoder, colortype};

    let format = ImageFormat::Tiff;
    let failed = |error: tiff::TiffError| unwritable(format, error);
    // The `tiff` crate compresses only when given the whole picture at once (its
    // strip-by-strip writer leaves the data uncompressed), so draw it whole.
    let pixels = painter.materialise();
    let mut out = Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut out)
        .map_err(failed)?
        .with_compression(Compression::Deflate(DeflateLevel::Fast))
        .with_predictor(Predictor::Horizontal);
    let (width, height) = (painter.width(), painter.height());
    match painter.channels {
        Channels::Gray => encoder.write_image::<colortype::Gray8>(width, height, &pixels),
        Channels::Rgb => encoder.write_image::<colortype::RGB8>(width, height, &pixels),
        Channels::Rgba => {
            let mut image = encoder
                .new_image::<colortype::RGBA8>(width, height)
                .map_err(failed)?;
            // The fourth sample is straight (unassociated) alpha.
            const UNASSOCIATED_ALPHA: u16 = 2;
            image
                .encoder()
                .write_tag(tiff::tags::Tag::ExtraSamples, UNASSOCIATED_ALPHA)
                .map_err(failed)?;
            image.write_data(&pixels)
        }
    }
    .map_err(failed)?;
    Ok(out.into_inner())
}

fn unwritable(format: ImageFormat, error: impl std::fmt::Display) -> CodecError {
    CodecError::Unwritable {
        format,
        detail: error.to_string(),
    }
}
