//! Every input format and variety the codec promises, round trip: pictures are made
//! here with the encoders of `image`, `png` and `tiff` (or taken from the small
//! files under `tests/data/formats`, made with libjpeg-turbo, libwebp and optipng),
//! pixelated, and the variants decoded again and compared with grids computed
//! directly from the known pixels.

use std::io::Cursor;
use std::path::PathBuf;

use image::{ExtendedColorType, ImageEncoder, RgbaImage};
use pixelator::codec::{self, CodecError, Limits, PixelateOptions, Pixelated};
use pixelator_shared::grid::grids_of;
use pixelator_shared::wire::ImageFormat;
use pixelator_shared::{Grid, GridMode, GridShape, Orientation, PixelLayout};

const WIDTH: u32 = 97;
const HEIGHT: u32 = 61;

fn data(folder: &str, name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(folder)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A test picture: three colour ramps, a fully transparent left band, a
/// half-transparent right band and an opaque middle.
fn picture() -> RgbaImage {
    RgbaImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let alpha = match x {
            0..20 => 0,
            80.. => 128,
            _ => 255,
        };
        image::Rgba([
            (x * 255 / (WIDTH - 1)) as u8,
            (y * 255 / (HEIGHT - 1)) as u8,
            ((x + 2 * y) * 255 / (WIDTH - 1 + 2 * (HEIGHT - 1))) as u8,
            alpha,
        ])
    })
}

fn opaque_picture() -> RgbaImage {
    let mut picture = picture();
    picture.pixels_mut().for_each(|pixel| pixel.0[3] = 255);
    picture
}

fn encode_with(
    format: image::ImageFormat,
    picture: &RgbaImage,
    color: ExtendedColorType,
) -> Vec<u8> {
    let samples: Vec<u8> = match color {
        ExtendedColorType::Rgba8 => picture.as_raw().clone(),
        ExtendedColorType::Rgb8 => picture
            .pixels()
            .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
            .collect(),
        ExtendedColorType::L8 => picture.pixels().map(|p| p.0[1]).collect(),
        ExtendedColorType::La8 => picture.pixels().flat_map(|p| [p.0[1], p.0[3]]).collect(),
        other => panic!("no test encoding for {other:?}"),
    };
    let mut out = Cursor::new(Vec::new());
    match format {
        image::ImageFormat::Png => image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&samples, WIDTH, HEIGHT, color),
        image::ImageFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
                .write_image(&samples, WIDTH, HEIGHT, color)
        }
        image::ImageFormat::Bmp => image::codecs::bmp::BmpEncoder::new(&mut out)
            .write_image(&samples, WIDTH, HEIGHT, color),
        image::ImageFormat::Tiff => image::codecs::tiff::TiffEncoder::new(&mut out)
            .write_image(&samples, WIDTH, HEIGHT, color),
        image::ImageFormat::WebP => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(&samples, WIDTH, HEIGHT, color),
        image::ImageFormat::Gif => image::codecs::gif::GifEncoder::new(&mut out)
            .write_image(&samples, WIDTH, HEIGHT, color),
        other => panic!("no test encoder for {other:?}"),
    }
    .expect("the test picture encodes");
    out.into_inner()
}

/// The grids of the known pixels, computed directly.
fn expected_grids(picture: &RgbaImage, layout: PixelLayout, sizes: &[u32]) -> Vec<Grid> {
    let samples: Vec<u8> = match layout {
        PixelLayout::Rgba => picture.as_raw().clone(),
        PixelLayout::Rgb => picture
            .pixels()
            .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
            .collect(),
        PixelLayout::Gray => picture.pixels().map(|p| p.0[1]).collect(),
        PixelLayout::GrayAlpha => picture.pixels().flat_map(|p| [p.0[1], p.0[3]]).collect(),
    };
    let (width, height) = picture.dimensions();
    let shapes: Vec<GridShape> = sizes.iter().map(|&n| GridShape::new(n, n)).collect();
    grids_of(&samples, width, height, layout, &shapes).expect("valid test picture")
}

/// Checks the centre of every block of every variant against the expected grids.
/// Fully transparent cells only need to stay transparent.
fn assert_variants_show(pixelated: &Pixelated, expected: &[Grid], tolerance: i32, what: &str) {
    let (width, height) = (pixelated.source.width, pixelated.source.height);
    for (variant, grid) in pixelated.variants.iter().zip(expected) {
        assert_eq!(variant.shape, grid.shape(), "{what}");
        let image = image::load_from_memory(&variant.bytes)
            .unwrap_or_else(|error| panic!("{what}: variant does not decode: {error}"))
            .to_rgba8();
        assert_eq!(image.dimensions(), (width, height), "{what}");
        let columns = pixelator_shared::BlockMap::new(width, grid.shape().columns);
        let rows = pixelator_shared::BlockMap::new(height, grid.shape().rows);
        for row in 0..grid.shape().rows {
            for column in 0..grid.shape().columns {
                let (Some(x), Some(y)) = (columns.center(column), rows.center(row)) else {
                    continue;
                };
                let want = grid.cell(column, row);
                let got = image.get_pixel(x, y).0;
                let channels = if want[3] == 0 { 3..4 } else { 0..4 };
                for channel in channels {
                    let difference = (want[channel] as i32 - got[channel] as i32).abs();
                    assert!(
                        difference <= tolerance,
                        "{what} {}: cell ({column},{row}) is {got:?}, expected {want:?}",
                        variant.shape
                    );
                }
            }
        }
    }
}

fn sizes() -> Vec<u32> {
    pixelator_shared::DEFAULT_GRID_SIZES.to_vec()
}

#[test]
fn lossless_formats_with_alpha_show_the_exact_grids_with_alpha() {
    let picture = picture();
    let expected = expected_grids(&picture, PixelLayout::Rgba, &sizes());
    for (format, ours) in [
        (image::ImageFormat::Png, ImageFormat::Png),
        (image::ImageFormat::WebP, ImageFormat::Webp),
        (image::ImageFormat::Tiff, ImageFormat::Tiff),
        (image::ImageFormat::Bmp, ImageFormat::Bmp),
    ] {
        let bytes = encode_with(format, &picture, ExtendedColorType::Rgba8);
        let pixelated = codec::pixelate(&bytes, &PixelateOptions::default())
            .unwrap_or_else(|error| panic!("{format:?}: {error}"));
        assert_eq!(pixelated.source.format, ours);
        assert!(pixelated.source.has_alpha, "{format:?}");
        assert!(
            pixelated
                .variants
                .iter()
                .all(|variant| variant.format == ours)
        );
        // Un-premultiplying in 8 bits loses a level or two where alpha is 128.
        assert_variants_show(&pixelated, &expected, 2, &format!("{format:?}"));
    }
}

#[test]
fn opaque_and_gray_inputs_round_trip_in_their_format() {
    let picture = opaque_picture();
    let rgb = expected_grids(&picture, PixelLayout::Rgb, &sizes());
    let gray = expected_grids(&picture, PixelLayout::Gray, &sizes());
    for (format, color, expected, tolerance) in [
        (image::ImageFormat::Png, ExtendedColorType::Rgb8, &rgb, 0),
        (image::ImageFormat::Png, ExtendedColorType::L8, &gray, 0),
        (image::ImageFormat::Tiff, ExtendedColorType::Rgb8, &rgb, 0),
        (image::ImageFormat::Tiff, ExtendedColorType::L8, &gray, 0),
        (image::ImageFormat::Bmp, ExtendedColorType::Rgb8, &rgb, 0),
        (image::ImageFormat::WebP, ExtendedColorType::Rgb8, &rgb, 0),
        // Two JPEG generations, the input's and the variant's. On a picture this
        // small every block centre is within a few pixels of a block edge, and the
        // variant's JPEG rings near edges that cross its 8x8 transform blocks.
        (image::ImageFormat::Jpeg, ExtendedColorType::Rgb8, &rgb, 10),
        (image::ImageFormat::Jpeg, ExtendedColorType::L8, &gray, 4),
    ] {
        let what = format!("{format:?} {color:?}");
        let bytes = encode_with(format, &picture, color);
        let pixelated = codec::pixelate(&bytes, &PixelateOptions::default())
            .unwrap_or_else(|error| panic!("{what}: {error}"));
        assert!(!pixelated.source.has_alpha, "{what}");
        assert_variants_show(&pixelated, expected, tolerance, &what);
    }
}

#[test]
fn an_opaque_rgba_png_is_written_without_alpha() {
    let bytes = encode_with(
        image::ImageFormat::Png,
        &opaque_picture(),
        ExtendedColorType::Rgba8,
    );
    let pixelated = codec::pixelate(&bytes, &PixelateOptions::default()).unwrap();
    assert!(!pixelated.source.has_alpha);
    let variant = image::load_from_memory(&pixelated.variants[0].bytes).unwrap();
    assert_eq!(variant.color(), image::ColorType::Rgb8);
}

#[test]
fn gray_with_alpha_png_keeps_its_transparency() {
    let picture = picture();
    let bytes = encode_with(image::ImageFormat::Png, &picture, ExtendedColorType::La8);
    let pixelated = codec::pixelate(&bytes, &PixelateOptions::default()).unwrap();
    assert!(pixelated.source.has_alpha);
    let expected = expected_grids(&picture, PixelLayout::GrayAlpha, &sizes());
    assert_variants_show(&pixelated, &expected, 2, "gray+alpha PNG");
}

#[test]
fn sixteen_bit_png_rounds_to_the_nearest_eight_bit_level() {
    // Every sample is v * 257 + 100: rounding gives v back, keeping the high byte
    // gives v too, but noise in the low byte must never show.
    let picture = picture();
    let samples: Vec<u8> = picture
        .as_raw()
        .iter()
        .flat_map(|&v| {
            (v as u16 * 257)
                .saturating_add(if v < 255 { 100 } else { 0 })
                .to_be_bytes()
        })
        .collect();
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Sixteen);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&samples).unwrap();
    }
    let pixelated = codec::pixelate(&bytes, &PixelateOptions::default()).unwrap();
    let expected = expected_grids(&picture, PixelLayout::Rgba, &sizes());
    assert_variants_show(&pixelated, &expected, 2, "16-bit RGBA PNG");
}

#[test]
fn interlaced_pngs_decode_like_their_plain_originals() {
    let options = PixelateOptions::default();
    for (interlaced, plain) in [
        ("interlaced-palette-trns.png", "c13-palette-trns.png"),
        ("interlaced-rgb16.png", "c12-rgb16.png"),
    ] {
        let (_, ours) = codec::upright_grids(&data("formats", interlaced), &options).unwrap();
        let (_, theirs) = codec::upright_grids(&data("cases", plain), &options).unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            for (x, y) in a.cells().iter().zip(b.cells()) {
                assert!(
                    x.iter().zip(y).all(|(p, q)| p.abs_diff(*q) <= 1),
                    "{interlaced}: {x:?} vs {y:?}"
                );
            }
        }
    }
}

/// The largest difference per channel between two sets of grids.
fn largest_difference(ours: &[Grid], theirs: &[Grid]) -> u8 {
    ours.iter()
        .zip(theirs)
        .flat_map(|(a, b)| a.cells().iter().zip(b.cells()))
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| p.abs_diff(*q)))
        .max()
        .unwrap_or(0)
}

#[test]
fn progressive_and_restart_marker_jpegs_decode_like_baseline() {
    let options = PixelateOptions::default();
    let (_, baseline) =
        codec::upright_grids(&data("cases", "c07-multipart.jpg"), &options).unwrap();
    // A lossless transcode to progressive: the same coefficients, the same picture.
    let (_, progressive) =
        codec::upright_grids(&data("formats", "progressive.jpg"), &options).unwrap();
    assert!(largest_difference(&progressive, &baseline) <= 1);
    // Re-encoded with a restart marker after every MCU row: close, not equal.
    let (_, restarts) =
        codec::upright_grids(&data("formats", "restart-markers.jpg"), &options).unwrap();
    assert!(largest_difference(&restarts, &baseline) <= 6);
}

#[test]
fn a_gray_jpeg_gives_gray_jpeg_variants() {
    let pixelated =
        codec::pixelate(&data("formats", "gray.jpg"), &PixelateOptions::default()).unwrap();
    for variant in &pixelated.variants {
        let image = image::load_from_memory(&variant.bytes).unwrap();
        assert_eq!(image.color(), image::ColorType::L8);
    }
}

#[test]
fn bytes_after_the_jpeg_end_marker_are_ignored() {
    let mut bytes = data("cases", "c07-multipart.jpg");
    bytes.extend_from_slice(b"\xFF\xD8 a phone's trailer data, even one that looks like a JPEG");
    codec::pixelate(&bytes, &PixelateOptions::default()).expect("complete image data");
}

#[test]
fn orientation_is_read_from_webp_png_and_tiff() {
    let options = PixelateOptions::default();
    let webp =
        codec::pixelate(&data("formats", "lossy-exif-orientation-6.webp"), &options).unwrap();
    assert_eq!(webp.source.orientation, Orientation::Rotate90);
    assert_eq!((webp.source.width, webp.source.height), (64, 96));
    let image = image::load_from_memory(&webp.variants[2].bytes)
        .unwrap()
        .to_rgba8();
    for (x, y, colour) in [
        (40, 18, [255u8, 0, 0]),
        (32, 48, [0, 255, 0]),
        (32, 84, [0, 0, 255]),
    ] {
        let pixel = image.get_pixel(x, y).0;
        assert!(
            colour
                .iter()
                .zip(pixel)
                .all(|(&want, got)| want.abs_diff(got) <= 24),
            "({x},{y}) is {pixel:?}"
        );
    }

    // EXIF orientation 8 in a PNG eXIf chunk.
    let picture = opaque_picture();
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgba);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif_orientation(8))
            .unwrap();
        writer.write_image_data(picture.as_raw()).unwrap();
    }
    let pixelated = codec::pixelate(&png, &options).unwrap();
    assert_eq!(pixelated.source.orientation, Orientation::Rotate270);
    assert_eq!(
        (pixelated.source.width, pixelated.source.height),
        (HEIGHT, WIDTH)
    );
    let stored = expected_grids(&picture, PixelLayout::Rgba, &sizes());
    let upright: Vec<Grid> = stored
        .iter()
        .map(|grid| Orientation::Rotate270.apply(grid))
        .collect();
    assert_variants_show(&pixelated, &upright, 0, "PNG with orientation 8");

    // Orientation 3 as a tag of the TIFF itself.
    let mut tiff = Cursor::new(Vec::new());
    {
        let mut encoder = tiff::encoder::TiffEncoder::new(&mut tiff).unwrap();
        let mut image = encoder
            .new_image::<tiff::encoder::colortype::RGBA8>(WIDTH, HEIGHT)
            .unwrap();
        image
            .encoder()
            .write_tag(tiff::tags::Tag::Orientation, 3u16)
            .unwrap();
        image.write_data(picture.as_raw()).unwrap();
    }
    let pixelated = codec::pixelate(tiff.get_ref(), &options).unwrap();
    assert_eq!(pixelated.source.orientation, Orientation::Rotate180);
    let upright: Vec<Grid> = stored
        .iter()
        .map(|grid| Orientation::Rotate180.apply(grid))
        .collect();
    assert_variants_show(&pixelated, &upright, 0, "TIFF with orientation 3");
}

/// A big-endian EXIF structure holding only an orientation.
fn exif_orientation(value: u16) -> Vec<u8> {
    let mut exif = b"MM\0*".to_vec();
    exif.extend_from_slice(&8u32.to_be_bytes());
    exif.extend_from_slice(&1u16.to_be_bytes());
    exif.extend_from_slice(&0x0112u16.to_be_bytes());
    exif.extend_from_slice(&3u16.to_be_bytes());
    exif.extend_from_slice(&1u32.to_be_bytes());
    exif.extend_from_slice(&value.to_be_bytes());
    exif.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    exif
}

#[test]
fn gif_variants_keep_one_bit_transparency_and_the_exact_grid_colours() {
    let picture = picture();
    let bytes = encode_with(image::ImageFormat::Gif, &picture, ExtendedColorType::Rgba8);
    let options = PixelateOptions {
        sizes: vec![8, 12],
        ..PixelateOptions::default()
    };
    let (_, grids) = codec::upright_grids(&bytes, &options).unwrap();
    let pixelated = codec::pixelate(&bytes, &options).unwrap();
    assert!(pixelated.source.has_alpha);
    for (variant, grid) in pixelated.variants.iter().zip(&grids) {
        // At most 144 colours: the palette is exact, a visible cell is shown as it
        // is (opaque), a mostly transparent one is not shown.
        let image = image::load_from_memory(&variant.bytes).unwrap().to_rgba8();
        let columns = pixelator_shared::BlockMap::new(WIDTH, grid.shape().columns);
        let rows = pixelator_shared::BlockMap::new(HEIGHT, grid.shape().rows);
        for row in 0..grid.shape().rows {
            for column in 0..grid.shape().columns {
                let cell = grid.cell(column, row);
                let (x, y) = (columns.center(column).unwrap(), rows.center(row).unwrap());
                let shown = image.get_pixel(x, y).0;
                if cell[3] < 128 {
                    assert_eq!(shown[3], 0, "cell ({column},{row}) {cell:?}");
                } else {
                    assert_eq!(shown, [cell[0], cell[1], cell[2], 255]);
                }
            }
        }
    }
}

#[test]
fn truncated_files_of_every_format_are_refused() {
    let picture = picture();
    let mut files = vec![
        (
            "PNG".to_owned(),
            encode_with(image::ImageFormat::Png, &picture, ExtendedColorType::Rgba8),
        ),
        (
            "JPEG".to_owned(),
            encode_with(image::ImageFormat::Jpeg, &picture, ExtendedColorType::Rgb8),
        ),
        (
            "GIF".to_owned(),
            encode_with(image::ImageFormat::Gif, &picture, ExtendedColorType::Rgba8),
        ),
        (
            "WebP lossless".to_owned(),
            encode_with(image::ImageFormat::WebP, &picture, ExtendedColorType::Rgba8),
        ),
        (
            "BMP".to_owned(),
            encode_with(image::ImageFormat::Bmp, &picture, ExtendedColorType::Rgba8),
        ),
        (
            "TIFF".to_owned(),
            encode_with(image::ImageFormat::Tiff, &picture, ExtendedColorType::Rgba8),
        ),
    ];
    for name in [
        "progressive.jpg",
        "lossy-exif-orientation-6.webp",
        "interlaced-rgb16.png",
    ] {
        files.push((name.to_owned(), data("formats", name)));
    }
    for (what, bytes) in files {
        codec::pixelate(&bytes, &PixelateOptions::default())
            .unwrap_or_else(|error| panic!("{what} whole: {error}"));
        for percent in [20, 50, 80, 95] {
            let cut = bytes.len() * percent / 100;
            match codec::pixelate(&bytes[..cut], &PixelateOptions::default()) {
                Ok(_) => panic!(
                    "{what} cut at {percent}% ({cut} of {} bytes) was accepted",
                    bytes.len()
                ),
                Err(error) => assert!(
                    ["truncated", "corrupt"].contains(&error.code()),
                    "{what} cut at {percent}%: {error}"
                ),
            }
        }
    }
}

#[test]
fn inputs_over_the_limits_are_refused_before_decoding() {
    let bytes = encode_with(
        image::ImageFormat::Png,
        &picture(),
        ExtendedColorType::Rgba8,
    );
    let tight = |limits: Limits| PixelateOptions {
        limits,
        ..PixelateOptions::default()
    };
    let defaults = Limits::default();
    let error = codec::pixelate(
        &bytes,
        &tight(Limits {
            max_pixels: 5000,
            ..defaults
        }),
    )
    .unwrap_err();
    assert_eq!(error.code(), "too_large");
    assert!(error.to_string().contains("97x61"), "{error}");
    let error = codec::pixelate(
        &bytes,
        &tight(Limits {
            max_dimension: 96,
            ..defaults
        }),
    )
    .unwrap_err();
    assert_eq!(error.code(), "too_large");
    let error = codec::pixelate(
        &bytes,
        &tight(Limits {
            max_input_bytes: 100,
            ..defaults
        }),
    )
    .unwrap_err();
    assert_eq!(error.code(), "too_large");
    for format in [
        image::ImageFormat::Jpeg,
        image::ImageFormat::Gif,
        image::ImageFormat::WebP,
        image::ImageFormat::Bmp,
        image::ImageFormat::Tiff,
    ] {
        let color = match format {
            image::ImageFormat::Jpeg => ExtendedColorType::Rgb8,
            _ => ExtendedColorType::Rgba8,
        };
        let bytes = encode_with(format, &opaque_picture(), color);
        let error = codec::pixelate(
            &bytes,
            &tight(Limits {
                max_pixels: 5000,
                ..defaults
            }),
        )
        .expect_err("over the pixel limit");
        assert_eq!(error.code(), "too_large", "{format:?}: {error}");
    }
}

#[test]
fn what_is_not_a_decodable_image_is_refused_with_its_reason() {
    let options = PixelateOptions::default();
    assert_eq!(
        codec::pixelate(b"", &options).unwrap_err(),
        CodecError::Empty
    );
    let text = codec::pixelate(b"hello, this is text", &options).unwrap_err();
    assert_eq!(text.code(), "not_an_image");
    assert_eq!(text.to_string(), "not an image: the content is text");
    let no_sizes = PixelateOptions {
        sizes: vec![],
        ..PixelateOptions::default()
    };
    let bytes = data("cases", "c08-first.png");
    assert_eq!(
        codec::pixelate(&bytes, &no_sizes).unwrap_err().code(),
        "invalid_options"
    );
}

#[test]
fn square_mode_keeps_blocks_square_and_variants_say_their_grid() {
    let options = PixelateOptions {
        mode: GridMode::Square,
        ..PixelateOptions::default()
    };
    let pixelated = codec::pixelate(&data("cases", "c07-multipart.jpg"), &options).unwrap();
    let shapes: Vec<GridShape> = pixelated
        .variants
        .iter()
        .map(|variant| variant.shape)
        .collect();
    assert_eq!(
        shapes,
        [(8, 6), (16, 12), (32, 24), (48, 36), (64, 48)].map(|(c, r)| GridShape::new(c, r))
    );
    // Turned upright first: a portrait source gets more rows than columns.
    let portrait = codec::pixelate(&data("cases", "c10-exif-orientation-6.jpg"), &options).unwrap();
    assert_eq!(portrait.variants[0].shape, GridShape::new(5, 8));
}

#[test]
fn an_animated_webp_gives_its_first_frame() {
    // The C15 animation (red, green, blue frames) converted with gif2webp.
    let pixelated = codec::pixelate(
        &data("formats", "animated.webp"),
        &PixelateOptions::default(),
    )
    .unwrap();
    assert_eq!((pixelated.source.width, pixelated.source.height), (64, 48));
    for variant in &pixelated.variants {
        let image = image::load_from_memory(&variant.bytes).unwrap().to_rgba8();
        for pixel in image.pixels() {
            let [red, green, blue, _] = pixel.0;
            assert!(red >= 200 && green.abs_diff(blue) <= 24, "{:?}", pixel.0);
        }
    }
}

#[test]
fn a_cmyk_tiff_decodes_to_rgb() {
    // Left half red ink (magenta and yellow), right half no ink, a strip of black
    // ink along the bottom right, as in the CMYK JPEG case.
    let (width, height) = (96u32, 64u32);
    let samples: Vec<u8> = (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |x| match (x < 48, y >= 48) {
                (true, _) => [0, 255, 255, 0],
                (false, true) => [0, 0, 0, 255],
                (false, false) => [0, 0, 0, 0],
            })
        })
        .collect();
    let mut tiff = Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut tiff)
        .unwrap()
        .write_image::<tiff::encoder::colortype::CMYK8>(width, height, &samples)
        .unwrap();
    let pixelated = codec::pixelate(tiff.get_ref(), &PixelateOptions::default()).unwrap();
    for variant in &pixelated.variants {
        let image = image::load_from_memory(&variant.bytes).unwrap().to_rgba8();
        for (x, y, colour) in [
            (18, 12, [255u8, 0, 0]),
            (78, 12, [255, 255, 255]),
            (78, 60, [0, 0, 0]),
        ] {
            let pixel = image.get_pixel(x, y).0;
            assert!(
                colour
                    .iter()
                    .zip(pixel)
                    .all(|(&want, got)| want.abs_diff(got) <= 12),
                "{} ({x},{y}) is {pixel:?}",
                variant.shape
            );
        }
    }
}
