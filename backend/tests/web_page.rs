//! The web page end to end, in real headless Chromium driven over WebDriver,
//! against `pixelator serve` (embedded store, event delivery, API and the built
//! page on loopback).
//!
//! Two bench photos and an iPhone HEIC are chosen in the page's file picker. The
//! photos must show five previews each and the HEIC its refusal; after "Upload
//! all" both photos must reach "done" on their cards and in the gallery with five
//! variants each. Then the previews are held against what the pipeline made of
//! the same files: every cell of every preview within [`PREVIEW_TOLERANCE`] levels
//! per channel of the pipeline's grid (the codec's own grids of the photo), every
//! variant fetched from the gallery within [`ENCODING_TOLERANCE`] of that grid at
//! every block centre, and preview and stored variant within
//! [`PREVIEW_TO_STORED_TOLERANCE`] of each other at every block centre: what a
//! person saw before uploading is what was stored.
//!
//! A second test takes the page through what can go wrong: a file the browser
//! cannot decode, a file the pipeline refuses, an upload link that expires.
//!
//! The page comes from `PIXELATOR_WEB_DIR`, by default the repository's `dist/`;
//! when it holds no built page the test builds one with `trunk` (from PATH) into a
//! target folder of its own. With `PIXELATOR_SCREENSHOTS=<folder>` the test saves
//! screenshots of the empty page, the previews, the uploads in progress, the
//! gallery and the large view, at desktop and phone widths.

mod webdriver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use pixelator_shared::render::BlockMap;
use serde::Deserialize;
use serde_json::{Value, json};
use webdriver::{Browser, free_port};

/// The two photos chosen from the bench: a 12 MP phone photo, and a portrait
/// stored on its side with EXIF orientation 6.
const PHOTOS: [&str; 2] = [
    "jpeg-phone-samsung-s7edge-4032x3024.jpg",
    "jpeg-medium-portrait-1800x1200-orient6.jpg",
];

/// How far a preview may be from the pipeline's grid, per channel, in any cell.
const PREVIEW_TOLERANCE: u8 = 2;

/// How far a stored variant may be from the grid it encodes, per channel, at a
/// block centre. The JPEG encoder aims every cell centre at the 8-bit YCbCr sample
/// that converts back within a level of the cell, and keeps chroma whole where
/// subsampling would reach a centre.
const ENCODING_TOLERANCE: u8 = 1;

/// How far a preview may be from the stored variant, per channel, at a block
/// centre.
const PREVIEW_TO_STORED_TOLERANCE: u8 = 2;

const DESKTOP: (u32, u32) = (1440, 900);
const PHONE: (u32, u32) = (390, 844);

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bench_folder() -> PathBuf {
    let root = repository_root();
    match std::env::var_os("PIXELATOR_BENCH_IMAGES") {
        Some(folder) => root.join(folder),
        None => root.join("../shared/bench-images"),
    }
}

/// The built page: `PIXELATOR_WEB_DIR` or `dist/`, built with trunk when missing.
fn web_dir() -> Result<PathBuf> {
    let root = repository_root();
    let dir = match std::env::var_os("PIXELATOR_WEB_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("dist"),
    };
    if dir.join("index.html").is_file() {
        return Ok(dir);
    }
    // A target folder of its own: the test's own build may still hold the usual one.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("web-page-test");
    let status = Command::new("trunk")
        .args(["build", "--dist"])
        .arg(&dir)
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("no built page and no trunk on PATH to build one (see scripts/setup)")?;
    ensure!(status.success(), "trunk build failed");
    Ok(dir)
}

/// `pixelator serve` on free loopback ports with a fresh data folder.
struct Serve {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Serve {
    /// Starts `pixelator serve` with `settings` added to its environment.
    async fn start(web_dir: &Path, settings: &[(&str, &str)]) -> Result<Serve> {
        let data = tempfile::tempdir()?;
        let port = free_port()?;
        let child = Command::new(env!("CARGO_BIN_EXE_pixelator"))
            .arg("serve")
            .envs(settings.iter().copied())
            .env("PIXELATOR_BIND", "127.0.0.1")
            .env("PIXELATOR_PORT", port.to_string())
            .env("PIXELATOR_S3_PORT", free_port()?.to_string())
            .env("PIXELATOR_WORKER_PORT", free_port()?.to_string())
            .env("PIXELATOR_DATA_DIR", data.path())
            .env("PIXELATOR_WEB_DIR", web_dir)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "warn")
            .env_remove("PIXELATOR_WEB_ORIGINS")
            .env_remove("AWS_ENDPOINT_URL")
            .stdout(Stdio::null())
            .spawn()
            .context("starting pixelator serve")?;
        let serve = Serve {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = client.get(format!("{}/api/health", serve.url)).send().await;
            if health.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(serve);
            }
            ensure!(
                Instant::now() < deadline,
                "pixelator serve did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Saves screenshots when `PIXELATOR_SCREENSHOTS` names a folder.
struct Camera {
    folder: Option<PathBuf>,
}

impl Camera {
    fn from_env() -> Result<Camera> {
        let folder = std::env::var_os("PIXELATOR_SCREENSHOTS").map(PathBuf::from);
        if let Some(folder) = &folder {
            std::fs::create_dir_all(folder)?;
        }
        Ok(Camera { folder })
    }

    /// The whole page at `size`'s width, from the top (the window is made as tall
    /// as the page); the window is put back to `back` afterwards.
    async fn shoot(
        &self,
        browser: &Browser,
        name: &str,
        size: (u32, u32),
        back: (u32, u32),
    ) -> Result<()> {
        let Some(folder) = &self.folder else {
            return Ok(());
        };
        browser.resize(size.0, size.1).await?;
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Pictures come lazily once in view, and the page grows as they arrive: the
        // window grows until the viewport holds the whole page.
        let mut window_height = size.1;
        for _ in 0..4 {
            let (bottom, viewport): (f64, f64) = browser
                .run(
                    "window.scrollTo(0, 0); \
                     return Promise.all([...document.images] \
                     .map(image => image.decode().catch(() => null))).then(() => { \
                       const bottom = Math.max(...[...document.body.children] \
                         .map(child => child.getBoundingClientRect().bottom)); \
                       return [bottom, window.innerHeight]; });",
                    vec![],
                )
                .await?;
            if bottom <= viewport || window_height >= 6000 {
                break;
            }
            window_height = (window_height + (bottom - viewport).ceil() as u32 + 24).min(6000);
            browser.resize(size.0, window_height).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let png = browser.screenshot().await?;
        std::fs::write(folder.join(format!("{name}.png")), png)?;
        browser.resize(back.0, back.1).await
    }

    fn on(&self) -> bool {
        self.folder.is_some()
    }
}

/// What the page shows of one card's previews.
#[derive(Debug, Deserialize)]
struct CardPreviews {
    name: String,
    width: u32,
    height: u32,
    decode_ms: f64,
    ready_ms: f64,
    grid_ms: f64,
    /// How the page decoded the file: `jpeg-block-means` or `browser`.
    path: String,
    grids: Vec<PreviewGrid>,
}

#[derive(Debug, Deserialize)]
struct PreviewGrid {
    size: u32,
    columns: u32,
    rows: u32,
    cells: String,
}

impl PreviewGrid {
    fn cell(&self, column: u32, row: u32) -> [u8; 4] {
        let at = ((row * self.columns + column) * 8) as usize;
        let byte = |offset: usize| {
            u8::from_str_radix(&self.cells[at + offset..at + offset + 2], 16).unwrap_or(0)
        };
        [byte(0), byte(2), byte(4), byte(6)]
    }
}

const READ_PREVIEWS: &str = r#"
    return [...document.querySelectorAll('[data-testid=file-card]')]
      .filter(card => card.querySelector('[data-testid=previews]'))
      .map(card => {
        const previews = card.querySelector('[data-testid=previews]');
        return {
          name: card.dataset.fileName,
          width: Number(previews.dataset.width),
          height: Number(previews.dataset.height),
          decode_ms: Number(previews.dataset.decodeMs),
          ready_ms: Number(previews.dataset.readyMs),
          grid_ms: Number(previews.dataset.gridMs),
          path: previews.dataset.path,
          grids: [...card.querySelectorAll('canvas[data-cells]')].map(canvas => {
            const [columns, rows] = canvas.dataset.grid.split('x').map(Number);
            return { size: Number(canvas.dataset.size), columns, rows, cells: canvas.dataset.cells };
          }),
        };
      });
"#;

/// One gallery item as the page shows it.
#[derive(Debug, Deserialize)]
struct GalleryItem {
    key: String,
    status: String,
    variants: Vec<GalleryVariant>,
}

#[derive(Debug, Deserialize)]
struct GalleryVariant {
    size: u32,
    url: String,
}

const READ_GALLERY: &str = r#"
    return [...document.querySelectorAll('[data-testid=gallery-item]')].map(item => ({
      key: item.dataset.key,
      status: item.dataset.status,
      variants: [...item.querySelectorAll('img.variant')].map(img => ({
        size: Number(img.dataset.size),
        url: img.src,
      })),
    }));
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_chosen_on_the_page_are_previewed_uploaded_and_stored_as_previewed() -> Result<()> {
    let bench = bench_folder();
    let photos: Vec<PathBuf> = PHOTOS.iter().map(|name| bench.join(name)).collect();
    for photo in &photos {
        ensure!(
            photo.is_file(),
            "bench photo {} is missing",
            photo.display()
        );
    }
    let heic = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cases/c20-iphone.heic");
    let serve = Serve::start(&web_dir()?, &[]).await?;
    let camera = Camera::from_env()?;
    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await?;

    browser.goto(&format!("{}/", serve.url)).await?;
    browser
        .wait_until(
            "the page and its empty gallery",
            "return !!document.querySelector('.gallery-empty');",
            Duration::from_secs(30),
        )
        .await?;
    camera
        .shoot(&browser, "desktop-empty", DESKTOP, DESKTOP)
        .await?;
    camera
        .shoot(&browser, "phone-empty", PHONE, DESKTOP)
        .await?;

    // Choose the three files at once, as a person would in the picker.
    let input = browser.find("input[type=file]").await?;
    let mut chosen: Vec<String> = photos
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    chosen.push(heic.display().to_string());
    browser.send_keys(&input, &chosen.join("\n")).await?;

    browser
        .wait_until(
            "five previews for each photo and the HEIC's refusal",
            "return document.querySelectorAll('[data-testid=previews] canvas').length == 10 \
             && !!document.querySelector('[data-testid=refusal]');",
            Duration::from_secs(60),
        )
        .await?;
    let previews: Vec<CardPreviews> = browser.run(READ_PREVIEWS, vec![]).await?;
    ensure!(previews.len() == 2, "previews for {} cards", previews.len());
    for card in &previews {
        let sizes: Vec<u32> = card.grids.iter().map(|grid| grid.size).collect();
        ensure!(
            sizes == [8, 16, 32, 48, 64],
            "{}: grids {sizes:?}",
            card.name
        );
        println!(
            "{}: {} x {}, decoded ({}) in {:.0} ms, five previews {:.1} ms after that \
             ({:.1} ms of grid code)",
            card.name,
            card.width,
            card.height,
            card.path,
            card.decode_ms,
            card.ready_ms,
            card.grid_ms
        );
    }
    let refusal: String = browser
        .run(
            "const card = document.querySelector('[data-file-name=\"c20-iphone.heic\"]'); \
             return card.querySelector('[data-testid=refusal]').textContent + \
             (card.querySelector('[data-action=upload]') ? ' UPLOADABLE' : '');",
            vec![],
        )
        .await?;
    ensure!(
        refusal.contains("unsupported format: HEIC"),
        "HEIC card: {refusal}"
    );
    ensure!(!refusal.contains("UPLOADABLE"), "the HEIC can be uploaded");
    camera
        .shoot(&browser, "desktop-previews", DESKTOP, DESKTOP)
        .await?;
    camera
        .shoot(&browser, "phone-previews", PHONE, DESKTOP)
        .await?;

    // Slow the network down so the progress of the 4 MB photo can be watched.
    browser
        .network_conditions(json!({
            "offline": false,
            "latency": 5,
            "download_throughput": 64 * 1024 * 1024,
            "upload_throughput": 1024 * 1024,
        }))
        .await?;
    browser
        .click(&browser.find("[data-action=upload-all]").await?)
        .await?;
    browser
        .wait_until(
            "a progress bar part of the way",
            "return [...document.querySelectorAll('[role=progressbar][aria-valuenow]')] \
             .some(bar => bar.getAttribute('aria-valuenow') > 0 \
                       && bar.getAttribute('aria-valuenow') < 100);",
            Duration::from_secs(30),
        )
        .await?;
    if camera.on() {
        camera
            .shoot(&browser, "desktop-uploading", DESKTOP, DESKTOP)
            .await?;
        camera
            .shoot(&browser, "phone-uploading", PHONE, DESKTOP)
            .await?;
    }
    browser.clear_network_conditions().await?;

    // Both photos done on their cards; nothing failed.
    let deadline = Instant::now() + Duration::from_secs(180);
    let keys: BTreeMap<String, String> = loop {
        let states: Vec<(String, String, Option<String>, String)> = browser
            .run(
                "return [...document.querySelectorAll('[data-testid=file-card]')] \
                 .filter(card => card.dataset.state != 'refused') \
                 .map(card => [card.dataset.fileName, card.dataset.state, card.dataset.key || null, \
                               card.textContent]);",
                vec![],
            )
            .await?;
        if let Some((name, _, _, text)) = states.iter().find(|state| state.1 == "failed") {
            bail!("{name} failed: {text}");
        }
        if states.len() == 2 && states.iter().all(|state| state.1 == "done") {
            break states
                .into_iter()
                .map(|(name, _, key, _)| (name, key.unwrap_or_default()))
                .collect();
        }
        ensure!(Instant::now() < deadline, "uploads not done: {states:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Both in the gallery, done, five variants each.
    let deadline = Instant::now() + Duration::from_secs(60);
    let gallery: Vec<GalleryItem> = loop {
        let items: Vec<GalleryItem> = browser.run(READ_GALLERY, vec![]).await?;
        let ready = keys.values().all(|key| {
            items
                .iter()
                .any(|item| &item.key == key && item.status == "done" && item.variants.len() == 5)
        });
        if ready {
            break items;
        }
        ensure!(Instant::now() < deadline, "gallery shows {items:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // The previews are the pipeline's grids, and the stored variants show them.
    let http = reqwest::Client::new();
    let options = pixelator::codec::PixelateOptions::default();
    for card in &previews {
        let key = &keys[&card.name];
        let item = gallery
            .iter()
            .find(|item| &item.key == key)
            .context("gallery item")?;
        let photo = bench.join(&card.name);
        let (_, pipeline_grids) =
            pixelator::codec::upright_grids(&std::fs::read(&photo)?, &options)?;
        ensure!(
            pipeline_grids.len() == card.grids.len(),
            "{}: grid count",
            card.name
        );
        for (preview, pipeline) in card.grids.iter().zip(&pipeline_grids) {
            let shape = (pipeline.shape().columns, pipeline.shape().rows);
            ensure!(
                shape == (preview.columns, preview.rows),
                "{}: shapes differ",
                card.name
            );
            let preview_off = (0..preview.rows)
                .flat_map(|row| (0..preview.columns).map(move |column| (column, row)))
                .map(|(column, row)| {
                    let (ours, theirs) = (preview.cell(column, row), pipeline.cell(column, row));
                    (0..3)
                        .map(|channel| ours[channel].abs_diff(theirs[channel]))
                        .max()
                        .unwrap_or(0)
                })
                .max()
                .unwrap_or(0);

            let variant = item
                .variants
                .iter()
                .find(|variant| variant.size == preview.size)
                .with_context(|| format!("{key}: no {} variant", preview.size))?;
            let bytes = http
                .get(&variant.url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            let stored = image::load_from_memory(&bytes)
                .with_context(|| format!("decoding the {} variant of {key}", preview.size))?
                .to_rgba8();
            ensure!(
                stored.dimensions() == (card.width, card.height),
                "{key} {}: stored {:?}, previewed {} x {}",
                preview.size,
                stored.dimensions(),
                card.width,
                card.height
            );
            let stored_off =
                off_at_block_centres(&stored, shape, |column, row| pipeline.cell(column, row));
            let apart =
                off_at_block_centres(&stored, shape, |column, row| preview.cell(column, row));
            println!(
                "{} at {} x {}: preview within {preview_off} of the pipeline's grid, stored variant \
                 within {stored_off} of it; preview and stored variant {apart} apart",
                card.name, preview.columns, preview.rows
            );
            ensure!(
                preview_off <= PREVIEW_TOLERANCE,
                "{} at {} x {}: the preview is {preview_off} levels from the pipeline's grid",
                card.name,
                preview.columns,
                preview.rows
            );
            ensure!(
                stored_off <= ENCODING_TOLERANCE,
                "{} at {} x {}: the stored variant is {stored_off} levels from its grid",
                card.name,
                preview.columns,
                preview.rows
            );
            ensure!(
                apart <= PREVIEW_TO_STORED_TOLERANCE,
                "{} at {} x {}: the preview is {apart} levels from the stored variant",
                card.name,
                preview.columns,
                preview.rows
            );
        }
    }

    if camera.on() {
        let scroll = "document.querySelector('.gallery').scrollIntoView(); return null;";
        browser.run::<Value>(scroll, vec![]).await?;
        camera
            .shoot(&browser, "desktop-gallery", DESKTOP, DESKTOP)
            .await?;
        camera
            .shoot(&browser, "phone-gallery", PHONE, DESKTOP)
            .await?;
        browser.click(&browser.find(".gallery-open").await?).await?;
        browser
            .wait_until(
                "the large view",
                "return !!document.querySelector('[data-testid=lightbox]');",
                Duration::from_secs(10),
            )
            .await?;
        camera
            .shoot(&browser, "desktop-large-view", DESKTOP, DESKTOP)
            .await?;
        let close = "document.querySelector('[data-testid=lightbox] [aria-label=Close]').click(); \
                     window.scrollTo(0, 0); return null;";
        browser.run::<Value>(close, vec![]).await?;
        browser.color_scheme("dark").await?;
        camera
            .shoot(&browser, "desktop-dark", DESKTOP, DESKTOP)
            .await?;
        camera.shoot(&browser, "phone-dark", PHONE, DESKTOP).await?;
    }

    browser.quit().await?;
    drop(serve);
    Ok(())
}

/// The largest difference, over the channels of every block centre of a grid of
/// `shape` (columns, rows), between a stored variant and the cells `expected` gives.
fn off_at_block_centres(
    stored: &image::RgbaImage,
    shape: (u32, u32),
    expected: impl Fn(u32, u32) -> [u8; 4],
) -> u8 {
    let (width, height) = stored.dimensions();
    let columns = BlockMap::new(width, shape.0);
    let rows = BlockMap::new(height, shape.1);
    let mut worst = 0;
    for row in 0..shape.1 {
        let Some(y) = rows.center(row) else { continue };
        for column in 0..shape.0 {
            let Some(x) = columns.center(column) else {
                continue;
            };
            let pixel = stored.get_pixel(x, y).0;
            let cell = expected(column, row);
            for channel in 0..3 {
                worst = worst.max(pixel[channel].abs_diff(cell[channel]));
            }
        }
    }
    worst
}

/// The state, source key and text of every card, by file name.
async fn cards(browser: &Browser) -> Result<BTreeMap<String, (String, Option<String>, String)>> {
    let cards: Vec<(String, String, Option<String>, String)> = browser
        .run(
            "return [...document.querySelectorAll('[data-testid=file-card]')] \
             .map(card => [card.dataset.fileName, card.dataset.state, card.dataset.key || null, \
                           card.textContent]);",
            vec![],
        )
        .await?;
    Ok(cards
        .into_iter()
        .map(|(name, state, key, text)| (name, (state, key, text)))
        .collect())
}

/// Waits until the card of `name` is in `state`, failing after `limit`.
async fn wait_for_card(
    browser: &Browser,
    name: &str,
    state: &str,
    limit: Duration,
) -> Result<(Option<String>, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let cards = cards(browser).await?;
        if let Some((now, key, text)) = cards.get(name) {
            if now == state {
                return Ok((key.clone(), text.clone()));
            }
            ensure!(
                !(now == "done" && state == "failed"),
                "{name} is done, it should have failed: {text}"
            );
        }
        ensure!(Instant::now() < deadline, "{name} not {state}: {cards:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_go_wrong_show_why_on_their_card_never_done_and_can_be_retried() -> Result<()>
{
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cases");
    // Upload links that live 3 seconds, so that one can expire on the way, and
    // pictures at most 100 pixels wide.
    let settings = [
        ("PIXELATOR_UPLOAD_URL_SECONDS", "3"),
        ("PIXELATOR_MAX_DIMENSION", "100"),
    ];
    let serve = Serve::start(&web_dir()?, &settings).await?;
    let browser = Browser::start(DESKTOP.0, DESKTOP.1).await?;
    browser.goto(&format!("{}/", serve.url)).await?;
    browser
        .wait_until(
            "the page",
            "return !!document.querySelector('.gallery-empty');",
            Duration::from_secs(30),
        )
        .await?;
    let input = browser.find("input[type=file]").await?;

    // A JPEG cut off in its compressed data: the browser cannot decode it, so the
    // page refuses it before anything is sent.
    let truncated = cases.join("c17-truncated.jpg");
    browser
        .send_keys(&input, &truncated.display().to_string())
        .await?;
    let (_, text) = wait_for_card(
        &browser,
        "c17-truncated.jpg",
        "refused",
        Duration::from_secs(30),
    )
    .await?;
    ensure!(text.contains("damaged or incomplete"), "{text}");

    // A picture wider than the pipeline takes (its limit is set to 100 pixels
    // here; the page does not know that limit): the pipeline refuses it, and the
    // card and the gallery say why.
    let wide = cases.join("c01-summer-trip.jpg");
    browser
        .send_keys(&input, &wide.display().to_string())
        .await?;
    wait_for_card(
        &browser,
        "c01-summer-trip.jpg",
        "ready",
        Duration::from_secs(30),
    )
    .await?;
    browser
        .click(
            &browser
                .find("[data-file-name='c01-summer-trip.jpg'] [data-action=upload]")
                .await?,
        )
        .await?;
    let (key, text) = wait_for_card(
        &browser,
        "c01-summer-trip.jpg",
        "failed",
        Duration::from_secs(120),
    )
    .await?;
    ensure!(text.contains("the pipeline could not process it"), "{text}");
    ensure!(text.contains("too large"), "{text}");
    ensure!(text.contains("Retry"), "{text}");
    let key = key.context("the failed upload has no key")?;
    let gallery_failure = format!(
        "return [...document.querySelectorAll('[data-testid=gallery-item]')] \
         .some(item => item.dataset.key == {key:?} && item.dataset.status == 'failed' \
                       && !!item.querySelector('[data-testid=failure-reason]'));"
    );
    browser
        .wait_until(
            "the failure in the gallery",
            &gallery_failure,
            Duration::from_secs(30),
        )
        .await?;

    // An upload whose link expires before the store sees it: 403, shown as such.
    browser
        .network_conditions(json!({
            "offline": false,
            "latency": 5000,
            "download_throughput": 64 * 1024 * 1024,
            "upload_throughput": 64 * 1024 * 1024,
        }))
        .await?;
    let photo = cases.join("c23-upload.jpg");
    browser
        .send_keys(&input, &photo.display().to_string())
        .await?;
    wait_for_card(&browser, "c23-upload.jpg", "ready", Duration::from_secs(30)).await?;
    browser
        .click(
            &browser
                .find("[data-file-name='c23-upload.jpg'] [data-action=upload]")
                .await?,
        )
        .await?;
    let (_, text) = wait_for_card(
        &browser,
        "c23-upload.jpg",
        "failed",
        Duration::from_secs(120),
    )
    .await?;
    ensure!(text.contains("403"), "{text}");
    ensure!(text.contains("expired"), "{text}");

    // Retried on a good network, the same file goes through.
    browser.clear_network_conditions().await?;
    browser
        .click(
            &browser
                .find("[data-file-name='c23-upload.jpg'] [data-action=retry]")
                .await?,
        )
        .await?;
    wait_for_card(&browser, "c23-upload.jpg", "done", Duration::from_secs(120)).await?;

    browser.quit().await?;
    drop(serve);
    Ok(())
}
