//! Decoding: from an input's bytes to its grids, in the stored orientation.
//!
//! Each format is opened from its header first. The header gives the stored size,
//! which is checked against the [`Limits`] before any pixel buffer exists, so a
//! small file declaring a huge image is refused at once; `image`'s own limits are
//! set on every decoder as a second guard. The EXIF orientation is read by the
//! bounded parser in [`super::metadata`], which decodes nothing.
//!
//! The grids are computed on the stored pixels, in shapes that become the asked-for
//! shapes once turned upright; the caller turns them. Rows go into a
//! [`GridBuilder`] as 8-bit samples: PNG streams them one at a time from the `png`
//! crate's row reader, the other formats are decoded whole by `image` and then fed
//! row by row. 16-bit and floating-point samples are rounded to 8 bits on the way.
//!
//! Partial decodes are refused: a JPEG must reach its end-of-image marker, a WebP
//! must hold every byte its RIFF header declares, and a decoder's "unexpected end
//! of file" becomes [`CodecError::Truncated`]. The tests cut files of every format
//! at several points to hold this.

use std::io::Cursor;

use image::{ColorType, ImageDecoder, ImageError};
use pixelator_shared::PixelLayout;
use pixelator_shared::jpeg_dc::{DcError, DcLimits, decode_dc};
use pixelator_shared::wire::ImageFormat;
use pixelator_shared::{Grid, GridBuilder, GridError, GridMode, GridShape, Orientation};

use super::{CodecError, Limits, SourceImage, metadata};

/// Grids in the stored orientation of the image they came from.
#[derive(Clone, Debug)]
pub struct StoredGrids {
    /// What was decoded.
    pub source: SourceImage,
    /// One grid per asked-for size, in the stored orientation: turn each with
    /// `source.orientation.apply` to see it upright.
    pub grids: Vec<Grid>,
}

/// Which grids to compute: sizes and how they map onto the upright image.
#[derive(Clone, Copy, Debug)]
pub struct GridRequest<'a> {
    /// Grid sizes, in the order the grids are returned.
    pub sizes: &'a [u32],
    /// How a size maps onto the image.
    pub mode: GridMode,
}

/// Decodes `bytes`, known to be in `format`, into the requested grids.
pub fn decode(
    bytes: &[u8],
    format: ImageFormat,
    request: GridRequest<'_>,
    limits: &Limits,
) -> Result<StoredGrids, CodecError> {
    let orientation = metadata::orientation(format, bytes);
    let header = Header {
        format,
        orientation,
        request,
        limits,
    };
    let reader = Cursor::new(bytes);
    match format {
        ImageFormat::Png => decode_png(bytes, &header),
        ImageFormat::Jpeg => {
            if let Some(grids) = decode_jpeg_dc(bytes, &header)? {
                return Ok(grids);
            }
            let decoder = image::codecs::jpeg::JpegDecoder::new(reader)
                .map_err(|error| classify(format, error))?;
            // The decoder would fill a missing tail with grey; refuse it up front.
            metadata::jpeg_is_complete(bytes).map_err(|detail| CodecError::Truncated {
                format,
                detail: detail.to_owned(),
            })?;
            decode_whole(decoder, &header)
        }
        ImageFormat::Gif => {
            let decoder = image::codecs::gif::GifDecoder::new(reader)
                .map_err(|error| classify(format, error))?;
            decode_whole(decoder, &header)
        }
        ImageFormat::Webp => {
            let decoder = image::codecs::webp::WebPDecoder::new(reader)
                .map_err(|error| classify(format, error))?;
            metadata::webp_is_complete(bytes)
                .map_err(|detail| CodecError::Truncated { format, detail })?;
            decode_whole(decoder, &header)
        }
        ImageFormat::Bmp => {
            let decoder = image::codecs::bmp::BmpDecoder::new(reader)
                .map_err(|error| classify(format, error))?;
            decode_whole(decoder, &header)
        }
        ImageFormat::Tiff => {
            let decoder = image::codecs::tiff::TiffDecoder::new(reader)
                .map_err(|error| classify(format, error))?;
            decode_whole(decoder, &header)
        }
    }
}

/// What is known before any pixel is decoded.
struct Header<'a> {
    format: ImageFormat,
    orientation: Orientation,
    request: GridRequest<'a>,
    limits: &'a Limits,
}

impl Header<'_> {
    /// Checks the stored size against the limits and starts the grids for it.
    fn start(
        &self,
        stored_width: u32,
        stored_height: u32,
        layout: PixelLayout,
    ) -> Result<Grids, CodecError> {
        let shapes = self.stored_shapes(stored_width, stored_height)?;
        let builder = GridBuilder::new(stored_width, stored_height, layout, &shapes)
            .map_err(|error| self.grid_error(error))?;
        Ok(Grids {
            format: self.format,
            builder,
            translucent: false,
        })
    }

    /// Checks the stored size against the limits and gives the grid shapes to
    /// compute on the stored pixels.
    fn stored_shapes(
        &self,
        stored_width: u32,
        stored_height: u32,
    ) -> Result<Vec<GridShape>, CodecError> {
        self.limits.check(stored_width, stored_height)?;
        let (width, height) = self.orientation.upright_size(stored_width, stored_height);
        self.request
            .sizes
            .iter()
            .map(|&size| {
                let upright = GridShape::for_image(width, height, size, self.request.mode)?;
                Ok(self.orientation.stored_shape(upright))
            })
            .collect::<Result<Vec<_>, GridError>>()
            .map_err(|error| self.grid_error(error))
    }

    /// The image's own structure made a grid impossible (a zero width, say).
    fn grid_error(&self, error: GridError) -> CodecError {
        match error {
            GridError::EmptyGrid | GridError::NoGrids => CodecError::InvalidOptions {
                detail: error.to_string(),
            },
            other => CodecError::Corrupt {
                format: self.format,
                detail: other.to_string(),
            },
        }
    }

    fn finish(&self, grids: Grids) -> Result<StoredGrids, CodecError> {
        let (stored_width, stored_height, _) = grids.builder.image();
        let (width, height) = self.orientation.upright_size(stored_width, stored_height);
        let has_alpha = grids.translucent;
        let grids = grids
            .builder
            .finish()
            .map_err(|error| self.grid_error(error))?;
        Ok(StoredGrids {
            source: SourceImage {
                format: self.format,
                width,
                height,
                orientation: self.orientation,
                has_alpha,
            },
            grids,
        })
    }
}

/// The grids being computed, and whether any pixel so far was not fully opaque.
struct Grids {
    format: ImageFormat,
    builder: GridBuilder,
    translucent: bool,
}

impl Grids {
    /// Pushes one row of 8-bit samples in the builder's layout.
    fn push(&mut self, row: &[u8]) -> Result<(), CodecError> {
        let (_, _, layout) = self.builder.image();
        if layout.has_alpha() && !self.translucent {
            let channels = layout.channels();
            self.translucent = row
                .chunks_exact(channels)
                .any(|pixel| pixel[channels - 1] != u8::MAX);
        }
        self.builder
            .push_row(row)
            .map_err(|error| CodecError::Corrupt {
                format: self.format,
                detail: error.to_string(),
            })
    }
}

/// The grids of a JPEG from its DC coefficients alone (see
/// [`pixelator_shared::jpeg_dc`]), or `None` when the general decoder should read
/// it: a kind of JPEG the DC decoder leaves alone,
/// damage that the general decoder is the judge of, or an image too small for the
/// 1/8-scale picture to give the grids faithfully.
fn decode_jpeg_dc(bytes: &[u8], header: &Header<'_>) -> Result<Option<StoredGrids>, CodecError> {
    let format = header.format;
    let limits = DcLimits {
        max_pixels: header.limits.max_pixels,
        max_dimension: header.limits.max_dimension,
    };
    let image = match decode_dc(bytes, limits) {
        Ok(image) => image,
        Err(DcError::Truncated) => {
            return Err(CodecError::Truncated {
                format,
                detail: "the data ends before the end-of-image marker".to_owned(),
            });
        }
        Err(DcError::TooLarge { width, height }) => {
            header.limits.check(width, height)?;
            return Ok(None);
        }
        Err(DcError::Unsupported(_) | DcError::Corrupt(_)) => return Ok(None),
    };
    let shapes = header.stored_shapes(image.width, image.height)?;
    if !image.grids_are_faithful(&shapes) {
        return Ok(None);
    }
    let builder = image
        .grid_builder(&shapes)
        .map_err(|error| header.grid_error(error))?;
    let mut grids = Grids {
        format,
        builder,
        translucent: false,
    };
    for row in image.rows() {
        grids.push(row)?;
    }
    // The builder saw the 1/8-scale picture; the variants have the full size.
    let mut stored = header.finish(grids)?;
    let (width, height) = header.orientation.upright_size(image.width, image.height);
    stored.source.width = width;
    stored.source.height = height;
    Ok(Some(stored))
}

/// How the samples of a decoded row are stored, before they become 8-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Samples {
    /// One byte each.
    Bytes,
    /// Two bytes each, in the machine's byte order (as `image` hands them out).
    NativeU16,
    /// Two bytes each, big-endian (as PNG stores them).
    BigEndianU16,
    /// Four-byte floats in the machine's byte order, nominally 0.0 to 1.0.
    NativeF32,
}

/// Converts decoded rows to the 8-bit rows a [`GridBuilder`] takes.
struct RowConverter {
    samples: Samples,
    row: Vec<u8>,
}

impl RowConverter {
    fn new(samples: Samples) -> RowConverter {
        RowConverter {
            samples,
            row: Vec::new(),
        }
    }

    /// Pushes one decoded row into `grids`.
    fn push(&mut self, grids: &mut Grids, decoded: &[u8]) -> Result<(), CodecError> {
        self.row.clear();
        match self.samples {
            Samples::Bytes => return grids.push(decoded),
            Samples::NativeU16 => self.row.extend(
                decoded
                    .chunks_exact(2)
                    .map(|pair| narrow_u16(u16::from_ne_bytes([pair[0], pair[1]]))),
            ),
            Samples::BigEndianU16 => self.row.extend(
                decoded
                    .chunks_exact(2)
                    .map(|pair| narrow_u16(u16::from_be_bytes([pair[0], pair[1]]))),
            ),
            Samples::NativeF32 => self.row.extend(decoded.chunks_exact(4).map(|quad| {
                let value = f32::from_ne_bytes([quad[0], quad[1], quad[2], quad[3]]);
                (value.clamp(0.0, 1.0) * 255.0).round() as u8
            })),
        }
        grids.push(&self.row)
    }
}

/// A 16-bit sample rounded to the nearest 8-bit level.
fn narrow_u16(value: u16) -> u8 {
    ((value as u32 * 255 + 32_767) / 65_535) as u8
}

/// The 8-bit layout and sample storage of one of `image`'s colour types.
fn layout_of(format: ImageFormat, color: ColorType) -> Result<(PixelLayout, Samples), CodecError> {
    let layout = match color {
        ColorType::L8 => (PixelLayout::Gray, Samples::Bytes),
        ColorType::La8 => (PixelLayout::GrayAlpha, Samples::Bytes),
        ColorType::Rgb8 => (PixelLayout::Rgb, Samples::Bytes),
        ColorType::Rgba8 => (PixelLayout::Rgba, Samples::Bytes),
        ColorType::L16 => (PixelLayout::Gray, Samples::NativeU16),
        ColorType::La16 => (PixelLayout::GrayAlpha, Samples::NativeU16),
        ColorType::Rgb16 => (PixelLayout::Rgb, Samples::NativeU16),
        ColorType::Rgba16 => (PixelLayout::Rgba, Samples::NativeU16),
        ColorType::Rgb32F => (PixelLayout::Rgb, Samples::NativeF32),
        ColorType::Rgba32F => (PixelLayout::Rgba, Samples::NativeF32),
        other => {
            return Err(CodecError::UnsupportedFeature {
                format,
                detail: format!("colour type {other:?}"),
            });
        }
    };
    Ok(layout)
}

/// Decodes a whole image with one of `image`'s decoders, then feeds its rows.
fn decode_whole(
    mut decoder: impl ImageDecoder,
    header: &Header<'_>,
) -> Result<StoredGrids, CodecError> {
    let format = header.format;
    let (width, height) = decoder.dimensions();
    header.limits.check(width, height)?;
    decoder
        .set_limits(header.limits.for_image())
        .map_err(|error| classify(format, error))?;

    let (layout, samples) = layout_of(format, decoder.color_type())?;
    let mut grids = header.start(width, height, layout)?;
    let total = decoder.total_bytes();
    header.limits.check_allocation(total)?;
    let mut pixels = allocate(total)?;
    decoder
        .read_image(&mut pixels)
        .map_err(|error| classify(format, error))?;

    let row_bytes = pixels.len() / height as usize;
    let mut converter = RowConverter::new(samples);
    for row in pixels.chunks_exact(row_bytes) {
        converter.push(&mut grids, row)?;
    }
    drop(pixels);
    header.finish(grids)
}

/// A zeroed buffer of `bytes`, or a refusal when the allocator cannot give it.
fn allocate(bytes: u64) -> Result<Vec<u8>, CodecError> {
    let too_large = || CodecError::TooLarge {
        detail: format!("decoding needs {bytes} bytes of memory, which are not available"),
    };
    let length = usize::try_from(bytes).map_err(|_| too_large())?;
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(length).map_err(|_| too_large())?;
    buffer.resize(length, 0);
    Ok(buffer)
}

/// Streams a PNG's rows from the `png` crate (interlaced images are read whole,
/// since their rows arrive in passes).
fn decode_png(bytes: &[u8], header: &Header<'_>) -> Result<StoredGrids, CodecError> {
    let format = ImageFormat::Png;
    let png_error = |error: png::DecodingError| classify_png(error);
    let memory = usize::try_from(header.limits.max_alloc()).unwrap_or(usize::MAX);
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: memory });
    decoder.set_ignore_text_chunk(true);
    let (width, height) = decoder.read_header_info().map_err(png_error)?.size();
    // Refused here, from the header, before any row or buffer exists.
    header.limits.check(width, height)?;

    // Palettes become RGB(A) with their tRNS alpha, low bit depths become 8 bits;
    // 16-bit samples stay 16-bit and are rounded below.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let (color, depth) = reader.output_color_type();
    let layout = match color {
        png::ColorType::Grayscale => PixelLayout::Gray,
        png::ColorType::GrayscaleAlpha => PixelLayout::GrayAlpha,
        png::ColorType::Rgb => PixelLayout::Rgb,
        png::ColorType::Rgba => PixelLayout::Rgba,
        png::ColorType::Indexed => {
            return Err(CodecError::UnsupportedFeature {
                format,
                detail: "a palette the decoder did not expand".to_owned(),
            });
        }
    };
    let samples = match depth {
        png::BitDepth::Sixteen => Samples::BigEndianU16,
        _ => Samples::Bytes,
    };
    let mut grids = header.start(width, height, layout)?;
    let mut converter = RowConverter::new(samples);

    if reader.info().interlaced {
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| CodecError::TooLarge {
                detail: format!("a {width}x{height} interlaced PNG does not fit in memory"),
            })?;
        header.limits.check_allocation(size as u64)?;
        let mut pixels = allocate(size as u64)?;
        let frame = reader.next_frame(&mut pixels).map_err(png_error)?;
        for row in pixels[..frame.buffer_size()].chunks_exact(frame.line_size) {
            converter.push(&mut grids, row)?;
        }
    } else {
        while let Some(row) = reader.next_row().map_err(png_error)? {
            converter.push(&mut grids, row.data())?;
        }
    }
    header.finish(grids)
}

/// Whether an I/O error means the input ran out.
fn is_end_of_input(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::UnexpectedEof
}

fn classify_png(error: png::DecodingError) -> CodecError {
    let format = ImageFormat::Png;
    match error {
        png::DecodingError::IoError(error) if is_end_of_input(&error) => CodecError::Truncated {
            format,
            detail: "the data ends before the image does".to_owned(),
        },
        png::DecodingError::LimitsExceeded => CodecError::TooLarge {
            detail: "decoding the PNG would exceed the memory limit".to_owned(),
        },
        other => CodecError::Corrupt {
            format,
            detail: other.to_string(),
        },
    }
}

/// Maps an `image` error to the reason a person reads.
fn classify(format: ImageFormat, error: ImageError) -> CodecError {
    match error {
        ImageError::IoError(error) if is_end_of_input(&error) => CodecError::Truncated {
            format,
            detail: "the data ends before the image does".to_owned(),
        },
        ImageError::Limits(limit) => CodecError::TooLarge {
            detail: format!("{} decoding stopped at a limit: {limit}", format.name()),
        },
        ImageError::Unsupported(unsupported) => CodecError::UnsupportedFeature {
            format,
            detail: unsupported.to_string(),
        },
        other => {
            let detail = other.to_string();
            if mentions_end_of_input(&detail) {
                CodecError::Truncated { format, detail }
            } else {
                CodecError::Corrupt { format, detail }
            }
        }
    }
}

/// Some decoders report running out of data as a format error; their messages say so.
fn mentions_end_of_input(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "unexpected end",
        "unexpected eof",
        "end of file",
        "truncated",
        "eof",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}
