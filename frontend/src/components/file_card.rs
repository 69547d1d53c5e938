//! One dropped file: what the checks said, its five previews, its upload.

use leptos::prelude::*;

use crate::cards::{FileEntry, PreviewState, Verdict};
use crate::checks::human_bytes;
use crate::components::previews::Previews;
use crate::transfer::{SLOW_AFTER_MS, UploadFailure, UploadState};

/// The card of one dropped file.
#[component]
pub fn FileCard(
    /// The file and its state.
    entry: FileEntry,
    /// Called to upload (or retry) this file.
    on_upload: Callback<FileEntry>,
    /// Called to take the card away.
    on_remove: Callback<u32>,
) -> impl IntoView {
    let name = entry.name.get_value();
    let size = human_bytes(entry.size);

    let state_name = move || match entry.verdict.get() {
        Verdict::Checking => "checking",
        Verdict::Refused(_) => "refused",
        Verdict::Accepted(_) => match entry.preview.get() {
            PreviewState::Pending => "previewing",
            _ => entry.upload.get().name(),
        },
    };
    let facts = move || {
        let mut facts = vec![size.clone()];
        if let Verdict::Accepted(accepted) = entry.verdict.get() {
            facts.push(accepted.format.name().to_owned());
        }
        if let PreviewState::Ready(preview) = entry.preview.get() {
            facts.push(format!("{} × {}", preview.width, preview.height));
        }
        facts.join(" · ")
    };
    let busy = move || entry.upload.get().is_busy();
    let key = move || match entry.upload.get() {
        UploadState::Processing { key, .. } => Some(key),
        UploadState::Done(view) => Some(view.key),
        UploadState::Failed(UploadFailure::Pipeline { key, .. }) => Some(key),
        _ => None,
    };

    view! {
        <article
            class="card"
            data-testid="file-card"
            data-file-name=name.clone()
            data-state=state_name
            data-key=key
            aria-busy=move || busy().to_string()
        >
            <header class="card-head">
                <h3 class="card-title" title=name.clone()>{name.clone()}</h3>
                <p class="card-facts">{facts}</p>
                <button
                    type="button"
                    class="icon-button"
                    aria-label=format!("Remove {name}")
                    disabled=busy
                    on:click=move |_| on_remove.run(entry.id)
                >
                    "×"
                </button>
            </header>
            {move || match entry.verdict.get() {
                Verdict::Refused(refusal) => {
                    view! {
                        <div class="refusal" role="alert" data-testid="refusal">
                            <p class="refusal-message">{refusal.to_string()}</p>
                            {refusal.hint().map(|hint| view! { <p class="refusal-hint">{hint}</p> })}
                            <p class="refusal-note">"This file will not be uploaded."</p>
                        </div>
                    }
                        .into_any()
                }
                _ => view! { <Previews preview=entry.preview /> }.into_any(),
            }}
            <UploadStatus entry=entry on_upload=on_upload />
        </article>
    }
}

/// The upload part of a card: the button, the progress, the outcome.
#[component]
fn UploadStatus(entry: FileEntry, on_upload: Callback<FileEntry>) -> impl IntoView {
    let can_upload = move || entry.can_upload();
    move || {
        if matches!(entry.verdict.get(), Verdict::Refused(_)) {
            return ().into_any();
        }
        match entry.upload.get() {
            UploadState::Ready => view! {
                <div class="status">
                    <button
                        type="button"
                        class="button primary"
                        data-action="upload"
                        disabled=move || !can_upload()
                        on:click=move |_| on_upload.run(entry)
                    >
                        "Upload"
                    </button>
                </div>
            }
            .into_any(),
            UploadState::Requesting => view! {
                <div class="status">
                    <Progress fraction=None label="Preparing upload…".to_owned() />
                </div>
            }
            .into_any(),
            UploadState::Sending { sent, total } => {
                let fraction = if total > 0.0 {
                    (sent / total).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let label = format!(
                    "Uploading… {} of {}",
                    human_bytes(sent as u64),
                    human_bytes(total as u64)
                );
                view! {
                    <div class="status">
                        <Progress fraction=Some(fraction) label=label />
                    </div>
                }
                .into_any()
            }
            UploadState::Processing { since, .. } => {
                let slow = crate::browser::now() - since > SLOW_AFTER_MS;
                let label = if slow {
                    "Still processing; this is taking longer than usual…"
                } else {
                    "Uploaded. Pixelating…"
                };
                view! {
                    <div class="status">
                        <Progress fraction=None label=label.to_owned() />
                    </div>
                }
                .into_any()
            }
            UploadState::Done(view) => {
                let variants = view.variants.len();
                view! {
                    <div class="status done" data-testid="upload-done">
                        <span class="badge ok">"Done"</span>
                        <span>{format!("{variants} variants stored; see the gallery below.")}</span>
                    </div>
                }
                .into_any()
            }
            UploadState::Failed(failure) => view! {
                <div class="status failed" role="alert" data-testid="upload-error">
                    <p class="error-message">
                        <span class="badge bad">"Failed"</span>
                        {failure.to_string()}
                    </p>
                    <button
                        type="button"
                        class="button"
                        data-action="retry"
                        on:click=move |_| on_upload.run(entry)
                    >
                        "Retry"
                    </button>
                </div>
            }
            .into_any(),
        }
    }
}

/// A progress bar; without a fraction it shows activity of unknown length.
#[component]
pub fn Progress(
    /// How much is done, 0 to 1, when known.
    fraction: Option<f64>,
    /// What is happening, for people and screen readers.
    label: String,
) -> impl IntoView {
    let percent = fraction.map(|fraction| (fraction * 100.0).round());
    view! {
        <div class="progress-wrap">
            <div
                class="progress"
                class:indeterminate=percent.is_none()
                role="progressbar"
                aria-label=label.clone()
                aria-valuemin="0"
                aria-valuemax="100"
                aria-valuenow=percent.map(|percent| percent.to_string())
            >
                <div
                    class="progress-fill"
                    style:width=percent.map(|percent| format!("{percent}%")).unwrap_or_default()
                ></div>
            </div>
            <p class="progress-label">{label}</p>
        </div>
    }
}
