//! The previews: a file decoded upright by the browser, its grids computed by the
//! pipeline's own grid code.
//!
//! The browser decodes with `createImageBitmap`, which turns the picture by its EXIF
//! orientation (`imageOrientation: "from-image"`) and leaves colours as stored
//! (`colorSpaceConversion: "none"`), as the pipeline's decoder does. For a large
//! photo a second `createImageBitmap` makes the smaller copy [`sampling`] asks for;
//! both run off the main thread. Only the copy's pixels are read back, and the grid
//! code takes them a slice of rows at a time between which the page stays live, so
//! the main thread neither holds a 12 MP buffer nor stalls.
//!
//! [`sampling`]: crate::sampling

use pixelator_shared::grid::{Grid, GridBuilder, GridError, GridShape, PixelLayout};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, CanvasRenderingContext2d, ColorSpaceConversion, ContextAttributes2d, HtmlCanvasElement,
    ImageBitmap, ImageBitmapOptions, ImageOrientation, ResizeQuality,
};

use crate::browser::{describe, now, sleep};
use crate::checks::{Limits, Refusal};
use crate::sampling::sample_size;

/// The grids of one image, ready to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    /// Upright width of the image.
    pub width: u32,
    /// Upright height of the image.
    pub height: u32,
    /// The size of the copy the grids were computed on.
    pub sampled: (u32, u32),
    /// One grid per grid size, in the order of the limits' sizes.
    pub grids: Vec<(u32, Grid)>,
    /// Milliseconds the browser took to decode the file upright, off the main
    /// thread.
    pub decode_ms: f64,
    /// Milliseconds from the decoded picture to its grids: making the smaller
    /// copy, reading its pixels back and the grid code, with the pauses that keep
    /// the page live in between. The wait a person sees after the decode.
    pub ready_ms: f64,
    /// Milliseconds of those spent in the grid code itself.
    pub grid_ms: f64,
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

/// Decodes `blob` upright and computes its grids for `limits`.
///
/// `decodable` says whether browsers normally decode the file's format: if they
/// do, a failed decode means a damaged file and refuses it.
pub async fn preview(
    blob: &Blob,
    limits: &Limits,
    decodable: bool,
) -> Result<Preview, PreviewError> {
    let started = now();
    let bitmap = match decode_upright(blob).await {
        Ok(bitmap) => bitmap,
        Err(error) if decodable => {
            return Err(PreviewError::Refused(Refusal::Undecodable(describe(
                &error,
            ))));
        }
        Err(error) => return Err(PreviewError::NotInThisBrowser(describe(&error))),
    };
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
    let pixels =
        pixels.map_err(|error| PreviewError::Refused(Refusal::Undecodable(describe(&error))))?;

    let (grids, grid_ms) = grids_in_slices(&pixels, sampled, &shapes)
        .await
        .map_err(|error| PreviewError::Refused(Refusal::Undecodable(error.to_string())))?;
    let ready_ms = now() - decoded;

    Ok(Preview {
        width,
        height,
        sampled,
        grids: limits.grid_sizes.iter().copied().zip(grids).collect(),
        decode_ms: decoded - started,
        ready_ms,
        grid_ms,
    })
}

/// How long the grid code may hold the main thread at a time, in milliseconds.
const SLICE_MS: f64 = 8.0;

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
/// with colours as stored.
pub async fn decode_upright(blob: &Blob) -> Result<ImageBitmap, JsValue> {
    let options = ImageBitmapOptions::new();
    options.set_image_orientation(ImageOrientation::FromImage);
    options.set_color_space_conversion(ColorSpaceConversion::None);
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
