//! Pixelator's web page, a Leptos app rendered in the browser.
//!
//! A person drops photos; each gets a card that checks it ([`checks`], [`sniff`]),
//! decodes it upright in the browser and draws the five pixelated previews with the
//! grid code of `pixelator-shared` ([`preview`], [`sampling`]), then uploads it
//! straight to the source bucket and follows it until the pipeline is done
//! ([`api`], [`transfer`]). The gallery below lists every processed image
//! ([`components`]). [`cards`] holds each dropped file's state.

pub mod api;
pub mod browser;
pub mod cards;
pub mod checks;
pub mod components;
pub mod preview;
pub mod sampling;
pub mod sniff;
pub mod transfer;

pub use components::app::App;
