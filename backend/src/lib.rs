//! Pixelator's backend.
