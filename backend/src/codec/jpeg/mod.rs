//! JPEG fast paths for pixelation: a decoder that reads only what the grids need
//! (the DC coefficient of every block, a 1/8-scale picture) and an encoder that
//! writes a variant straight from its grid.

pub mod encode;
