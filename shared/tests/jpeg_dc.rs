//! The DC-only JPEG decoder on real files, natively and in a real browser as
//! WebAssembly (where the web page runs it): sequential and progressive encodings of
//! one picture give the same block means, and the grids of a rotated photo's block
//! means, turned upright, have the upright shape.

#![allow(clippy::unwrap_used)]

use pixelator_shared::jpeg_dc::{DcError, DcLimits, decode_dc};
use pixelator_shared::{GridShape, Orientation};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const SEQUENTIAL: &[u8] = include_bytes!("../../backend/tests/data/jpeg/odd-420.jpg");
const PROGRESSIVE: &[u8] = include_bytes!("../../backend/tests/data/jpeg/odd-420-progressive.jpg");

const LIMITS: DcLimits = DcLimits {
    max_pixels: 50_000_000,
    max_dimension: 30_000,
};

#[test]
fn sequential_and_progressive_files_give_the_same_block_means() {
    let sequential = decode_dc(SEQUENTIAL, LIMITS).unwrap();
    let progressive = decode_dc(PROGRESSIVE, LIMITS).unwrap();
    assert_eq!((sequential.width, sequential.height), (301, 203));
    assert_eq!((sequential.dc_width, sequential.dc_height), (38, 26));
    assert_eq!(sequential.pixels.len(), 38 * 26 * 3);
    assert_eq!(sequential.pixels, progressive.pixels);
}

#[test]
fn grids_of_the_block_means_turned_upright_have_the_upright_shape() {
    let image = decode_dc(SEQUENTIAL, LIMITS).unwrap();
    let orientation = Orientation::Rotate90;
    let upright = GridShape::new(2, 4);
    let stored = orientation.stored_shape(upright);
    assert!(image.grids_are_faithful(&[stored]));
    let grids = image.grids(&[stored]).unwrap();
    assert_eq!(grids[0].shape(), stored);
    assert_eq!(orientation.apply(&grids[0]).shape(), upright);
}

#[test]
fn a_cut_file_is_truncated() {
    let cut = &SEQUENTIAL[..SEQUENTIAL.len() / 2];
    assert_eq!(decode_dc(cut, LIMITS), Err(DcError::Truncated));
}
