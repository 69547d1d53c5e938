//! One image large, with its variants side by side and links to download each.

use leptos::html::Button;
use leptos::prelude::*;
use pixelator_shared::layout::split_key;
use pixelator_shared::wire::ImageView;

use crate::checks::human_bytes;
use crate::components::gallery::{aspect_ratio, facts};

/// A modal view of `image`; Escape, the close button or a click outside closes it.
#[component]
pub fn Lightbox(
    /// The image to show.
    image: ImageView,
    /// Called to close the view.
    on_close: Callback<()>,
) -> impl IntoView {
    let close_ref = NodeRef::<Button>::new();
    // Keyboard users land in the dialog, on its close button, when it opens.
    close_ref.on_load(|button| {
        let _ = button.focus();
    });

    let aspect = aspect_ratio(&image);
    let facts = facts(&image);
    let original = image.original_url.clone().map(|url| {
        let (_, file) = split_key(&image.key);
        (url, file.to_owned())
    });

    view! {
        <div
            class="lightbox-backdrop"
            on:click=move |_| on_close.run(())
            on:keydown=move |event| {
                if event.key() == "Escape" {
                    on_close.run(());
                }
            }
        >
            <div
                class="lightbox"
                role="dialog"
                aria-modal="true"
                aria-labelledby="lightbox-title"
                data-testid="lightbox"
                on:click=|event| event.stop_propagation()
            >
                <header class="lightbox-head">
                    <div>
                        <h2 id="lightbox-title">{image.name.clone()}</h2>
                        <p class="gallery-facts">{facts}</p>
                    </div>
                    <button
                        node_ref=close_ref
                        type="button"
                        class="icon-button"
                        aria-label="Close"
                        on:click=move |_| on_close.run(())
                    >
                        "×"
                    </button>
                </header>
                {image.reason.clone().map(|reason| view! {
                    <p class="gallery-reason">{reason}</p>
                })}
                <div class="lightbox-grid">
                    {original.map(|(url, file)| view! {
                        <figure class="lightbox-figure">
                            <div class="frame" style:aspect-ratio=aspect.clone()>
                                <img src=url.clone() alt=image.name.clone() decoding="async" />
                            </div>
                            <figcaption>
                                <span>"Original"</span>
                                <a href=url download=file target="_blank" rel="noopener">"Download"</a>
                            </figcaption>
                        </figure>
                    })}
                    {image.variants.iter().map(|variant| {
                        let (_, file) = split_key(&variant.key);
                        view! {
                            <figure class="lightbox-figure">
                                <div class="frame" style:aspect-ratio=aspect.clone()>
                                    <img
                                        src=variant.url.clone()
                                        alt=format!("{} at {}", image.name, variant.grid)
                                        decoding="async"
                                    />
                                </div>
                                <figcaption>
                                    <span>{format!("{} blocks · {}", variant.grid, human_bytes(variant.bytes))}</span>
                                    <a href=variant.url.clone() download=file.to_owned() target="_blank" rel="noopener">
                                        "Download"
                                    </a>
                                </figcaption>
                            </figure>
                        }
                    }).collect_view()}
                </div>
            </div>
        </div>
    }
}
