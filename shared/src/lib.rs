//! Pixelator's shared core: the pixelation math and the types that cross the wire.
//!
//! Everything here is pure: no I/O, no async runtime, no logging. The same code is
//! compiled into the backend (where the pixelator function runs it on decoded photos)
//! and into the browser as WebAssembly (where the page runs it on pixels it decoded
//! itself), so a preview is the picture the pipeline will store.
//!
//! - [`grid`] shrinks an image to an n x n grid the way Pillow's bilinear `resize`
//!   does, from rows streamed in one at a time.
//! - [`render`] enlarges a grid back to full size with the nearest-neighbour block map.
//! - [`orientation`] turns grids upright by an EXIF orientation.
//! - [`jpeg_dc`] decodes a JPEG at 1/8 scale from its DC coefficients alone, and
//!   computes the grids of a large photo from that picture.
//! - [`layout`] names the objects the pipeline writes.
//! - [`wire`] holds the API's requests and responses and the manifest.

pub mod grid;
pub mod jpeg_dc;
pub mod layout;
pub mod orientation;
pub mod render;
pub mod wire;

pub use grid::{Grid, GridBuilder, GridError, GridMode, GridShape, PixelLayout};
pub use orientation::Orientation;
pub use render::BlockMap;

/// The grid sizes the classic pipeline writes, smallest first.
pub const DEFAULT_GRID_SIZES: [u32; 5] = [8, 16, 32, 48, 64];
