//! Encoding: one upright grid drawn at full size, written in one format.
//!
//! A variant is a grid enlarged with the nearest-neighbour block map, so it is
//! nothing but flat rectangles. The encoders are chosen and set up for that:
//!
//! - **JPEG**, quality [`JPEG_QUALITY`], no chroma subsampling (4:4:4). An 8x8 DCT
//!   block that lies inside one grid cell is flat and costs only its DC coefficient
//!   at any quality; the bytes go to the blocks that a cell edge crosses, since
//!   edges are not aligned to the 8x8 raster. Low quality rings and smears colour
//!   around exactly those edges, which on flat colour is plain to see, while high
//!   quality costs little because most blocks are flat. Full-resolution chroma keeps
//!   the colour edges as sharp as the brightness edges. The encoder reads the
//!   variant pixel by pixel through a view of the grid, so the full-size picture is
//!   never held in memory.
//! - **PNG**, 8-bit truecolour (grey when the grid is grey), with alpha when the
//!   source has transparency, written row by row. Rows repeat within a block, so
//!   the adaptive filter turns most of them into zeros ("same as the row above")
//!   and the fast fdeflate compressor shrinks those runs to almost nothing; slower
//!   levels gain little on such data.
//! - **GIF**, one frame with the exact palette of the grid's colours when they fit
//!   in 256 entries, otherwise a median-cut palette of them (see [`super::palette`]);
//!   no dithering.
//! - **WebP**, lossless: flat blocks cost next to nothing, and the colours stay
//!   exact.
//! - **TIFF**, Deflate with the horizontal predictor, which turns each block's row
//!   into zeros after its first pixel.
//! - **BMP**, uncompressed 24-bit, or 32-bit with alpha.
//!
//! Formats whose encoders take a whole picture (WebP, TIFF, BMP, GIF's index
//! buffer) get one full-size buffer, dropped before the next variant is drawn.

use std::io::{Cursor, Write};

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, GenericImageView, ImageEncoder, Luma, Rgb};
use pixelator_shared::wire::ImageFormat;
use pixelator_shared::{BlockMap, Grid};

use super::{CodecError, palette};

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
        ImageFormat::Jpeg => encode_jpeg(grid, width, height, gray),
        ImageFormat::Png => {
            let channels = Channels::choose(has_alpha, gray);
            encode_png(&Painter::new(grid, width, height, channels))
        }
        ImageFormat::Gif => encode_gif(grid, width, height),
        ImageFormat::Webp => {
            let channels = Channels::choose(has_alpha, false);
            encode_webp(&Painter::new(grid, width, height, channels))
        }
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

/// A variant seen as an image without drawing it: each pixel is looked up in the
/// grid through per-column and per-row cell tables.
struct BlockView<'a, P> {
    grid: &'a Grid,
    cell_column: Vec<usize>,
    cell_row_start: Vec<usize>,
    to_pixel: fn([u8; 4]) -> P,
}

impl<'a, P> BlockView<'a, P> {
    fn new(grid: &'a Grid, width: u32, height: u32, to_pixel: fn([u8; 4]) -> P) -> Self {
        let columns = BlockMap::new(width, grid.shape().columns);
        let rows = BlockMap::new(height, grid.shape().rows);
        let stride = grid.shape().columns as usize;
        BlockView {
            grid,
            cell_column: (0..width).map(|x| columns.cell_of(x) as usize).collect(),
            cell_row_start: (0..height)
                .map(|y| rows.cell_of(y) as usize * stride)
                .collect(),
            to_pixel,
        }
    }
}

impl<P: image::Pixel> GenericImageView for BlockView<'_, P> {
    type Pixel = P;

    fn dimensions(&self) -> (u32, u32) {
        (
            self.cell_column.len() as u32,
            self.cell_row_start.len() as u32,
        )
    }

    fn get_pixel(&self, x: u32, y: u32) -> P {
        let cell = self.cell_row_start[y as usize] + self.cell_column[x as usize];
        (self.to_pixel)(self.grid.cells()[cell])
    }
}

fn encode_jpeg(grid: &Grid, width: u32, height: u32, gray: bool) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
    let result = if gray {
        encoder.encode_image(&BlockView::new(grid, width, height, |cell| Luma([cell[0]])))
    } else {
        encoder.encode_image(&BlockView::new(grid, width, height, |cell| {
            Rgb([cell[0], cell[1], cell[2]])
        }))
    };
    result.map_err(|error| unwritable(ImageFormat::Jpeg, error))?;
    Ok(out)
}

fn encode_png(painter: &Painter<'_>) -> Result<Vec<u8>, CodecError> {
    let format = ImageFormat::Png;
    let failed = |error: png::EncodingError| unwritable(format, error);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, painter.width(), painter.height());
    encoder.set_color(match painter.channels {
        Channels::Gray => png::ColorType::Grayscale,
        Channels::Rgb => png::ColorType::Rgb,
        Channels::Rgba => png::ColorType::Rgba,
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Adaptive);
    let mut writer = encoder.write_header().map_err(failed)?;
    let mut stream = writer.stream_writer().map_err(failed)?;
    painter
        .for_each_row(|row| stream.write_all(row))
        .map_err(|error| unwritable(format, error))?;
    stream.finish().map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
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

fn encode_webp(painter: &Painter<'_>) -> Result<Vec<u8>, CodecError> {
    let format = ImageFormat::Webp;
    let pixels = painter.materialise();
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(
            &pixels,
            painter.width(),
            painter.height(),
            painter.channels.extended(),
        )
        .map_err(|error| unwritable(format, error))?;
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
