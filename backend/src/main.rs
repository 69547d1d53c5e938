//! The `pixelator` command.

fn main() {}
