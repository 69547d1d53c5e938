//! The whole page: header, drop zone, the dropped files' cards, the gallery.

use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::File;

use crate::api;
use crate::cards::{FileEntry, inspect, start_upload};
use crate::checks::Limits;
use crate::components::drop_zone::DropZone;
use crate::components::file_card::FileCard;
use crate::components::gallery::Gallery;

/// The page.
#[component]
pub fn App() -> impl IntoView {
    let (limits, set_limits) = signal(Limits::default());
    let (entries, set_entries) = signal(Vec::<FileEntry>::new());
    let (next_id, set_next_id) = signal(0u32);
    // Bumped whenever an upload is stored or done, so the gallery looks at once.
    let (gallery_nudge, set_gallery_nudge) = signal(0u32);

    // The limits are the server's; until it answers (or if it cannot), the
    // defaults apply.
    spawn_local(async move {
        if let Ok(config) = api::config().await {
            set_limits.set(Limits::from(config));
        }
    });

    let add_files = Callback::new(move |files: Vec<File>| {
        let limits = limits.get_untracked();
        let first = next_id.get_untracked();
        set_next_id.set(first + files.len() as u32);
        let added: Vec<FileEntry> = files
            .into_iter()
            .enumerate()
            .map(|(offset, file)| FileEntry::new(first + offset as u32, file))
            .collect();
        for entry in &added {
            inspect(*entry, limits.clone());
        }
        set_entries.update(|entries| entries.extend(added));
    });

    let on_news = move || set_gallery_nudge.update(|nudge| *nudge += 1);
    let upload_one = Callback::new(move |entry: FileEntry| start_upload(entry, on_news));
    let upload_all = move |_| {
        for entry in entries.get_untracked() {
            start_upload(entry, on_news);
        }
    };
    let remove = Callback::new(move |id: u32| {
        set_entries.update(|entries| entries.retain(|entry| entry.id != id))
    });
    let clear_finished = move |_| {
        set_entries.update(|entries| {
            entries.retain(|entry| {
                let finished = matches!(
                    entry.upload.get_untracked(),
                    crate::transfer::UploadState::Done(_)
                ) || matches!(
                    entry.verdict.get_untracked(),
                    crate::cards::Verdict::Refused(_)
                );
                !finished
            })
        })
    };

    let ready_count = move || {
        entries
            .get()
            .iter()
            .filter(|entry| entry.can_upload())
            .count()
    };
    let has_entries = move || !entries.get().is_empty();

    view! {
        <header class="masthead">
            <div class="masthead-inner">
                <h1 class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Pixelator"
                </h1>
                <p class="tagline">"Drop photos, see them pixelated at once, keep the results."</p>
            </div>
        </header>
        <main class="page">
            <section class="intake" aria-label="Add photos">
                <DropZone limits=limits on_files=add_files />
                <Show when=has_entries>
                    <div class="toolbar" role="toolbar" aria-label="Dropped files">
                        <button
                            class="button primary"
                            data-action="upload-all"
                            disabled=move || ready_count() == 0
                            on:click=upload_all
                        >
                            {move || match ready_count() {
                                0 => "Upload all".to_owned(),
                                count => format!("Upload all ({count})"),
                            }}
                        </button>
                        <button class="button" on:click=clear_finished>
                            "Clear finished"
                        </button>
                    </div>
                </Show>
                <ul class="cards" aria-live="polite">
                    <For each=move || entries.get() key=|entry| entry.id let:entry>
                        <li>
                            <FileCard
                                entry=entry
                                on_upload=upload_one
                                on_remove=remove
                            />
                        </li>
                    </For>
                </ul>
            </section>
            <Gallery nudge=gallery_nudge />
        </main>
        <footer class="colophon">
            "Previews are computed in your browser by the same Rust code the pipeline runs."
        </footer>
    }
}
