//! The page's components, one module each.

pub mod app;
pub mod drop_zone;
pub mod file_card;
pub mod gallery;
pub mod lightbox;
pub mod previews;
