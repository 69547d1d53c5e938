//! The real-world failure cases, each pinned at the codec: the inputs are copies of
//! the case files under `tests/data/cases`, and the expectations are the probe values
//! the case log gives (±12 per channel unless it says otherwise).

use std::path::PathBuf;

use image::{GenericImageView, ImageDecoder, RgbaImage};
use pixelator::codec::{self, CodecError, EncodedVariant, PixelateOptions, Pixelated};
use pixelator_shared::layout::variant_key;
use pixelator_shared::wire::ImageFormat;
use pixelator_shared::{GridShape, Orientation};

const TOLERANCE: i32 = 12;

fn case_bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cases")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn pixelate_case(name: &str) -> Pixelated {
    codec::pixelate(&case_bytes(name), &PixelateOptions::default())
        .unwrap_or_else(|error| panic!("{name} was refused: {error}"))
}

fn refuse_case(name: &str) -> CodecError {
    match codec::pixelate(&case_bytes(name), &PixelateOptions::default()) {
        Ok(_) => panic!("{name} was pixelated but must be refused"),
        Err(error) => error,
    }
}

/// Decodes a variant back to pixels with `image`, from its bytes alone.
fn pixels_of(variant: &EncodedVariant) -> RgbaImage {
    image::load_from_memory(&variant.bytes)
        .unwrap_or_else(|error| panic!("variant {} does not decode: {error}", variant.size))
        .to_rgba8()
}

fn variant(pixelated: &Pixelated, size: u32) -> &EncodedVariant {
    pixelated
        .variants
        .iter()
        .find(|variant| variant.size == size)
        .unwrap_or_else(|| panic!("no variant of size {size}"))
}

/// Asserts that pixel (x, y) is `expected` (RGB, or RGBA when four values are given)
/// within `tolerance` per channel.
fn assert_probe(image: &RgbaImage, x: u32, y: u32, expected: &[u8], tolerance: i32, what: &str) {
    let pixel = image.get_pixel(x, y).0;
    let close = expected
        .iter()
        .zip(pixel)
        .all(|(&want, got)| (want as i32 - got as i32).abs() <= tolerance);
    assert!(
        close,
        "{what}: pixel ({x},{y}) is {pixel:?}, expected {expected:?} ±{tolerance}"
    );
}

/// What holds for every variant of every image: one per default size, in order; the
/// source's upright size; bytes in the format they claim, so the name and
/// Content-Type derived from the format are right; no EXIF orientation to re-apply.
fn assert_well_formed(pixelated: &Pixelated, format: ImageFormat, width: u32, height: u32) {
    assert_eq!(pixelated.source.format, format);
    assert_eq!(
        (pixelated.source.width, pixelated.source.height),
        (width, height)
    );
    let sizes: Vec<u32> = pixelated
        .variants
        .iter()
        .map(|variant| variant.size)
        .collect();
    assert_eq!(sizes, pixelator_shared::DEFAULT_GRID_SIZES);
    for variant in &pixelated.variants {
        assert_eq!(variant.format, format, "variant {}", variant.size);
        assert_eq!(variant.shape, GridShape::new(variant.size, variant.size));
        assert_eq!(codec::sniff::sniff(&variant.bytes), Ok(variant.format));
        let key = variant_key("uploads/photo.bin", variant.shape, variant.format);
        assert_eq!(
            key,
            format!("uploads/pixelated-{0}x{0}-photo.bin", variant.size)
        );
        for claimed in ["heic", "gif", "png", "jpg"] {
            let key = variant_key(&format!("a/photo.{claimed}"), variant.shape, variant.format);
            let extension = key.rsplit_once('.').map(|(_, extension)| extension);
            assert_eq!(
                extension.and_then(ImageFormat::from_extension),
                Some(variant.format),
                "{key}"
            );
        }

        let image = image::load_from_memory(&variant.bytes).expect("variant decodes");
        assert_eq!(
            image.dimensions(),
            (width, height),
            "variant {}",
            variant.size
        );
        assert_eq!(
            codec::metadata::orientation(variant.format, &variant.bytes),
            Orientation::Normal
        );
        let mut decoder = image::ImageReader::new(std::io::Cursor::new(&variant.bytes))
            .with_guessed_format()
            .expect("in memory")
            .into_decoder()
            .expect("variant decodes");
        assert_eq!(decoder.exif_metadata().expect("readable"), None);
    }
}

#[test]
fn c10_exif_orientation_6_is_applied_before_pixelating() {
    let pixelated = pixelate_case("c10-exif-orientation-6.jpg");
    assert_eq!(pixelated.source.orientation, Orientation::Rotate90);
    assert_well_formed(&pixelated, ImageFormat::Jpeg, 64, 96);
    for variant in &pixelated.variants {
        let image = pixels_of(variant);
        let what = format!("{}x{}", variant.size, variant.size);
        assert_probe(&image, 40, 18, &[255, 0, 0], TOLERANCE, &what);
        assert_probe(&image, 32, 48, &[0, 255, 0], TOLERANCE, &what);
        assert_probe(&image, 32, 84, &[0, 0, 255], TOLERANCE, &what);
        if variant.size >= 16 {
            assert_probe(&image, 4, 4, &[255, 255, 255], TOLERANCE, &what);
        }
    }
}

#[test]
fn c11_cmyk_and_ycck_jpegs_decode_to_the_same_rgb_picture() {
    for name in ["c11-cmyk-adobe.jpg", "c11-ycck.jpg"] {
        let pixelated = pixelate_case(name);
        assert_well_formed(&pixelated, ImageFormat::Jpeg, 96, 64);
        for variant in &pixelated.variants {
            let image = pixels_of(variant);
            let what = format!("{name} {}", variant.size);
            assert_probe(&image, 18, 12, &[255, 0, 0], TOLERANCE, &what);
            assert_probe(&image, 78, 12, &[255, 255, 255], TOLERANCE, &what);
            assert_probe(&image, 78, 60, &[0, 0, 0], TOLERANCE, &what);
        }
    }
    let options = PixelateOptions::default();
    let (_, cmyk) = codec::upright_grids(&case_bytes("c11-cmyk-adobe.jpg"), &options).unwrap();
    let (_, ycck) = codec::upright_grids(&case_bytes("c11-ycck.jpg"), &options).unwrap();
    for (a, b) in cmyk.iter().zip(&ycck) {
        for (x, y) in a.cells().iter().zip(b.cells()) {
            for channel in 0..3 {
                assert!((x[channel] as i32 - y[channel] as i32).abs() <= TOLERANCE);
            }
        }
    }
}

#[test]
fn c12_sixteen_bit_png_looks_like_its_eight_bit_copy() {
    let pixelated = pixelate_case("c12-rgb16.png");
    assert_well_formed(&pixelated, ImageFormat::Png, 128, 96);
    let image = pixels_of(variant(&pixelated, 64));
    assert_probe(&image, 4, 4, &[9, 8, 18], TOLERANCE, "64x64");
    assert_probe(&image, 124, 4, &[250, 8, 250], TOLERANCE, "64x64");
    assert_probe(&image, 4, 92, &[9, 247, 9], TOLERANCE, "64x64");
    assert_probe(&image, 124, 92, &[250, 247, 18], TOLERANCE, "64x64");
    // No noise or stripes: neighbouring blocks of the red ramp rise steadily.
    for x in (2..128).step_by(2).skip(1) {
        let left = image.get_pixel(x - 2, 50).0[0] as i32;
        let right = image.get_pixel(x, 50).0[0] as i32;
        assert!(
            (0..=8).contains(&(right - left)),
            "red ramp breaks at x = {x}"
        );
    }
}

#[test]
fn c13_palette_transparency_is_kept_and_never_shows_magenta() {
    let pixelated = pixelate_case("c13-palette-trns.png");
    assert!(pixelated.source.has_alpha);
    assert_well_formed(&pixelated, ImageFormat::Png, 64, 64);
    for variant in &pixelated.variants {
        let image = pixels_of(variant);
        let what = format!("{}x{}", variant.size, variant.size);
        assert_eq!(
            image.get_pixel(4, 4).0[3],
            0,
            "{what}: left half is transparent"
        );
        assert_probe(&image, 60, 4, &[0, 0, 255, 255], TOLERANCE, &what);
        assert_probe(&image, 60, 60, &[255, 255, 0, 128], TOLERANCE, &what);
        for pixel in image.pixels().filter(|pixel| pixel.0[3] > 0) {
            let [red, green, blue, _] = pixel.0;
            let magenta = red > 64 && blue > 64 && green < red / 2;
            assert!(!magenta, "{what}: magenta fringe {:?}", pixel.0);
        }
    }
    let image = pixels_of(variant(&pixelated, 8));
    let boundary = image.get_pixel(36, 12).0;
    assert!(boundary[0] <= 16, "8x8 (36,12) red {boundary:?}");
    assert_probe(&image, 36, 12, &[0, 0, 255, 223], TOLERANCE, "8x8");
    assert_probe(&image, 44, 12, &[0, 0, 255, 255], 0, "8x8");
}

#[test]
fn c15_animated_gif_gives_static_variants_of_its_first_frame() {
    let pixelated = pixelate_case("c15-animated.gif");
    assert_well_formed(&pixelated, ImageFormat::Gif, 64, 48);
    for variant in &pixelated.variants {
        let image = pixels_of(variant);
        let what = format!("{}x{}", variant.size, variant.size);
        assert_probe(&image, 4, 4, &[255, 0, 0], TOLERANCE, &what);
        assert_probe(&image, 60, 44, &[255, 0, 0], TOLERANCE, &what);
        // The first frame is red and white only: nothing green or blue from later ones.
        for pixel in image.pixels() {
            let [red, green, blue, _] = pixel.0;
            assert!(
                red >= 200 && green.abs_diff(blue) <= 24,
                "{what}: {:?}",
                pixel.0
            );
        }
        let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&variant.bytes))
            .expect("a GIF");
        let frames = image::AnimationDecoder::into_frames(decoder).count();
        assert_eq!(frames, 1, "{what}: a static image");
    }
    let image = pixels_of(variant(&pixelated, 64));
    assert_probe(&image, 32, 24, &[255, 255, 255], TOLERANCE, "64x64");
}

#[test]
fn c17_truncated_jpeg_is_refused_not_published_half_grey() {
    let error = refuse_case("c17-truncated.jpg");
    assert_eq!(error.code(), "truncated", "{error}");
    assert!(
        error.to_string().starts_with("truncated JPEG file"),
        "{error}"
    );
}

#[test]
fn c18_decompression_bomb_is_refused_from_its_header() {
    let error = refuse_case("c18-bomb-100000x100000.png");
    assert_eq!(error.code(), "too_large");
    assert!(error.to_string().contains("100000x100000"), "{error}");
}

#[test]
fn c18_with_the_limits_lifted_the_rows_stream_and_the_missing_data_is_found() {
    // Nothing of the declared 40 GB is ever allocated: rows stream into the grids, and
    // the two rows of data run out long before the image does.
    let options = PixelateOptions {
        limits: codec::Limits {
            max_pixels: u64::MAX,
            max_dimension: u32::MAX,
            max_input_bytes: u64::MAX,
        },
        ..PixelateOptions::default()
    };
    let error = codec::pixelate(&case_bytes("c18-bomb-100000x100000.png"), &options)
        .expect_err("two rows of data are not an image");
    assert!(["truncated", "corrupt"].contains(&error.code()), "{error}");
}

#[test]
fn c20_heic_is_refused_by_name() {
    let error = refuse_case("c20-iphone.heic");
    assert_eq!(error.to_string(), "unsupported format: HEIC");
    assert_eq!(error.code(), "unsupported_format");
}

#[test]
fn c22_format_comes_from_the_content_and_variants_are_png() {
    let pixelated = pixelate_case("c22-octet-stream.png");
    assert_well_formed(&pixelated, ImageFormat::Png, 96, 64);
    for variant in &pixelated.variants {
        assert_eq!(variant.format.mime_type(), "image/png");
        let image = pixels_of(variant);
        let what = format!("{}x{}", variant.size, variant.size);
        assert_probe(&image, 6, 4, &[0, 255, 0], TOLERANCE, &what);
        assert_probe(&image, 90, 4, &[255, 0, 0], TOLERANCE, &what);
    }
}

#[test]
fn c07_gradient_jpeg_probes_match_in_the_finest_variant() {
    let pixelated = pixelate_case("c07-multipart.jpg");
    assert_well_formed(&pixelated, ImageFormat::Jpeg, 160, 120);
    let image = pixels_of(variant(&pixelated, 64));
    assert_probe(&image, 10, 7, &[18, 128, 14], TOLERANCE, "64x64");
    assert_probe(&image, 150, 112, &[241, 128, 239], TOLERANCE, "64x64");
}

#[test]
fn c08_good_files_pixelate_and_the_damaged_png_is_corrupt() {
    let first = pixelate_case("c08-first.png");
    assert_well_formed(&first, ImageFormat::Png, 64, 64);
    for variant in &first.variants {
        assert_probe(
            &pixels_of(variant),
            4,
            4,
            &[0, 0, 255],
            TOLERANCE,
            "first.png",
        );
    }
    let second = pixelate_case("c08-second.jpg");
    assert_well_formed(&second, ImageFormat::Jpeg, 64, 48);
    for variant in &second.variants {
        let image = pixels_of(variant);
        assert_probe(&image, 4, 3, &[0, 255, 0], TOLERANCE, "second.jpg");
        assert_probe(&image, 60, 3, &[0, 0, 0], TOLERANCE, "second.jpg");
    }
    let error = refuse_case("c08-third-corrupt.png");
    assert_eq!(error.code(), "corrupt", "{error}");
}
