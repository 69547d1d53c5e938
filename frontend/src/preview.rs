//! The previews: a file decoded upright by the browser, its grids computed by the
//! pipeline's own grid code.
//!
//! The browser decodes with `createImageBitmap`, which turns the picture by its EXIF
//! orientation (`imageOrientation: "from-image"`) and leaves colours as stored
//! (`colorSpaceConversion: "none"`), as the pipeline's decoder does. A large photo
//! is not decoded at full size: the grid code gets the smaller copy [`sampling`]
//! asks for, and when the file's header gives its upright size (stored size and
//! orientation, see [`Accepted::upright_size`]) the browser decodes straight to
//! that copy (shrink-on-load), which costs less than decoding the whole picture
//! and shrinking it after. The resize is given in upright pixels: Chromium turns
//! the picture first and then scales it to the size asked for, which a browser
//! test pins on a photo stored on its side. Without the upright size the picture
//! is decoded whole and shrunk by a second `createImageBitmap`. Either way the
//! work runs off the main thread and only the copy's pixels are read back.
//!
//! How the copy is known to give the pipeline's grids within a level or two: the
//! unit tests of [`sampling`] measure the copy's grids against the full image's on
//! every bench photo; a browser test measures the browser's own scaler against the
//! full picture on a picture made to alias; and the end-to-end test
//! (`backend/tests/web_page.rs`) compares the previews the page shows for a 12 MP
//! photo and an EXIF-rotated portrait, cell by cell, with the grids the pipeline
//! computes from the same files (at most 2 levels apart in any channel).
//!
//! A JPEG large enough that every cell of every grid spans at least four 8x8
//! blocks along each axis takes another path, the pipeline's own: the file's bytes
//! go through the DC-only decoder of [`pixelator_shared::jpeg_dc`] (the block means
//! at 1/8 scale, no browser decode), the grids are built from that picture on the
//! stored pixels and turned upright by the header's EXIF orientation, exactly as the
//! pipeline computes the grids of such a photo. The previews then are the
//! pipeline's grids, whatever the browser's JPEG decoder would have made of the
//! file. The decode runs on the page's thread (a 12 MP photo takes some tens of
//! milliseconds); a file it does not read (arithmetic coding, CMYK, damage) falls
//! back to the browser's decode.
//!
//! [`sampling`]: crate::sampling

use js_sys::Uint8Array;
use pixelator_shared::grid::{Grid, GridBuilder, GridError, GridShape, PixelLayout};
use pixelator_shared::jpeg_dc::{self, DcLimits, decode_dc};
use pixelator_shared::wire::ImageFormat;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, CanvasRenderingContext2d, ColorSpaceConversion, ContextAttributes2d, HtmlCanvasElement,
    ImageBitmap, ImageBitmapOptions, ImageOrientation, ResizeQuality,
};

use crate::browser::{describe, now, sleep};
use crate::checks::{Accepted, Limits, Refusal};
use crate::sampling::sample_size;

/// The grids of one image, ready to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    /// Upright width of the image.
    pub width: u32,
    /// Upright height of the image.
    pub height: u32,
    /// How the file was decoded for the grids.
    pub path: PreviewPath,
    /// The size of the copy the grids were computed on (the block means, on the
    /// JPEG path, in stored orientation).
    pub sampled: (u32, u32),
    /// Whether the browser decoded straight to that copy.
    pub shrunk_on_load: bool,
    /// One grid per grid size, in the order of the limits' sizes.
    pub grids: Vec<(u32, Grid)>,
    /// Milliseconds the decode took: the browser's, upright and off the main thread
    /// (to the smaller copy when it shrank on load); on the JPEG path reading the
    /// file's bytes and the DC decode.
    pub decode_ms: f64,
    /// Milliseconds from the decoded picture to its grids: making the smaller
    /// copy if the decode did not, reading its pixels back and the grid code, with
    /// any pause that keeps the page live in between. The wait a person sees after
    /// the decode.
    pub ready_ms: f64,
    /// Milliseconds of those spent before the grid code: the copy made and its
    /// pixels read back (none on the JPEG path).
    pub read_ms: f64,
    /// Milliseconds of those spent in the grid code itself (on the JPEG path with
    /// turning the grids upright).
    pub grid_ms: f64,
}

/// How a preview's picture was decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviewPath {
    /// The browser decoded the file (`createImageBitmap`) and the grids were
    /// computed on a copy of its pixels.
    Browser,
    /// The pipeline's DC-only JPEG decoder read the block means, and the grids were
    /// computed from them as the pipeline computes them.
    JpegBlockMeans,
}

impl PreviewPath {
    /// A short, stable name, used in the page's `data-path`.
    pub fn name(self) -> &'static str {
        match self {
            PreviewPath::Browser => "browser",
            PreviewPath::JpegBlockMeans => "jpeg-block-means",
        }
    }
}

/// Why no preview could be made.
#[derive(Clone, Debug, PartialEq)]
pub enum PreviewError {
    /// The image breaks a limit; it must not be uploaded.
    Refused(Refusal),
    /// The browser cannot decode this format, but the pipeline can (TIFF in most
    /// browsers): the file may still be uploaded.
    NotInThisBrowser(String),
}

/// Decodes the file `blob`, which passed the checks as `accepted`, upright and
/// computes its grids for `limits`.
pub async fn preview(
    blob: &Blob,
    limits: &Limits,
    accepted: &Accepted,
) -> Result<Preview, PreviewError> {
    // When browsers normally decode the format, a failed decode means a damaged
    // file, which is refused; TIFF is left to the pipeline.
    let decodable = accepted.format != ImageFormat::Tiff;
    let decode_error = |error: JsValue| {
        if decodable {
            PreviewError::Refused(Refusal::Undecodable(describe(&error)))
        } else {
            PreviewError::NotInThisBrowser(describe(&error))
        }
    };
    let started = now();

    // A large JPEG: the pipeline's own decoder and grids.
    if let Some(preview) = block_means_preview(blob, limits, accepted, started).await {
        return Ok(preview);
    }

    // Shrink on load: the header says the upright size, so the browser can decode
    // straight to the copy the grid code wants.
    if let Some((copy, shapes)) = shrink_on_load(accepted, limits) {
        let bitmap = decode_upright(blob, Some(copy.sampled))
            .await
            .map_err(decode_error)?;
        let decoded = now();
        // A browser honours the size asked for; one that did not is not trusted,
        // and the picture is decoded again at full size below.
        if (bitmap.width(), bitmap.height()) == copy.sampled {
            let pixels = read_pixels(&bitmap);
            bitmap.close();
            let pixels = pixels.map_err(decode_error)?;
            return grid_preview(&pixels, copy, &shapes, limits, started, decoded).await;
        }
        bitmap.close();
    }

    let bitmap = decode_upright(blob, None).await.map_err(decode_error)?;
    let decoded = now();
    let (width, height) = (bitmap.width(), bitmap.height());
    let checked = limits
        .check_pixels(width, height)
        .map_err(PreviewError::Refused)
        .and_then(|()| {
            limits
                .shapes(width, height)
                .map_err(|error| PreviewError::Refused(Refusal::Undecodable(error.to_string())))
        });
    let shapes = match checked {
        Ok(shapes) => shapes,
        Err(error) => {
            bitmap.close();
            return Err(error);
        }
    };

    let sampled = sample_size(width, height, &shapes);
    let pixels = read_sampled(&bitmap, sampled, ResizeQuality::Medium).await;
    bitmap.close();
    let pixels = pixels.map_err(decode_error)?;
    let copy = SampledCopy {
        upright: (width, height),
        sampled,
        shrunk_on_load: false,
    };
    grid_preview(&pixels, copy, &shapes, limits, started, decoded).await
}

/// The preview of a JPEG computed as the pipeline computes its grids (see the
/// module's documentation), or `None` when that path does not apply: not a JPEG,
/// a header that leaves the size or orientation open, an image too small for the
/// block means to give faithful grids, or a file the DC decoder does not read.
async fn block_means_preview(
    blob: &Blob,
    limits: &Limits,
    accepted: &Accepted,
    started: f64,
) -> Option<Preview> {
    if accepted.format != ImageFormat::Jpeg {
        return None;
    }
    let orientation = accepted.orientation?;
    let (stored_width, stored_height) = accepted.dimensions?;
    let (width, height) = orientation.upright_size(stored_width, stored_height);
    limits.check_pixels(width, height).ok()?;
    let stored_shapes: Vec<GridShape> = limits
        .shapes(width, height)
        .ok()?
        .into_iter()
        .map(|shape| orientation.stored_shape(shape))
        .collect();
    if !jpeg_dc::grids_are_faithful(stored_width, stored_height, &stored_shapes) {
        return None;
    }

    let buffer = JsFuture::from(blob.array_buffer()).await.ok()?;
    let bytes = Uint8Array::new(&buffer).to_vec();
    let dc_limits = DcLimits {
        max_pixels: limits.max_pixels,
        max_dimension: u32::MAX,
    };
    let image = decode_dc(&bytes, dc_limits).ok()?;
    drop(bytes);
    let decoded = now();
    // The header the checks read and the frame the decoder read agree on a sound
    // file; anything else is left to the browser.
    if (image.width, image.height) != (stored_width, stored_height) {
        return None;
    }

    let upright: Vec<Grid> = image
        .grids(&stored_shapes)
        .ok()?
        .iter()
        .map(|grid| orientation.apply(grid))
        .collect();
    let ready = now();
    Some(Preview {
        width,
        height,
        path: PreviewPath::JpegBlockMeans,
        sampled: (image.dc_width, image.dc_height),
        shrunk_on_load: false,
        grids: limits.grid_sizes.iter().copied().zip(upright).collect(),
        decode_ms: decoded - started,
        ready_ms: ready - decoded,
        read_ms: 0.0,
        grid_ms: ready - decoded,
    })
}

/// The copy to decode straight to, and the grid shapes, when the header gives the
/// upright size and the copy is smaller than the picture.
fn shrink_on_load(accepted: &Accepted, limits: &Limits) -> Option<(SampledCopy, Vec<GridShape>)> {
    let upright = accepted.upright_size()?;
    let shapes = limits.shapes(upright.0, upright.1).ok()?;
    let sampled = sample_size(upright.0, upright.1, &shapes);
    let copy = SampledCopy {
        upright,
        sampled,
        shrunk_on_load: true,
    };
    (sampled != upright).then_some((copy, shapes))
}

/// The picture the grid code reads: its upright size, the size of the copy read
/// back, and how the copy was made.
struct SampledCopy {
    upright: (u32, u32),
    sampled: (u32, u32),
    shrunk_on_load: bool,
}

/// The preview of a copy's `pixels`, timed from `started` (before the decode) and
/// `decoded` (after it).
async fn grid_preview(
    pixels: &[u8],
    copy: SampledCopy,
    shapes: &[GridShape],
    limits: &Limits,
    started: f64,
    decoded: f64,
) -> Result<Preview, PreviewError> {
    let read = now();
    let (grids, grid_ms) = grids_in_slices(pixels, copy.sampled, shapes)
        .await
        .map_err(|error| PreviewError::Refused(Refusal::Undecodable(error.to_string())))?;
    Ok(Preview {
        width: copy.upright.0,
        height: copy.upright.1,
        path: PreviewPath::Browser,
        sampled: copy.sampled,
        shrunk_on_load: copy.shrunk_on_load,
        grids: limits.grid_sizes.iter().copied().zip(grids).collect(),
        decode_ms: decoded - started,
        ready_ms: now() - decoded,
        read_ms: read - decoded,
        grid_ms,
    })
}

/// How long the grid code may hold the main thread before it lets the page run,
/// in milliseconds. Well under the 50 ms at which a task counts as long: on a
/// 12 MP photo's copy the grids take about 8 ms and finish in one go, as a pause
/// costs the preview another task's wait; a much larger copy, or a slow machine,
/// still leaves the page live between slices.
const SLICE_MS: f64 = 30.0;

/// The grids of `pixels` (`size`, RGBA), computed a slice of rows at a time with the
/// page's event loop running in between, so that input and drawing never wait for
/// the whole computation. Returns the grids and the milliseconds spent computing.
pub async fn grids_in_slices(
    pixels: &[u8],
    size: (u32, u32),
    shapes: &[GridShape],
) -> Result<(Vec<Grid>, f64), GridError> {
    let mut builder = GridBuilder::new(size.0, size.1, PixelLayout::Rgba, shapes)?;
    let mut rows = pixels.chunks_exact(size.0 as usize * 4);
    let mut busy_ms = 0.0;
    loop {
        let started = now();
        let mut more = false;
        for row in rows.by_ref() {
            builder.push_row(row)?;
            if now() - started > SLICE_MS {
                more = true;
                break;
            }
        }
        busy_ms += now() - started;
        if !more {
            break;
        }
        sleep(0).await;
    }
    let started = now();
    let grids = builder.finish()?;
    Ok((grids, busy_ms + now() - started))
}

/// Decodes an encoded image into a bitmap turned upright by its EXIF orientation,
/// with colours as stored; scaled while decoding to `size` (upright width and
/// height) when given.
pub async fn decode_upright(blob: &Blob, size: Option<(u32, u32)>) -> Result<ImageBitmap, JsValue> {
    let options = ImageBitmapOptions::new();
    options.set_image_orientation(ImageOrientation::FromImage);
    options.set_color_space_conversion(ColorSpaceConversion::None);
    if let Some((width, height)) = size {
        options.set_resize_width(width);
        options.set_resize_height(height);
        options.set_resize_quality(ResizeQuality::Medium);
    }
    let promise =
        window()?.create_image_bitmap_with_blob_and_image_bitmap_options(blob, &options)?;
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

/// The RGBA pixels of `bitmap` scaled to `size` by the browser (at `quality`), or
/// as they are when `size` is the bitmap's own.
pub async fn read_sampled(
    bitmap: &ImageBitmap,
    size: (u32, u32),
    quality: ResizeQuality,
) -> Result<Vec<u8>, JsValue> {
    if size == (bitmap.width(), bitmap.height()) {
        return read_pixels(bitmap);
    }
    let options = ImageBitmapOptions::new();
    options.set_resize_width(size.0);
    options.set_resize_height(size.1);
    options.set_resize_quality(quality);
    let promise = window()?
        .create_image_bitmap_with_image_bitmap_and_image_bitmap_options(bitmap, &options)?;
    let copy: ImageBitmap = JsFuture::from(promise).await?.unchecked_into();
    let pixels = read_pixels(&copy);
    copy.close();
    pixels
}

/// Reads a bitmap's RGBA pixels through a canvas kept in memory (not in the page).
pub fn read_pixels(bitmap: &ImageBitmap) -> Result<Vec<u8>, JsValue> {
    let (width, height) = (bitmap.width(), bitmap.height());
    let context = scratch_context(width, height)?;
    context.draw_image_with_image_bitmap(bitmap, 0.0, 0.0)?;
    let data = context.get_image_data(0.0, 0.0, width as f64, height as f64)?;
    Ok(data.data().0)
}

/// The grids of a bitmap at full size, read back in strips of rows so that no
/// buffer of the whole picture is made. Slow on a large photo; the browser tests
/// use it as the reference the sampled copy is measured against.
pub fn full_size_grids(bitmap: &ImageBitmap, shapes: &[GridShape]) -> Result<Vec<Grid>, JsValue> {
    const STRIP_ROWS: u32 = 256;
    let (width, height) = (bitmap.width(), bitmap.height());
    let context = scratch_context(width, height)?;
    context.draw_image_with_image_bitmap(bitmap, 0.0, 0.0)?;
    let grid_error = |error: pixelator_shared::GridError| JsValue::from_str(&error.to_string());
    let mut builder =
        GridBuilder::new(width, height, PixelLayout::Rgba, shapes).map_err(grid_error)?;
    let mut top = 0;
    while top < height {
        let rows = STRIP_ROWS.min(height - top);
        let strip = context.get_image_data(0.0, top as f64, width as f64, rows as f64)?;
        for row in strip.data().0.chunks_exact(width as usize * 4) {
            builder.push_row(row).map_err(grid_error)?;
        }
        top += rows;
    }
    builder.finish().map_err(grid_error)
}

fn scratch_context(width: u32, height: u32) -> Result<CanvasRenderingContext2d, JsValue> {
    let canvas: HtmlCanvasElement = window()?
        .document()
        .ok_or_else(|| JsValue::from_str("no document"))?
        .create_element("canvas")?
        .unchecked_into();
    canvas.set_width(width);
    canvas.set_height(height);
    // The pixels are read back, so keep them in memory rather than on the GPU.
    let attributes = ContextAttributes2d::new();
    attributes.set_will_read_frequently(true);
    canvas
        .get_context_with_context_options("2d", &attributes)?
        .ok_or_else(|| JsValue::from_str("no 2d context"))?
        .dyn_into()
        .map_err(|_| JsValue::from_str("not a 2d context"))
}

/// A grid as a small bitmap of one pixel per cell, for drawing scaled up.
pub fn grid_pixels(grid: &Grid) -> Vec<u8> {
    grid.cells().iter().flatten().copied().collect()
}

/// The cells of a grid as hex `rrggbbaa` per cell, row by row: what the page puts
/// in each preview's `data-cells` for tests to read.
pub fn grid_hex(grid: &Grid) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(grid.cells().len() * 8);
    for cell in grid.cells() {
        for sample in cell {
            // Writing to a String cannot fail.
            let _ = write!(text, "{sample:02x}");
        }
    }
    text
}

fn window() -> Result<web_sys::Window, JsValue> {
    web_sys::window().ok_or_else(|| JsValue::from_str("no window"))
}
