//! The gallery: every processed image, newest first, filling in as results arrive.
//!
//! The first page is fetched again every few seconds and merged in front of what is
//! shown ([`merge_newest`]); older pages come with the cursor when the end of the
//! list scrolls into view or the button is pressed. Images whose state did not
//! change keep the entry (and URLs) already shown, so nothing reloads or jumps.

use std::time::Duration;

use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use pixelator_shared::wire::{ImageStatus, ImageView};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{IntersectionObserver, IntersectionObserverEntry, IntersectionObserverInit};

use crate::api;
use crate::checks::human_bytes;
use crate::components::lightbox::Lightbox;

/// Images per page.
pub const PAGE_SIZE: u32 = 12;

/// How often the first page is fetched again.
pub const POLL_EVERY: Duration = Duration::from_secs(4);

/// The gallery section.
#[component]
pub fn Gallery(
    /// Changes whenever an upload on this page is stored or done, to look at once.
    nudge: ReadSignal<u32>,
) -> impl IntoView {
    let (images, set_images) = signal(Vec::<ImageView>::new());
    let (cursor, set_cursor) = signal(None::<String>);
    let (loaded_once, set_loaded_once) = signal(false);
    let (loading_more, set_loading_more) = signal(false);
    let (error, set_error) = signal(None::<String>);
    let (selected, set_selected) = signal(None::<String>);
    let (refreshing, set_refreshing) = signal(false);

    let refresh = move || {
        if refreshing.get_untracked() {
            return;
        }
        set_refreshing.set(true);
        spawn_local(async move {
            match api::images(None, PAGE_SIZE).await {
                Ok(page) => {
                    set_error.try_set(None);
                    if !loaded_once.get_untracked() {
                        set_cursor.try_set(page.next_cursor.clone());
                        set_loaded_once.try_set(true);
                    }
                    set_images.try_update(|shown| *shown = merge_newest(shown, page.images));
                }
                Err(failure) => {
                    set_error.try_set(Some(failure.to_string()));
                }
            }
            set_refreshing.try_set(false);
        });
    };

    let load_more = move || {
        let Some(from) = cursor.get_untracked() else {
            return;
        };
        if loading_more.get_untracked() {
            return;
        }
        set_loading_more.set(true);
        spawn_local(async move {
            match api::images(Some(&from), PAGE_SIZE).await {
                Ok(page) => {
                    set_images.try_update(|shown| append_older(shown, page.images));
                    set_cursor.try_set(page.next_cursor);
                }
                Err(failure) => {
                    set_error.try_set(Some(failure.to_string()));
                }
            }
            set_loading_more.try_set(false);
        });
    };

    // Looks at the first page on start and whenever an upload here is stored or
    // done.
    Effect::new(move |_| {
        nudge.track();
        refresh();
    });

    // New results from elsewhere (another tab, another person) appear without a
    // reload.
    if let Ok(handle) = set_interval_with_handle(refresh, POLL_EVERY) {
        on_cleanup(move || handle.clear());
    }

    let sentinel = NodeRef::<Div>::new();
    let observer = StoredValue::new_local(None::<IntersectionObserver>);
    // Loads the next page when the end of the list scrolls into view; the observer
    // needs the element, which exists only after mounting.
    sentinel.on_load(move |element| {
        let on_intersect =
            Closure::<dyn FnMut(js_sys::Array)>::new(move |entries: js_sys::Array| {
                let visible = entries.iter().any(|entry| {
                    entry
                        .dyn_into::<IntersectionObserverEntry>()
                        .map(|entry| entry.is_intersecting())
                        .unwrap_or(false)
                });
                if visible {
                    load_more();
                }
            });
        let options = IntersectionObserverInit::new();
        options.set_root_margin("400px 0px");
        if let Ok(watcher) =
            IntersectionObserver::new_with_options(on_intersect.as_ref().unchecked_ref(), &options)
        {
            watcher.observe(&element);
            observer.set_value(Some(watcher));
        }
        // The page lives as long as the observer; the callback must too.
        on_intersect.forget();
    });
    on_cleanup(move || {
        observer.try_with_value(|watcher| {
            if let Some(watcher) = watcher {
                watcher.disconnect();
            }
        });
    });

    let selected_view = move || {
        let key = selected.get()?;
        images.with(|images| images.iter().find(|image| image.key == key).cloned())
    };

    view! {
        <section class="gallery" aria-labelledby="gallery-title">
            <div class="section-head">
                <h2 id="gallery-title">"Gallery"</h2>
                <p class="section-note">"Every processed image, newest first. Updates by itself."</p>
            </div>
            {move || error.get().map(|message| view! {
                <p class="gallery-error" role="status">{format!("Could not load the gallery: {message}")}</p>
            })}
            <Show when=move || loaded_once.get() && images.with(Vec::is_empty)>
                <p class="gallery-empty">"Nothing here yet. Upload a photo and its variants appear here."</p>
            </Show>
            <ul class="gallery-grid" data-testid="gallery">
                <For
                    each=move || images.get()
                    key=|image| (image.key.clone(), image.status, image.variants.len())
                    let:image
                >
                    <li>
                        <GalleryItem image=image on_open=Callback::new(move |key| set_selected.set(Some(key))) />
                    </li>
                </For>
            </ul>
            <div node_ref=sentinel class="gallery-end">
                <Show when=move || cursor.with(Option::is_some)>
                    <button
                        type="button"
                        class="button"
                        data-action="load-more"
                        disabled=move || loading_more.get()
                        on:click=move |_| load_more()
                    >
                        {move || if loading_more.get() { "Loading…" } else { "Load more" }}
                    </button>
                </Show>
            </div>
            {move || selected_view().map(|image| view! {
                <Lightbox image=image on_close=Callback::new(move |()| set_selected.set(None)) />
            })}
        </section>
    }
}

/// One image of the gallery.
#[component]
fn GalleryItem(image: ImageView, on_open: Callback<String>) -> impl IntoView {
    let key = image.key.clone();
    let status = match image.status {
        ImageStatus::Done => ("Done", "ok"),
        ImageStatus::Processing => ("Processing", "busy"),
        ImageStatus::Failed => ("Failed", "bad"),
    };
    let facts = facts(&image);
    let (original_broken, set_original_broken) = signal(false);
    let original = image.original_url.clone();
    let name = image.name.clone();

    view! {
        <article
            class="gallery-item"
            data-testid="gallery-item"
            data-key=image.key.clone()
            data-status=status.0.to_lowercase()
        >
            <button
                type="button"
                class="gallery-open"
                aria-label=format!("Open {}", image.name)
                on:click=move |_| on_open.run(key.clone())
            >
                <div class="frame">
                    {move || match (&original, original_broken.get()) {
                        (Some(url), false) => view! {
                            <img
                                src=url.clone()
                                alt=name.clone()
                                loading="lazy"
                                decoding="async"
                                on:error=move |_| set_original_broken.set(true)
                            />
                        }
                        .into_any(),
                        _ => view! { <span class="frame-note">"No preview"</span> }.into_any(),
                    }}
                </div>
            </button>
            {(!image.variants.is_empty()).then(|| view! {
                <div class="variant-strip">
                    {image.variants.iter().map(|variant| view! {
                        <div class="frame small">
                            <img
                                class="variant"
                                src=variant.url.clone()
                                alt=format!("{} pixelated at {}", image.name, variant.grid)
                                title=variant.grid.to_string()
                                loading="lazy"
                                decoding="async"
                                data-size=variant.size
                                data-grid=variant.grid.to_string()
                            />
                        </div>
                    }).collect_view()}
                </div>
            })}
            <div class="gallery-meta">
                <h3 class="gallery-name" title=image.key.clone()>{image.name.clone()}</h3>
                <span class=format!("badge {}", status.1)>{status.0}</span>
            </div>
            <p class="gallery-facts">{facts}</p>
            {image.reason.clone().map(|reason| view! {
                <p class="gallery-reason" data-testid="failure-reason">{reason}</p>
            })}
        </article>
    }
}

/// The CSS aspect ratio of an image, square when its size is unknown.
pub fn aspect_ratio(image: &ImageView) -> String {
    match (image.width, image.height) {
        (Some(width), Some(height)) if width > 0 && height > 0 => format!("{width} / {height}"),
        _ => "1 / 1".to_owned(),
    }
}

/// Dimensions, format and size, as far as known: `4032 × 3024 · JPEG · 4.0 MB`.
pub fn facts(image: &ImageView) -> String {
    let mut facts = Vec::new();
    if let (Some(width), Some(height)) = (image.width, image.height) {
        facts.push(format!("{width} × {height}"));
    }
    if let Some(format) = image.format {
        facts.push(format.name().to_owned());
    }
    if let Some(bytes) = image.bytes {
        facts.push(human_bytes(bytes));
    }
    facts.join(" · ")
}

/// The shown list after a fresh first page: the page's images first, in its order,
/// then the shown ones it did not include. An image whose status and variants did
/// not change keeps the shown entry, so its pictures are not fetched again.
pub fn merge_newest(shown: &[ImageView], fresh: Vec<ImageView>) -> Vec<ImageView> {
    let mut merged: Vec<ImageView> = fresh
        .into_iter()
        .map(
            |image| match shown.iter().find(|old| old.key == image.key) {
                Some(old) if unchanged(old, &image) => old.clone(),
                _ => image,
            },
        )
        .collect();
    let rest: Vec<ImageView> = shown
        .iter()
        .filter(|old| !merged.iter().any(|image| image.key == old.key))
        .cloned()
        .collect();
    merged.extend(rest);
    merged
}

/// Adds an older page after the shown list, skipping images already shown.
pub fn append_older(shown: &mut Vec<ImageView>, older: Vec<ImageView>) {
    for image in older {
        if !shown.iter().any(|old| old.key == image.key) {
            shown.push(image);
        }
    }
}

fn unchanged(old: &ImageView, new: &ImageView) -> bool {
    old.status == new.status
        && old.reason == new.reason
        && old.variants.len() == new.variants.len()
        && old
            .variants
            .iter()
            .zip(&new.variants)
            .all(|(a, b)| a.key == b.key && a.bytes == b.bytes)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn image(key: &str, status: ImageStatus, url: &str) -> ImageView {
        ImageView {
            key: key.into(),
            name: key.into(),
            status,
            reason: None,
            width: Some(4),
            height: Some(3),
            format: None,
            bytes: None,
            processed_at: None,
            original_url: Some(url.into()),
            variants: vec![],
        }
    }

    #[test]
    fn new_images_come_first_and_unchanged_ones_keep_their_urls() {
        let shown = vec![
            image("b", ImageStatus::Done, "old-b"),
            image("a", ImageStatus::Processing, "old-a"),
        ];
        let fresh = vec![
            image("c", ImageStatus::Done, "new-c"),
            image("b", ImageStatus::Done, "new-b"),
            image("a", ImageStatus::Done, "new-a"),
        ];
        let merged = merge_newest(&shown, fresh);
        let summary: Vec<(&str, &str)> = merged
            .iter()
            .map(|image| (image.key.as_str(), image.original_url.as_deref().unwrap()))
            .collect();
        assert_eq!(
            summary,
            vec![("c", "new-c"), ("b", "old-b"), ("a", "new-a")]
        );
    }

    #[test]
    fn images_beyond_the_first_page_stay_below_it() {
        let shown = vec![
            image("b", ImageStatus::Done, "b"),
            image("a", ImageStatus::Done, "a"),
        ];
        let merged = merge_newest(&shown, vec![image("c", ImageStatus::Done, "c")]);
        let keys: Vec<&str> = merged.iter().map(|image| image.key.as_str()).collect();
        assert_eq!(keys, vec!["c", "b", "a"]);
    }

    #[test]
    fn older_pages_never_repeat_an_image() {
        let mut shown = vec![
            image("c", ImageStatus::Done, "c"),
            image("b", ImageStatus::Done, "b"),
        ];
        append_older(
            &mut shown,
            vec![
                image("b", ImageStatus::Done, "b"),
                image("a", ImageStatus::Done, "a"),
            ],
        );
        let keys: Vec<&str> = shown.iter().map(|image| image.key.as_str()).collect();
        assert_eq!(keys, vec!["c", "b", "a"]);
    }

    #[test]
    fn facts_say_what_is_known() {
        let mut shown = image("a", ImageStatus::Done, "a");
        shown.format = Some(pixelator_shared::wire::ImageFormat::Jpeg);
        shown.bytes = Some(4_167_727);
        assert_eq!(facts(&shown), "4 × 3 · JPEG · 4.0 MB");
        assert_eq!(aspect_ratio(&shown), "4 / 3");
        shown.width = None;
        assert_eq!(aspect_ratio(&shown), "1 / 1");
    }
}
