//! The page's components in a real browser (headless Chromium via chromedriver).
//!
//! Files are fed the way a person would: a drop event carrying a `DataTransfer` of
//! real image files (the repository's case images), or a click on the picker's
//! button. No API runs behind these tests, so the page works from its default
//! limits and nothing is uploaded; the end-to-end test covers the upload.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use leptos::prelude::*;
use pixelator_frontend::App;
use pixelator_frontend::browser::sleep;
use pixelator_frontend::cards::{FileEntry, PreviewState, Verdict};
use pixelator_frontend::checks::{Accepted, Limits, check_content};
use pixelator_frontend::components::drop_zone::DropZone;
use pixelator_frontend::components::file_card::FileCard;
use pixelator_frontend::components::lightbox::Lightbox;
use pixelator_frontend::preview::{decode_upright, full_size_grids, preview, read_sampled};
use pixelator_frontend::sampling::sample_size;
use pixelator_frontend::transfer::{UploadFailure, UploadState};
use pixelator_shared::grid::{GridShape, PixelLayout, grids_of};
use pixelator_shared::orientation::Orientation;
use pixelator_shared::wire::{ImageFormat, ImageStatus, ImageView, VariantView};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{
    CanvasRenderingContext2d, DataTransfer, DragEvent, DragEventInit, Element, File,
    FilePropertyBag, HtmlCanvasElement, HtmlElement, ImageBitmap,
};

wasm_bindgen_test_configure!(run_in_browser);

const HEIC: &[u8] = include_bytes!("data/cases/c20-iphone.heic");
const QUADRANTS_PNG: &[u8] = include_bytes!("data/cases/c08-first.png");
const ROTATED_JPEG: &[u8] = include_bytes!("data/cases/c10-exif-orientation-6.jpg");
const SUMMER_JPEG: &[u8] = include_bytes!("data/cases/c01-summer-trip.jpg");

fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// A fresh element in the page to mount a component into.
fn stage() -> HtmlElement {
    let element: HtmlElement = document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&element).unwrap();
    element
}

fn file(bytes: &[u8], name: &str, media_type: &str) -> File {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = FilePropertyBag::new();
    options.set_type(media_type);
    File::new_with_u8_array_sequence_and_options(&parts, name, &options).unwrap()
}

/// Drops `files` on `target` as a person dragging them from a file manager would.
fn drop_files(target: &Element, files: &[File]) {
    let transfer = DataTransfer::new().unwrap();
    for file in files {
        transfer.items().add_with_file(file).unwrap();
    }
    let init = DragEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_data_transfer(Some(&transfer));
    for kind in ["dragenter", "dragover", "drop"] {
        let event = DragEvent::new_with_event_init_dict(kind, &init).unwrap();
        target.dispatch_event(&event).unwrap();
    }
}

fn find(root: &Element, selector: &str) -> Option<Element> {
    root.query_selector(selector).unwrap()
}

fn find_all(root: &Element, selector: &str) -> Vec<Element> {
    let list = root.query_selector_all(selector).unwrap();
    (0..list.length())
        .filter_map(|index| list.item(index))
        .map(|node| node.unchecked_into())
        .collect()
}

/// Waits until `condition` holds, failing after ten seconds.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        sleep(20).await;
    }
    panic!("timed out waiting for {what}");
}

fn card_named(root: &Element, name: &str) -> Option<Element> {
    find(
        root,
        &format!("[data-testid=file-card][data-file-name=\"{name}\"]"),
    )
}

/// A cell of a preview's `data-cells`, as RGBA.
fn cell(canvas: &Element, column: usize, row: usize) -> [u8; 4] {
    let columns: usize = canvas
        .get_attribute("data-grid")
        .unwrap()
        .split('x')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let cells = canvas.get_attribute("data-cells").unwrap();
    let at = (row * columns + column) * 8;
    let byte =
        |offset: usize| u8::from_str_radix(&cells[at + offset..at + offset + 2], 16).unwrap();
    [byte(0), byte(2), byte(4), byte(6)]
}

fn close_to(actual: [u8; 4], wanted: [u8; 3], tolerance: u8) -> bool {
    (0..3).all(|channel| actual[channel].abs_diff(wanted[channel]) <= tolerance)
}

#[wasm_bindgen_test]
async fn dropped_photos_show_five_crisp_previews_each_at_their_aspect_ratio() {
    let root = stage();
    let _app = leptos::mount::mount_to(root.clone(), App);
    let zone = find(&root, "[data-testid=dropzone]").unwrap();
    drop_files(
        &zone,
        &[
            file(QUADRANTS_PNG, "quadrants.png", "image/png"),
            file(SUMMER_JPEG, "summer trip (1).jpg", "image/jpeg"),
        ],
    );

    for name in ["quadrants.png", "summer trip (1).jpg"] {
        wait_for(name, || {
            card_named(&root, name)
                .is_some_and(|card| find(&card, "[data-testid=previews]").is_some())
        })
        .await;
        let card = card_named(&root, name).unwrap();
        let canvases = find_all(&card, "canvas.grid-canvas");
        let grids: Vec<String> = canvases
            .iter()
            .map(|canvas| canvas.get_attribute("data-grid").unwrap())
            .collect();
        assert_eq!(grids, ["8x8", "16x16", "32x32", "48x48", "64x64"], "{name}");
        assert_eq!(card.get_attribute("data-state").as_deref(), Some("ready"));
        assert!(
            find(&card, "[data-testid=timing]")
                .unwrap()
                .text_content()
                .unwrap()
                .contains("ms")
        );

        // Crisp blocks: the canvas holds one pixel per cell and is scaled without
        // smoothing, at the picture's aspect ratio.
        let style = web_sys::window()
            .unwrap()
            .get_computed_style(&canvases[0])
            .unwrap()
            .unwrap();
        assert_eq!(
            style.get_property_value("image-rendering").unwrap(),
            "pixelated"
        );
        let canvas: &HtmlCanvasElement = canvases[4].unchecked_ref();
        assert_eq!((canvas.width(), canvas.height()), (64, 64));
        let box_ratio = canvas.client_width() as f64 / canvas.client_height() as f64;
        let previews = find(&card, "[data-testid=previews]").unwrap();
        let width: f64 = previews
            .get_attribute("data-width")
            .unwrap()
            .parse()
            .unwrap();
        let height: f64 = previews
            .get_attribute("data-height")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (box_ratio - width / height).abs() < 0.05,
            "{name}: {box_ratio} vs {width}/{height}"
        );
    }

    // The quadrants are blue / white on top; the summer trip red / green on top,
    // blue / yellow at the bottom.
    let card = card_named(&root, "quadrants.png").unwrap();
    let coarse = find(&card, "canvas[data-size='8']").unwrap();
    assert!(
        close_to(cell(&coarse, 0, 0), [0, 0, 255], 8),
        "{:?}",
        cell(&coarse, 0, 0)
    );
    let card = card_named(&root, "summer trip (1).jpg").unwrap();
    let fine = find(&card, "canvas[data-size='64']").unwrap();
    assert!(
        close_to(cell(&fine, 4, 4), [255, 0, 0], 12),
        "{:?}",
        cell(&fine, 4, 4)
    );
    assert!(
        close_to(cell(&fine, 60, 60), [255, 255, 0], 12),
        "{:?}",
        cell(&fine, 60, 60)
    );
}

#[wasm_bindgen_test]
async fn a_photo_is_turned_upright_by_its_exif_orientation_before_the_grids() {
    let root = stage();
    let _app = leptos::mount::mount_to(root.clone(), App);
    let zone = find(&root, "[data-testid=dropzone]").unwrap();
    drop_files(&zone, &[file(ROTATED_JPEG, "rotated.jpg", "image/jpeg")]);
    wait_for("previews", || {
        find(&root, "[data-testid=previews]").is_some()
    })
    .await;

    let previews = find(&root, "[data-testid=previews]").unwrap();
    assert_eq!(previews.get_attribute("data-width").as_deref(), Some("64"));
    assert_eq!(previews.get_attribute("data-height").as_deref(), Some("96"));
    // Shown upright: red band on top, green in the middle, blue at the bottom,
    // white square in the top-left corner.
    let grid = find(&root, "canvas[data-size='16']").unwrap();
    assert!(
        close_to(cell(&grid, 10, 3), [255, 0, 0], 16),
        "{:?}",
        cell(&grid, 10, 3)
    );
    assert!(
        close_to(cell(&grid, 8, 8), [0, 255, 0], 16),
        "{:?}",
        cell(&grid, 8, 8)
    );
    assert!(
        close_to(cell(&grid, 8, 14), [0, 0, 255], 16),
        "{:?}",
        cell(&grid, 8, 14)
    );
    assert!(
        close_to(cell(&grid, 0, 0), [255, 255, 255], 16),
        "{:?}",
        cell(&grid, 0, 0)
    );
}

/// Shrink-on-load asks the browser for a copy in upright pixels: the copy must be
/// the upright picture, scaled, not the stored one stretched to the upright size.
#[wasm_bindgen_test]
async fn a_photo_stored_on_its_side_is_decoded_straight_to_an_upright_copy() {
    let photo = file(ROTATED_JPEG, "rotated.jpg", "image/jpeg");
    // Grids of 2 and 3 cells want at least 30 pixels a side: a copy of half the
    // 64 x 96 upright picture.
    let limits = Limits {
        grid_sizes: vec![2, 3],
        ..Limits::default()
    };
    let accepted = check_content(ROTATED_JPEG, &limits).unwrap();
    assert_eq!(accepted.upright_size(), Some((64, 96)));

    let shown = preview(&photo, &limits, &accepted).await.unwrap();
    assert!(shown.shrunk_on_load);
    assert_eq!((shown.width, shown.height), (64, 96));
    assert_eq!(shown.sampled, (32, 48));

    let whole = decode_upright(&photo, None).await.unwrap();
    assert_eq!((whole.width(), whole.height()), (64, 96));
    let shapes = limits.shapes(64, 96).unwrap();
    let full = full_size_grids(&whole, &shapes).unwrap();
    for ((_, ours), theirs) in shown.grids.iter().zip(&full) {
        let worst = ours
            .cells()
            .iter()
            .zip(theirs.cells())
            .flat_map(|(a, b)| (0..3).map(move |channel| a[channel].abs_diff(b[channel])))
            .max()
            .unwrap();
        web_sys::console::log_1(&JsValue::from_str(&format!(
            "{}: {worst} levels",
            ours.shape()
        )));
        assert!(worst <= 2, "{}: {worst} levels off", ours.shape());
    }
}

#[wasm_bindgen_test]
async fn files_the_pipeline_cannot_process_are_refused_on_their_card_and_never_uploadable() {
    let root = stage();
    let _app = leptos::mount::mount_to(root.clone(), App);
    let zone = find(&root, "[data-testid=dropzone]").unwrap();
    // The HEIC is named like a JPEG: the page must read its content.
    drop_files(
        &zone,
        &[
            file(HEIC, "IMG_0001.jpg", "image/jpeg"),
            file(
                b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
                "invoice.pdf",
                "application/pdf",
            ),
            file(b"", "empty.png", "image/png"),
        ],
    );
    let expected = [
        ("IMG_0001.jpg", "unsupported format: HEIC"),
        ("invoice.pdf", "not an image: the content is a PDF document"),
        ("empty.png", "empty file"),
    ];
    for (name, message) in expected {
        wait_for(name, || {
            card_named(&root, name)
                .is_some_and(|card| find(&card, "[data-testid=refusal]").is_some())
        })
        .await;
        let card = card_named(&root, name).unwrap();
        let text = find(&card, "[data-testid=refusal]")
            .unwrap()
            .text_content()
            .unwrap();
        assert!(text.contains(message), "{name}: {text}");
        assert!(text.contains("will not be uploaded"), "{name}: {text}");
        assert_eq!(card.get_attribute("data-state").as_deref(), Some("refused"));
        assert!(
            find(&card, "[data-action=upload]").is_none(),
            "{name} has an upload button"
        );
        assert!(find(&card, "canvas").is_none(), "{name} has previews");
    }
    let upload_all = find(&root, "[data-action=upload-all]").unwrap();
    assert!(
        upload_all
            .unchecked_ref::<web_sys::HtmlButtonElement>()
            .disabled()
    );
}

#[wasm_bindgen_test]
async fn an_image_over_the_pixel_limit_is_refused_from_its_header() {
    let root = stage();
    let _app = leptos::mount::mount_to(root.clone(), App);
    let zone = find(&root, "[data-testid=dropzone]").unwrap();
    let bomb = include_bytes!("data/cases/c18-bomb-100000x100000.png");
    drop_files(&zone, &[file(bomb, "bomb.png", "image/png")]);
    wait_for("refusal", || find(&root, "[data-testid=refusal]").is_some()).await;
    let text = find(&root, "[data-testid=refusal]")
        .unwrap()
        .text_content()
        .unwrap();
    assert!(text.contains("100000 × 100000 pixels"), "{text}");
}

#[wasm_bindgen_test]
async fn the_choose_button_opens_the_file_picker_from_the_keyboard() {
    let root = stage();
    let (limits, _) = signal(Limits::default());
    let _zone = leptos::mount::mount_to(root.clone(), move || {
        view! { <DropZone limits=limits on_files=Callback::new(|_files: Vec<File>| {}) /> }
    });
    let input = find(&root, "input[type=file]").unwrap();
    assert!(input.has_attribute("multiple"));
    let opened = std::rc::Rc::new(std::cell::Cell::new(false));
    let seen = opened.clone();
    let listener = wasm_bindgen::closure::Closure::<dyn FnMut()>::new(move || seen.set(true));
    input
        .add_event_listener_with_callback("click", listener.as_ref().unchecked_ref())
        .unwrap();

    // A button is focusable and activated by Enter and Space; `click()` is what
    // the browser does on either key.
    let button: HtmlElement = find(&root, "button").unwrap().unchecked_into();
    button.focus().unwrap();
    assert_eq!(
        document().active_element().as_ref(),
        Some(button.unchecked_ref::<Element>())
    );
    assert!(button.tab_index() >= 0);
    button.click();
    assert!(opened.get(), "the picker was not opened");
}

#[wasm_bindgen_test]
async fn dropping_several_files_hands_them_all_over_in_order() {
    let root = stage();
    let (limits, _) = signal(Limits::default());
    let (received, set_received) = signal(Vec::<String>::new());
    let _zone = leptos::mount::mount_to(root.clone(), move || {
        let on_files = Callback::new(move |files: Vec<File>| {
            set_received.set(files.iter().map(File::name).collect());
        });
        view! { <DropZone limits=limits on_files=on_files /> }
    });
    let zone = find(&root, "[data-testid=dropzone]").unwrap();
    drop_files(
        &zone,
        &[
            file(b"a", "a.jpg", "image/jpeg"),
            file(b"b", "b.png", "image/png"),
            file(b"c", "c.gif", "image/gif"),
        ],
    );
    assert_eq!(received.get_untracked(), ["a.jpg", "b.png", "c.gif"]);
}

fn accepted_entry(id: u32) -> FileEntry {
    let entry = FileEntry::new(id, file(SUMMER_JPEG, "summer.jpg", "image/jpeg"));
    entry.set_verdict.set(Verdict::Accepted(Accepted {
        format: ImageFormat::Jpeg,
        dimensions: Some((120, 80)),
        orientation: Some(Orientation::Normal),
    }));
    entry
        .set_preview
        .set(PreviewState::Unavailable("not drawn in this test".into()));
    entry
}

/// Mounts a card for `entry`; it stays in the page for the rest of the run.
fn mount_card(root: &HtmlElement, entry: FileEntry) {
    let handle = leptos::mount::mount_to(root.clone(), move || {
        view! {
            <FileCard
                entry=entry
                on_upload=Callback::new(|_entry: FileEntry| {})
                on_remove=Callback::new(|_id: u32| {})
            />
        }
    });
    std::mem::forget(handle);
}

#[wasm_bindgen_test]
async fn an_upload_shows_its_progress_then_processing() {
    let root = stage();
    let entry = accepted_entry(1);
    mount_card(&root, entry);
    let card = find(&root, "[data-testid=file-card]").unwrap();
    assert_eq!(card.get_attribute("data-state").as_deref(), Some("ready"));

    entry.set_upload.set(UploadState::Sending {
        sent: 2_621_440.0,
        total: 10_485_760.0,
    });
    sleep(0).await;
    let bar = find(&card, "[role=progressbar]").unwrap();
    assert_eq!(bar.get_attribute("aria-valuenow").as_deref(), Some("25"));
    assert!(card.text_content().unwrap().contains("2.5 MB of 10 MB"));
    assert_eq!(
        card.get_attribute("data-state").as_deref(),
        Some("uploading")
    );
    assert_eq!(card.get_attribute("aria-busy").as_deref(), Some("true"));

    entry.set_upload.set(UploadState::Processing {
        key: "uploads/x/summer.jpg".into(),
        since: 0.0,
    });
    sleep(0).await;
    assert_eq!(
        card.get_attribute("data-state").as_deref(),
        Some("processing")
    );
    assert!(find(&card, "[data-testid=upload-done]").is_none());
}

#[wasm_bindgen_test]
async fn every_kind_of_failure_shows_its_reason_and_a_retry_never_done() {
    let failures = [
        (
            UploadFailure::Store {
                status: 403,
                code: "SignatureDoesNotMatch".into(),
                message: "The request signature we calculated does not match".into(),
            },
            "signature does not match",
        ),
        (
            UploadFailure::Store {
                status: 403,
                code: "AccessDenied".into(),
                message: "Request has expired".into(),
            },
            "upload link expired",
        ),
        (UploadFailure::Network("offline".into()), "network error"),
        (
            UploadFailure::Pipeline {
                key: "uploads/x/IMG_0001.heic".into(),
                reason: "unsupported format: HEIC".into(),
            },
            "unsupported format: HEIC",
        ),
    ];
    for (index, (failure, words)) in failures.into_iter().enumerate() {
        let root = stage();
        let entry = accepted_entry(10 + index as u32);
        mount_card(&root, entry);
        entry.set_upload.set(UploadState::Failed(failure));
        sleep(0).await;
        let card = find(&root, "[data-testid=file-card]").unwrap();
        let error = find(&card, "[data-testid=upload-error]").unwrap();
        assert!(
            error.text_content().unwrap().contains(words),
            "{}",
            error.text_content().unwrap()
        );
        assert!(find(&card, "[data-action=retry]").is_some());
        assert!(find(&card, "[data-testid=upload-done]").is_none());
        assert_eq!(card.get_attribute("data-state").as_deref(), Some("failed"));
    }
}

#[wasm_bindgen_test]
async fn the_large_view_shows_the_original_and_every_variant_with_download_links() {
    let root = stage();
    let image = ImageView {
        key: "uploads/abc/summer trip (1).jpg".into(),
        name: "summer trip (1)".into(),
        status: ImageStatus::Done,
        reason: None,
        width: Some(120),
        height: Some(80),
        format: Some(ImageFormat::Jpeg),
        bytes: Some(1361),
        processed_at: None,
        original_url: Some("data:,original".into()),
        variants: [8, 16, 32, 48, 64]
            .into_iter()
            .map(|size| VariantView {
                size,
                grid: GridShape::new(size, size),
                key: format!("uploads/abc/pixelated-{size}x{size}-summer trip (1).jpg"),
                url: format!("data:,variant{size}"),
                bytes: 100,
                content_type: "image/jpeg".into(),
            })
            .collect(),
    };
    let (open, set_open) = signal(true);
    let _view = leptos::mount::mount_to(root.clone(), move || {
        let image = image.clone();
        move || {
            open.get().then(|| {
                view! { <Lightbox image=image.clone() on_close=Callback::new(move |()| set_open.set(false)) /> }
            })
        }
    });
    let dialog = find(&root, "[data-testid=lightbox]").unwrap();
    assert_eq!(dialog.get_attribute("role").as_deref(), Some("dialog"));
    let links = find_all(&dialog, "a[download]");
    let names: Vec<String> = links
        .iter()
        .map(|link| link.get_attribute("download").unwrap())
        .collect();
    assert_eq!(names[0], "summer trip (1).jpg");
    assert_eq!(names[1], "pixelated-8x8-summer trip (1).jpg");
    assert_eq!(links.len(), 6);
    // The close button has the focus, and Escape closes.
    sleep(0).await;
    let focused = document().active_element().unwrap();
    assert_eq!(
        focused.get_attribute("aria-label").as_deref(),
        Some("Close")
    );
    let init = web_sys::KeyboardEventInit::new();
    init.set_key("Escape");
    init.set_bubbles(true);
    let escape =
        web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap();
    focused.dispatch_event(&escape).unwrap();
    sleep(0).await;
    assert!(find(&root, "[data-testid=lightbox]").is_none());
}

/// A busy 4000 x 3000 picture drawn on a canvas: gradients, hard-edged shapes and
/// one-pixel stripes, the content on which a shrunken copy differs most. (Shrunk by
/// factors other than powers of two, as to 1024 x 1024, the browser's copy of it
/// gives grids up to 3 levels off at 64 x 64, and up to 26 with the "low" filter.)
fn busy_picture() -> HtmlCanvasElement {
    let canvas: HtmlCanvasElement = document()
        .create_element("canvas")
        .unwrap()
        .unchecked_into();
    canvas.set_width(4000);
    canvas.set_height(3000);
    let context: CanvasRenderingContext2d =
        canvas.get_context("2d").unwrap().unwrap().unchecked_into();
    let gradient = context.create_linear_gradient(0.0, 0.0, 4000.0, 3000.0);
    gradient.add_color_stop(0.0, "#1d3557").unwrap();
    gradient.add_color_stop(0.5, "#e9c46a").unwrap();
    gradient.add_color_stop(1.0, "#e63946").unwrap();
    context.set_fill_style_canvas_gradient(&gradient);
    context.fill_rect(0.0, 0.0, 4000.0, 3000.0);
    let mut state = 12345u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for _ in 0..400 {
        let colour = format!("#{:06x}", next() & 0xFF_FFFF);
        context.set_fill_style_str(&colour);
        let (x, y) = ((next() % 4000) as f64, (next() % 3000) as f64);
        let (width, height) = ((next() % 600 + 20) as f64, (next() % 600 + 20) as f64);
        context.fill_rect(x, y, width, height);
    }
    // One-pixel black and white stripes over a quarter of the picture.
    context.set_fill_style_str("#000");
    let mut x = 2000.0;
    while x < 4000.0 {
        context.fill_rect(x, 1500.0, 1.0, 1500.0);
        x += 2.0;
    }
    canvas
}

#[wasm_bindgen_test]
async fn grids_of_the_browsers_shrunken_copy_match_the_full_picture_within_two_levels() {
    let canvas = busy_picture();
    let promise = web_sys::window()
        .unwrap()
        .create_image_bitmap_with_html_canvas_element(&canvas)
        .unwrap();
    let bitmap: ImageBitmap = JsFuture::from(promise).await.unwrap().unchecked_into();
    let shapes: Vec<GridShape> = [8, 16, 32, 48, 64]
        .map(|size| GridShape::new(size, size))
        .to_vec();

    let full = full_size_grids(&bitmap, &shapes).unwrap();
    let sampled = sample_size(4000, 3000, &shapes);
    assert_eq!(sampled, (1000, 750));
    let pixels = read_sampled(&bitmap, sampled, web_sys::ResizeQuality::Medium)
        .await
        .unwrap();
    let from_copy = grids_of(&pixels, sampled.0, sampled.1, PixelLayout::Rgba, &shapes).unwrap();

    for ((ours, theirs), shape) in from_copy.iter().zip(&full).zip(&shapes) {
        let worst = ours
            .cells()
            .iter()
            .zip(theirs.cells())
            .flat_map(|(a, b)| (0..3).map(move |channel| a[channel].abs_diff(b[channel])))
            .max()
            .unwrap();
        web_sys::console::log_1(&JsValue::from_str(&format!("{shape}: {worst} levels")));
        assert!(
            worst <= 2,
            "{shape}: the shrunken copy's grid is {worst} levels off"
        );
    }
}
