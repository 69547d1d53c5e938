//! Times `pixelate` on one image, split into its decode and encode stages.
//!
//! usage: cargo run --release --example stages -- IMAGE [ROUNDS]
//!
//! Prints per round the decode time (grids included), the encode time of all the
//! variants and their bytes. Run it under `valgrind --tool=callgrind` for a
//! breakdown by function that a busy machine does not disturb.

use anyhow::Context;
use pixelator::codec::{PixelateOptions, pixelate};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().context("usage: stages IMAGE [ROUNDS]")?;
    let rounds: u32 = args.next().map_or(Ok(1), |r| r.parse())?;
    let bytes = std::fs::read(&path).with_context(|| path.clone())?;
    let options = PixelateOptions::default();
    for _ in 0..rounds {
        let result = pixelate(&bytes, &options)?;
        let total: usize = result.variants.iter().map(|v| v.bytes.len()).sum();
        println!(
            "decode {:.1} ms, encode {:.1} ms, {} KB",
            result.timings.decode.as_secs_f64() * 1e3,
            result.timings.encode.as_secs_f64() * 1e3,
            total / 1024
        );
    }
    Ok(())
}
