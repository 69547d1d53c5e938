//! The state of each dropped file, and the work that moves it along.
//!
//! A [`FileEntry`] is created per dropped file and holds its signals: the verdict
//! of the checks, the preview, the upload. [`inspect`] runs the checks and the
//! preview; [`start_upload`] runs the upload. Both are plain async work that
//! writes into the entry's signals, so the card that shows an entry only reads.

use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use pixelator_shared::wire::ImageFormat;
use wasm_bindgen_futures::JsFuture;
use web_sys::File;

use crate::browser::describe;
use crate::checks::{Accepted, Limits, Refusal, check_content, check_size};
use crate::preview::{Preview, PreviewError, preview};
use crate::sniff::HEAD_BYTES;
use crate::transfer::{UploadState, upload};

/// What the checks said about a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not looked at yet.
    Checking,
    /// Fit to upload.
    Accepted(Accepted),
    /// Never uploaded, for this reason.
    Refused(Refusal),
}

/// Where a file's preview is.
#[derive(Clone, Debug, PartialEq)]
pub enum PreviewState {
    /// Being decoded and computed.
    Pending,
    /// Ready to draw.
    Ready(Arc<Preview>),
    /// This browser cannot show the format; the file may still be uploaded.
    Unavailable(String),
    /// No preview, because the file was refused.
    None,
}

/// One dropped file and its signals.
#[derive(Clone, Copy)]
pub struct FileEntry {
    /// Unique among the page's entries.
    pub id: u32,
    /// The file as the person chose it.
    pub file: StoredValue<File, LocalStorage>,
    /// Its name.
    pub name: StoredValue<String>,
    /// Its size in bytes.
    pub size: u64,
    /// What the checks said.
    pub verdict: ReadSignal<Verdict>,
    /// Sets what the checks said.
    pub set_verdict: WriteSignal<Verdict>,
    /// The preview.
    pub preview: ReadSignal<PreviewState>,
    /// Sets the preview.
    pub set_preview: WriteSignal<PreviewState>,
    /// The upload.
    pub upload: ReadSignal<UploadState>,
    /// Sets the upload's state.
    pub set_upload: WriteSignal<UploadState>,
}

impl FileEntry {
    /// A new entry for `file`, not yet checked.
    pub fn new(id: u32, file: File) -> FileEntry {
        let (verdict, set_verdict) = signal(Verdict::Checking);
        let (preview, set_preview) = signal(PreviewState::Pending);
        let (upload, set_upload) = signal(UploadState::Ready);
        FileEntry {
            id,
            name: StoredValue::new(file.name()),
            size: file.size() as u64,
            file: StoredValue::new_local(file),
            verdict,
            set_verdict,
            preview,
            set_preview,
            upload,
            set_upload,
        }
    }

    /// The format the checks found, once accepted.
    pub fn format(&self) -> Option<ImageFormat> {
        match self.verdict.get() {
            Verdict::Accepted(accepted) => Some(accepted.format),
            _ => None,
        }
    }

    /// Whether the file can be sent now: accepted, previewed (or not previewable),
    /// and neither under way nor done.
    pub fn can_upload(&self) -> bool {
        let checked = matches!(self.verdict.get(), Verdict::Accepted(_));
        let previewed = matches!(
            self.preview.get(),
            PreviewState::Ready(_) | PreviewState::Unavailable(_)
        );
        let idle = matches!(
            self.upload.get(),
            UploadState::Ready | UploadState::Failed(_)
        );
        checked && previewed && idle
    }

    fn refuse(&self, refusal: Refusal) {
        self.set_verdict.try_set(Verdict::Refused(refusal));
        self.set_preview.try_set(PreviewState::None);
    }
}

/// Checks `entry`'s file against `limits` and, if it passes, computes its preview.
pub fn inspect(entry: FileEntry, limits: Limits) {
    spawn_local(async move {
        if let Err(refusal) = check_size(entry.size, &limits) {
            entry.refuse(refusal);
            return;
        }
        let Some(file) = entry.file.try_get_value() else {
            return;
        };
        let head = match read_head(&file).await {
            Ok(head) => head,
            Err(reason) => {
                entry.refuse(Refusal::Undecodable(reason));
                return;
            }
        };
        let accepted = match check_content(&head, &limits) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                entry.refuse(refusal);
                return;
            }
        };
        entry.set_verdict.try_set(Verdict::Accepted(accepted));

        match preview(&file, &limits, &accepted).await {
            Ok(preview) => {
                entry
                    .set_preview
                    .try_set(PreviewState::Ready(Arc::new(preview)));
            }
            Err(PreviewError::Refused(refusal)) => entry.refuse(refusal),
            Err(PreviewError::NotInThisBrowser(_)) => {
                entry.set_preview.try_set(PreviewState::Unavailable(format!(
                    "This browser cannot show {} files; the pipeline will still pixelate it.",
                    accepted.format.name()
                )));
            }
        }
    });
}

/// Uploads `entry`'s file unless it cannot be sent now. `on_news` runs when the
/// file is stored and when the pipeline is done with it: the gallery then has
/// something new to show.
pub fn start_upload(entry: FileEntry, on_news: impl Fn() + Copy + 'static) {
    if !entry.can_upload() {
        return;
    }
    let (Some(format), Some(file)) = (entry.format(), entry.file.try_get_value()) else {
        return;
    };
    let set_upload = entry.set_upload;
    set_upload.set(UploadState::Requesting);
    spawn_local(async move {
        let report = move |state: UploadState| {
            let stored = matches!(state, UploadState::Processing { .. });
            set_upload.try_set(state);
            if stored {
                on_news();
            }
        };
        let last = upload(&file, format, report).await;
        let done = matches!(last, UploadState::Done(_));
        set_upload.try_set(last);
        if done {
            on_news();
        }
    });
}

/// The first bytes of a file, enough to recognise it.
async fn read_head(file: &File) -> Result<Vec<u8>, String> {
    let end = (file.size()).min(HEAD_BYTES as f64);
    let head = file
        .slice_with_f64_and_f64(0.0, end)
        .map_err(|error| describe(&error))?;
    let buffer = JsFuture::from(head.array_buffer())
        .await
        .map_err(|error| describe(&error))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
