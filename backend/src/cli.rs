//! `pixelator pixelate`: pixelate files on disk, no store and no events involved.
//!
//! Each input file is read, pixelated by the codec and its variants written to the
//! output folder as `pixelated-<columns>x<rows>-<file name>` (the extension changes
//! only when the variant is written in another format than the name claims). A bad
//! file does not stop the others: it gets one line on stderr naming the file and the
//! reason, and the command ends with a non-zero status once everything else is done.
//!
//! Named files are always tried, whatever their name. Folders contribute the files
//! directly inside them whose extension names an image format (HEIC, AVIF and other
//! formats the codec only recognises included, so they are refused with a reason
//! rather than skipped in silence);
//! hidden files and earlier variants (`pixelated-...`) are left out.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use pixelator::codec::{self, Limits, PixelateOptions};
use pixelator_shared::GridMode;
use pixelator_shared::layout::{OTHER_IMAGE_EXTENSIONS, VARIANT_PREFIX, variant_key};
use pixelator_shared::wire::ImageFormat;

/// Batches at least this large show a progress line.
const PROGRESS_FROM: usize = 8;

/// Arguments of `pixelator pixelate`.
#[derive(Debug, Args)]
pub(crate) struct PixelateArgs {
    /// Image files, or folders whose image files are all pixelated.
    #[arg(required = true, value_name = "FILE_OR_FOLDER")]
    inputs: Vec<PathBuf>,

    /// Folder the variants are written to (created when missing).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,

    /// Grid sizes, comma-separated: one variant per size.
    #[arg(long, value_delimiter = ',', default_values_t = pixelator_shared::DEFAULT_GRID_SIZES)]
    sizes: Vec<u32>,

    /// `classic`: n x n blocks whatever the shape; `square`: n blocks along the
    /// longer side, square blocks.
    #[arg(long, default_value = "classic", value_parser = parse_mode)]
    mode: GridMode,

    /// Largest image accepted, in pixels.
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    max_pixels: u64,
}

fn parse_mode(text: &str) -> Result<GridMode, String> {
    text.parse()
}

/// What a run did.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Inputs pixelated.
    pub(crate) done: usize,
    /// Inputs that failed.
    pub(crate) failed: usize,
    /// Variants written.
    pub(crate) variants: usize,
}

/// Per-stage time of one run, summed over its inputs.
#[derive(Debug, Default)]
struct StageTotals {
    read: Duration,
    decode: Duration,
    encode: Duration,
    write: Duration,
}

/// Runs `pixelator pixelate`; failures of single inputs are reported on stderr and
/// counted, only a problem that stops the whole run is an error.
pub(crate) fn run(args: PixelateArgs) -> anyhow::Result<Summary> {
    if args.sizes.is_empty() || args.sizes.contains(&0) {
        bail!("--sizes needs one or more grid sizes of at least 1");
    }
    let options = PixelateOptions {
        sizes: args.sizes.clone(),
        mode: args.mode,
        limits: Limits {
            max_pixels: args.max_pixels,
            ..Limits::default()
        },
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;

    let mut summary = Summary::default();
    let mut stages = StageTotals::default();
    let inputs = collect_inputs(&args.inputs, &mut summary);
    let mut progress = Progress::new(inputs.len());
    // Which input wrote each output name, so two inputs never overwrite each other.
    let mut written_by: HashMap<PathBuf, PathBuf> = HashMap::new();

    for (index, input) in inputs.iter().enumerate() {
        progress.show(index, input);
        match process(input, &args.out, &options, &mut written_by, &mut stages) {
            Ok(count) => {
                summary.done += 1;
                summary.variants += count;
            }
            Err(reason) => {
                summary.failed += 1;
                progress.clear();
                eprintln!("error: {}: {reason}", input.display());
            }
        }
    }
    progress.clear();

    tracing::info!(
        done = summary.done,
        failed = summary.failed,
        variants = summary.variants,
        read_ms = stages.read.as_secs_f64() * 1e3,
        decode_ms = stages.decode.as_secs_f64() * 1e3,
        encode_ms = stages.encode.as_secs_f64() * 1e3,
        write_ms = stages.write.as_secs_f64() * 1e3,
        "pixelate finished"
    );
    Ok(summary)
}

/// The files to pixelate, in the order given (folders sorted by name). A named input
/// that cannot be listed or found counts as a failure right away.
fn collect_inputs(named: &[PathBuf], summary: &mut Summary) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in named {
        if path.is_dir() {
            match image_files_in(path) {
                Ok(found) if found.is_empty() => {
                    summary.failed += 1;
                    eprintln!(
                        "error: {}: no image files in the folder (files are taken by their \
                         image extension; name others one by one)",
                        path.display()
                    );
                }
                Ok(found) => files.extend(found),
                Err(error) => {
                    summary.failed += 1;
                    eprintln!("error: {}: cannot list the folder: {error}", path.display());
                }
            }
        } else {
            files.push(path.clone());
        }
    }
    files
}

fn image_files_in(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with(VARIANT_PREFIX) {
            continue;
        }
        let is_image = name.rsplit_once('.').is_some_and(|(_, extension)| {
            ImageFormat::from_extension(extension).is_some()
                || OTHER_IMAGE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str())
        });
        if is_image && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Pixelates one file and writes its variants; the number written, or why none were.
fn process(
    input: &Path,
    out: &Path,
    options: &PixelateOptions,
    written_by: &mut HashMap<PathBuf, PathBuf>,
    stages: &mut StageTotals,
) -> Result<usize, String> {
    let file_name = input
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| "not a file name".to_owned())?;

    let started = Instant::now();
    let bytes = read_input(input, options.limits.max_input_bytes)?;
    stages.read += started.elapsed();

    let pixelated = codec::pixelate(&bytes, options).map_err(|error| error.to_string())?;
    drop(bytes);
    stages.decode += pixelated.timings.decode;
    stages.encode += pixelated.timings.encode;

    let targets: Vec<PathBuf> = pixelated
        .variants
        .iter()
        .map(|variant| out.join(variant_key(&file_name, variant.shape, variant.format)))
        .collect();
    for target in &targets {
        if let Some(earlier) = written_by.get(target) {
            return Err(format!(
                "its variant {} would overwrite the one made from {}",
                target.display(),
                earlier.display()
            ));
        }
    }

    let started = Instant::now();
    for (index, (variant, target)) in pixelated.variants.iter().zip(&targets).enumerate() {
        if let Err(error) = write_atomically(target, &variant.bytes) {
            // Leave no partial set behind.
            for written in &targets[..index] {
                let _ = std::fs::remove_file(written);
            }
            return Err(format!("cannot write {}: {error}", target.display()));
        }
    }
    stages.write += started.elapsed();
    for target in targets.iter() {
        written_by.insert(target.clone(), input.to_path_buf());
    }
    Ok(targets.len())
}

/// The file's bytes, refusing before reading one that is over the size limit.
fn read_input(input: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(input).map_err(|error| format!("cannot read: {error}"))?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    if metadata.len() > max_bytes {
        return Err(format!(
            "image too large: the file has {} bytes; at most {max_bytes} are allowed",
            metadata.len()
        ));
    }
    std::fs::read(input).map_err(|error| format!("cannot read: {error}"))
}

/// Writes through a temporary file in the same folder, so a reader never sees a
/// half-written variant.
fn write_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temporary = target.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    let result = std::fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| std::fs::rename(&temporary, target));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// The progress line of a large batch: redrawn in place on a terminal, printed
/// every tenth of the way otherwise.
struct Progress {
    total: usize,
    enabled: bool,
    terminal: bool,
    drawn: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            enabled: total >= PROGRESS_FROM,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    fn show(&mut self, index: usize, input: &Path) {
        if !self.enabled {
            return;
        }
        let name = input
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        if self.terminal {
            eprint!("\r\x1b[2K[{}/{}] {name}", index + 1, self.total);
            let _ = std::io::stderr().flush();
            self.drawn = true;
        } else {
            let step = self.total.div_ceil(10);
            if index.is_multiple_of(step) {
                eprintln!("[{}/{}] {name}", index + 1, self.total);
            }
        }
    }

    /// Clears a redrawn line before other output.
    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }
}
