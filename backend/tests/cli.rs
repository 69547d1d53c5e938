//! `pixelator pixelate`, run as a person runs it: the built binary on files in a
//! temporary folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn case(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cases")
        .join(name)
}

fn pixelator(arguments: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pixelator"))
        .args(arguments)
        .output()
        .expect("the pixelator binary runs")
}

fn copy_case(name: &str, folder: &Path) -> PathBuf {
    let target = folder.join(name);
    std::fs::copy(case(name), &target).expect("copy a case file");
    target
}

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("listable")
        .map(|entry| {
            entry
                .expect("listable")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn good_files_are_pixelated_when_others_fail_and_the_status_says_so() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    copy_case("c08-first.png", inputs.path());
    copy_case("c22-octet-stream.png", inputs.path());
    let corrupt = copy_case("c08-third-corrupt.png", inputs.path());
    let heic = copy_case("c20-iphone.heic", inputs.path());
    std::fs::write(
        inputs.path().join("notes.txt"),
        "not an image, and not taken",
    )
    .unwrap();

    let output = pixelator(&[
        "pixelate".as_ref(),
        inputs.path().as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(failures.len(), 2, "{stderr}");
    assert!(
        failures.contains(&format!("error: {}: unsupported format: HEIC", heic.display()).as_str()),
        "{stderr}"
    );
    assert!(
        failures.iter().any(
            |line| line.starts_with(&format!("error: {}: corrupt PNG data", corrupt.display()))
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("notes.txt"), "{stderr}");

    let mut expected: Vec<String> = ["c08-first.png", "c22-octet-stream.png"]
        .iter()
        .flat_map(|name| {
            pixelator_shared::DEFAULT_GRID_SIZES
                .iter()
                .map(move |n| format!("pixelated-{n}x{n}-{name}"))
        })
        .collect();
    expected.sort();
    assert_eq!(names_in(out.path()), expected);
    for name in &expected {
        let bytes = std::fs::read(out.path().join(name)).unwrap();
        let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(image.width() == 64 || image.width() == 96, "{name}");
    }
}

#[test]
fn sizes_and_mode_choose_the_grids_and_the_names() {
    let out = tempfile::tempdir().unwrap();
    let output = pixelator(&[
        "pixelate".as_ref(),
        case("c22-octet-stream.png").as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
        "--sizes".as_ref(),
        "8,16".as_ref(),
        "--mode".as_ref(),
        "square".as_ref(),
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        names_in(out.path()),
        [
            "pixelated-16x11-c22-octet-stream.png",
            "pixelated-8x5-c22-octet-stream.png"
        ]
    );
}

#[test]
fn a_variant_name_follows_the_format_of_its_bytes() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // A PNG saved under a JPEG name, named explicitly.
    let misnamed = inputs.path().join("holiday.jpg");
    std::fs::copy(case("c08-first.png"), &misnamed).unwrap();
    let output = pixelator(&[
        "pixelate".as_ref(),
        misnamed.as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
        "--sizes".as_ref(),
        "8".as_ref(),
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(names_in(out.path()), ["pixelated-8x8-holiday.jpg.png"]);
}

#[test]
fn a_folder_without_image_files_is_a_failure_not_silence() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(inputs.path().join("notes.txt"), "no pictures here").unwrap();
    std::fs::create_dir(inputs.path().join("nested")).unwrap();
    let output = pixelator(&[
        "pixelate".as_ref(),
        inputs.path().as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with(&format!(
            "error: {}: no image files in the folder",
            inputs.path().display()
        )),
        "{stderr}"
    );
    assert!(names_in(out.path()).is_empty());
}

#[test]
fn missing_and_non_image_files_get_one_line_each() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let text = inputs.path().join("readme.md");
    std::fs::write(&text, "# hello").unwrap();
    let missing = inputs.path().join("gone.jpg");
    let empty = inputs.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let output = pixelator(&[
        "pixelate".as_ref(),
        text.as_os_str(),
        missing.as_os_str(),
        empty.as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "error: {}: not an image: the content is text",
                text.display()
            ),
            format!(
                "error: {}: cannot read: No such file or directory (os error 2)",
                missing.display()
            ),
            format!(
                "error: {}: empty file: there are no bytes to decode",
                empty.display()
            ),
            "3 of 3 inputs failed".to_owned(),
        ]
    );
    assert!(names_in(out.path()).is_empty());
}

#[test]
fn two_inputs_with_the_same_name_never_overwrite_each_other() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::copy(case("c08-first.png"), first.path().join("photo.png")).unwrap();
    std::fs::copy(
        case("c22-octet-stream.png"),
        second.path().join("photo.png"),
    )
    .unwrap();
    let output = pixelator(&[
        "pixelate".as_ref(),
        first.path().join("photo.png").as_os_str(),
        second.path().join("photo.png").as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
        "--sizes".as_ref(),
        "8".as_ref(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("would overwrite"),
        "{}",
        stderr_of(&output)
    );
    // The first input's variant is the one kept.
    let kept = std::fs::read(out.path().join("pixelated-8x8-photo.png")).unwrap();
    let image = image::load_from_memory(&kept).unwrap();
    assert_eq!(image.width(), 64);
}

#[test]
fn a_large_batch_shows_progress_on_stderr() {
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for index in 0..12 {
        std::fs::copy(
            case("c08-first.png"),
            inputs.path().join(format!("photo-{index:02}.png")),
        )
        .unwrap();
    }
    let output = pixelator(&[
        "pixelate".as_ref(),
        inputs.path().as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
        "--sizes".as_ref(),
        "8".as_ref(),
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("[1/12] photo-00.png"), "{stderr}");
    assert!(
        stderr.contains("[12/12] photo-11.png") || stderr.contains("[11/12]"),
        "{stderr}"
    );
    assert_eq!(names_in(out.path()).len(), 12);
}

#[test]
fn a_command_line_mistake_is_a_usage_error() {
    let output = pixelator(&["pixelate".as_ref(), case("c08-first.png").as_os_str()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("--out"));
    let out = tempfile::tempdir().unwrap();
    let output = pixelator(&[
        "pixelate".as_ref(),
        case("c08-first.png").as_os_str(),
        "--out".as_ref(),
        out.path().as_os_str(),
        "--mode".as_ref(),
        "round".as_ref(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("unknown grid mode"),
        "{}",
        stderr_of(&output)
    );
}
