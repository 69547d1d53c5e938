//! The five previews of a card, drawn crisp at the image's aspect ratio.
//!
//! Each grid is put into a canvas of one pixel per cell, which CSS stretches to the
//! image's aspect ratio with `image-rendering: pixelated`, so the blocks stay sharp
//! at any size. Each canvas carries its grid in `data-grid` and `data-cells` (hex
//! `rrggbbaa` per cell, row by row), which the end-to-end test reads to compare the
//! preview with the variant the pipeline stored.

use std::sync::Arc;

use leptos::html::Canvas;
use leptos::prelude::*;
use pixelator_shared::grid::Grid;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, ImageData};

use crate::cards::PreviewState;
use crate::preview::{Preview, PreviewPath, grid_hex, grid_pixels};

/// The previews, or what stands in for them while they are computed.
#[component]
pub fn Previews(
    /// The card's preview.
    preview: ReadSignal<PreviewState>,
) -> impl IntoView {
    move || match preview.get() {
        PreviewState::Pending => view! {
            <div class="previews pending" aria-label="Computing previews">
                {(0..5).map(|_| view! { <div class="tile skeleton"></div> }).collect_view()}
            </div>
        }
        .into_any(),
        PreviewState::Ready(preview) => view! { <ReadyPreviews preview=preview /> }.into_any(),
        PreviewState::Unavailable(reason) => view! {
            <p class="previews-unavailable">{reason}</p>
        }
        .into_any(),
        PreviewState::None => ().into_any(),
    }
}

#[component]
fn ReadyPreviews(preview: Arc<Preview>) -> impl IntoView {
    let aspect = format!("{} / {}", preview.width, preview.height);
    // Tall pictures would make tall tiles: the row is narrowed so that no tile is
    // taller than the page's tile height.
    let row_width = format!(
        "calc((var(--tile-height) * {} / {} + 10px) * 5)",
        preview.width, preview.height
    );
    let copy = if preview.path == PreviewPath::JpegBlockMeans {
        format!(
            " on the {} × {} block means",
            preview.sampled.0, preview.sampled.1
        )
    } else if preview.sampled == (preview.width, preview.height) {
        String::new()
    } else if preview.shrunk_on_load {
        format!(
            " on a {} × {} copy decoded at that size",
            preview.sampled.0, preview.sampled.1
        )
    } else {
        format!(" on a {} × {} copy", preview.sampled.0, preview.sampled.1)
    };
    let decoder = match preview.path {
        PreviewPath::JpegBlockMeans => "by the pipeline's JPEG decoder (block means only)",
        PreviewPath::Browser => "by the browser",
    };
    let timing = format!(
        "Previews {:.0} ms after decoding (grid code {:.1} ms{copy}) · decoded {decoder} in \
         {:.0} ms",
        preview.ready_ms, preview.grid_ms, preview.decode_ms
    );
    let tiles = preview
        .grids
        .iter()
        .map(|(size, grid)| {
            let label = format!("{} × {}", grid.shape().columns, grid.shape().rows);
            view! {
                <figure class="tile">
                    <GridCanvas size=*size grid=grid.clone() aspect=aspect.clone() />
                    <figcaption>{label}</figcaption>
                </figure>
            }
        })
        .collect_view();
    view! {
        <div
            class="previews"
            style:max-width=row_width
            data-testid="previews"
            data-width=preview.width
            data-height=preview.height
            data-decode-ms=format!("{:.3}", preview.decode_ms)
            data-ready-ms=format!("{:.3}", preview.ready_ms)
            data-read-ms=format!("{:.3}", preview.read_ms)
            data-shrunk-on-load=preview.shrunk_on_load.to_string()
            data-path=preview.path.name()
            data-grid-ms=format!("{:.3}", preview.grid_ms)
        >
            {tiles}
        </div>
        <p class="timing" data-testid="timing">{timing}</p>
    }
}

/// One grid in a canvas of one pixel per cell.
#[component]
fn GridCanvas(size: u32, grid: Grid, aspect: String) -> impl IntoView {
    let canvas_ref = NodeRef::<Canvas>::new();
    let shape = grid.shape();
    let cells = grid_hex(&grid);
    let label = format!("Preview at {} by {} blocks", shape.columns, shape.rows);
    // A canvas's pixels can only be set once the element exists.
    canvas_ref.on_load(move |canvas| {
        let context = canvas
            .get_context("2d")
            .ok()
            .flatten()
            .and_then(|context| context.dyn_into::<CanvasRenderingContext2d>().ok());
        let pixels = grid_pixels(&grid);
        let image = ImageData::new_with_u8_clamped_array_and_sh(
            Clamped(&pixels),
            shape.columns,
            shape.rows,
        );
        if let (Some(context), Ok(image)) = (context, image) {
            let _ = context.put_image_data(&image, 0.0, 0.0);
        }
    });
    view! {
        <canvas
            node_ref=canvas_ref
            class="grid-canvas"
            width=shape.columns
            height=shape.rows
            style:aspect-ratio=aspect
            style:image-rendering="pixelated"
            role="img"
            aria-label=label
            data-size=size
            data-grid=shape.to_string()
            data-cells=cells
        ></canvas>
    }
}
