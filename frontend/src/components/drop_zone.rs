//! Where photos come in: a drop target that also opens the file picker.
//!
//! The whole zone takes drops and clicks; the button inside is the keyboard's way
//! in (Tab to it, Enter or Space). Several files may come at once either way.

use leptos::ev::{DragEvent, Event};
use leptos::html::Input;
use leptos::prelude::*;
use web_sys::{File, FileList};

use crate::checks::{Limits, human_bytes};

/// The drop zone; `on_files` receives every file dropped or chosen.
#[component]
pub fn DropZone(
    /// The limits, for the help text and the picker's filter.
    limits: ReadSignal<Limits>,
    /// Called with the files, in the order given.
    on_files: Callback<Vec<File>>,
) -> impl IntoView {
    let input_ref = NodeRef::<Input>::new();
    // Drag events fire on every child entered and left; counting them tells when
    // the pointer has really left the zone.
    let (drag_depth, set_drag_depth) = signal(0i32);

    let open_picker = move || {
        if let Some(input) = input_ref.get_untracked() {
            input.click();
        }
    };
    let on_drag_enter = move |event: DragEvent| {
        event.prevent_default();
        set_drag_depth.update(|depth| *depth += 1);
    };
    let on_drag_over = move |event: DragEvent| {
        // Without this the browser opens the dropped file itself.
        event.prevent_default();
        if let Some(transfer) = event.data_transfer() {
            transfer.set_drop_effect("copy");
        }
    };
    let on_drag_leave =
        move |_: DragEvent| set_drag_depth.update(|depth| *depth = (*depth - 1).max(0));
    let on_drop = move |event: DragEvent| {
        event.prevent_default();
        set_drag_depth.set(0);
        if let Some(list) = event.data_transfer().and_then(|transfer| transfer.files()) {
            let files = files_of(&list);
            if !files.is_empty() {
                on_files.run(files);
            }
        }
    };
    let on_change = move |_: Event| {
        let Some(input) = input_ref.get_untracked() else {
            return;
        };
        if let Some(list) = input.files() {
            let files = files_of(&list);
            if !files.is_empty() {
                on_files.run(files);
            }
        }
        // Choosing the same file again must fire `change` again.
        input.set_value("");
    };

    let accept = move || {
        limits
            .get()
            .accepted
            .iter()
            .map(|format| format.mime_type())
            .collect::<Vec<_>>()
            .join(",")
    };
    let help = move || {
        let limits = limits.get();
        let names: Vec<&str> = limits.accepted.iter().map(|format| format.name()).collect();
        format!(
            "{}; up to {} each. Nothing is sent until you press Upload.",
            names.join(", "),
            human_bytes(limits.max_upload_bytes)
        )
    };

    view! {
        <div
            class="dropzone"
            class=("dragging", move || drag_depth.get() > 0)
            data-testid="dropzone"
            on:dragenter=on_drag_enter
            on:dragover=on_drag_over
            on:dragleave=on_drag_leave
            on:drop=on_drop
            on:click=move |_| open_picker()
        >
            <svg class="dropzone-icon" viewBox="0 0 48 48" aria-hidden="true">
                <rect x="6" y="6" width="12" height="12" rx="2" />
                <rect x="18" y="18" width="12" height="12" rx="2" />
                <rect x="30" y="6" width="12" height="12" rx="2" />
                <rect x="6" y="30" width="12" height="12" rx="2" />
                <rect x="30" y="30" width="12" height="12" rx="2" />
            </svg>
            <p class="dropzone-title">"Drop photos here"</p>
            <p class="dropzone-or">
                "or "
                <button
                    type="button"
                    class="button primary"
                    aria-describedby="dropzone-help"
                    on:click=move |event| {
                        // The zone's own click handler opens the picker.
                        event.stop_propagation();
                        open_picker();
                    }
                >
                    "Choose photos"
                </button>
            </p>
            <p id="dropzone-help" class="dropzone-help">{help}</p>
            <input
                node_ref=input_ref
                class="visually-hidden"
                type="file"
                multiple
                accept=accept
                tabindex="-1"
                aria-hidden="true"
                data-testid="file-input"
                on:click=move |event| event.stop_propagation()
                on:change=on_change
            />
        </div>
    }
}

/// The files of a `FileList`, in order.
pub fn files_of(list: &FileList) -> Vec<File> {
    (0..list.length())
        .filter_map(|index| list.get(index))
        .collect()
}
