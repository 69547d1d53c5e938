//! What a file really is, read from its first bytes rather than its name.
//!
//! A phone names a HEIC photo `IMG_0001.HEIC` but a renamed copy may be called
//! `photo.jpg`, and browsers often leave a file's type empty. The page therefore
//! decides from the content: the magic numbers of the formats the pipeline reads,
//! the `ftyp` brands of ISO media files (HEIC, HEIF, AVIF, videos), and a few other
//! common things people drop by mistake (PDF, SVG, JPEG XL). For the formats the
//! pipeline reads it also finds the stored pixel size in the header, so an image
//! too large to process is refused before it is decoded.
//!
//! Pure functions over a byte prefix; nothing here touches the browser.

use pixelator_shared::wire::ImageFormat;

/// How many leading bytes [`sniff`] and [`dimensions`] want to see. A JPEG's size
/// sits after its EXIF block, which rarely exceeds this.
pub const HEAD_BYTES: u32 = 256 * 1024;

/// What a file's content says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniffed {
    /// A format the pipeline reads.
    Image(ImageFormat),
    /// An image format the pipeline does not read, by its usual name ("HEIC").
    UnsupportedImage(&'static str),
    /// Something that is not an image at all, by what it is ("PDF document").
    NotAnImage(&'static str),
    /// Nothing recognisable.
    Unknown,
}

/// Identifies a file from its leading bytes.
pub fn sniff(head: &[u8]) -> Sniffed {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Sniffed::Image(ImageFormat::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Image(ImageFormat::Png);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Sniffed::Image(ImageFormat::Gif);
    }
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        return Sniffed::Image(ImageFormat::Webp);
    }
    if head.starts_with(b"BM") && head.len() >= 26 {
        return Sniffed::Image(ImageFormat::Bmp);
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Sniffed::Image(ImageFormat::Tiff);
    }
    if let Some(brands) = ftyp_brands(head) {
        return sniff_iso_media(brands);
    }
    if head.starts_with(b"%PDF-") {
        return Sniffed::NotAnImage("PDF document");
    }
    if head.starts_with(&[0xFF, 0x0A]) || head.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        return Sniffed::UnsupportedImage("JPEG XL");
    }
    if looks_like_svg(head) {
        return Sniffed::UnsupportedImage("SVG");
    }
    Sniffed::Unknown
}

/// The major and compatible brands of an ISO base media file (`ftyp` box first).
fn ftyp_brands(head: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    if head.len() < 16 || &head[4..8] != b"ftyp" {
        return None;
    }
    let box_size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let end = box_size.clamp(16, head.len());
    // Major brand at 8..12, minor version at 12..16, compatible brands after.
    let major = std::iter::once(&head[8..12]);
    Some(major.chain(head[16..end].chunks_exact(4)))
}

/// Names an ISO media file from its brands: AVIF first (an AVIF also lists the
/// generic HEIF brand), then HEIC, then plain HEIF, else a video.
fn sniff_iso_media<'a>(brands: impl Iterator<Item = &'a [u8]>) -> Sniffed {
    let brands: Vec<&[u8]> = brands.collect();
    let has = |wanted: &[&[u8]]| brands.iter().any(|brand| wanted.contains(brand));
    if has(&[b"avif", b"avis"]) {
        Sniffed::UnsupportedImage("AVIF")
    } else if has(&[
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
    ]) {
        Sniffed::UnsupportedImage("HEIC")
    } else if has(&[b"mif1", b"msf1", b"heif"]) {
        Sniffed::UnsupportedImage("HEIF")
    } else {
        Sniffed::NotAnImage("video")
    }
}

fn looks_like_svg(head: &[u8]) -> bool {
    let start = &head[..head.len().min(1024)];
    let text = String::from_utf8_lossy(start).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    (text.starts_with("<?xml") || text.starts_with("<svg") || text.starts_with("<!doctype svg"))
        && text.contains("<svg")
}

/// The stored width and height a header declares, when it is in `head`.
///
/// This is the size before any EXIF orientation, which does not change the pixel
/// count. `None` when the header is cut short or malformed; the browser's decoder
/// then has the last word.
pub fn dimensions(format: ImageFormat, head: &[u8]) -> Option<(u32, u32)> {
    let be16 = |at: usize| Some(u16::from_be_bytes(head.get(at..at + 2)?.try_into().ok()?));
    let le16 = |at: usize| Some(u16::from_le_bytes(head.get(at..at + 2)?.try_into().ok()?));
    let be32 = |at: usize| Some(u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let le32 = |at: usize| Some(u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let le24 = |at: usize| {
        let bytes = head.get(at..at + 3)?;
        Some(bytes[0] as u32 | (bytes[1] as u32) << 8 | (bytes[2] as u32) << 16)
    };

    let size = match format {
        ImageFormat::Png => (be32(16)?, be32(20)?),
        ImageFormat::Gif => (le16(6)? as u32, le16(8)? as u32),
        ImageFormat::Bmp => {
            // BITMAPINFOHEADER holds signed sizes; a negative height means top-down.
            let width = le32(18)? as i32;
            let height = le32(22)? as i32;
            (width.unsigned_abs(), height.unsigned_abs())
        }
        ImageFormat::Webp => match head.get(12..16)? {
            b"VP8 " => ((le16(26)? & 0x3FFF) as u32, (le16(28)? & 0x3FFF) as u32),
            b"VP8L" => {
                let bits = le32(21)?;
                ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            }
            b"VP8X" => (le24(24)? + 1, le24(27)? + 1),
            _ => return None,
        },
        ImageFormat::Jpeg => jpeg_frame_size(head, be16)?,
        ImageFormat::Tiff => return None,
    };
    (size.0 > 0 && size.1 > 0).then_some(size)
}

/// Walks a JPEG's marker segments to its start-of-frame and reads the size there.
fn jpeg_frame_size(head: &[u8], be16: impl Fn(usize) -> Option<u16>) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Markers may be padded with any number of 0xFF bytes.
        while *head.get(at)? == 0xFF && *head.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *head.get(at)? != 0xFF {
            return None;
        }
        let marker = *head.get(at + 1)?;
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let height = be16(at + 5)? as u32;
            let width = be16(at + 7)? as u32;
            return Some((width, height));
        }
        if marker == 0xD9 || marker == 0xDA {
            return None;
        }
        let length = be16(at + 2)? as usize;
        if length < 2 {
            return None;
        }
        at += 2 + length;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn case(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/cases/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    #[test]
    fn an_iphone_heic_is_recognised_by_its_brand_whatever_its_name() {
        assert_eq!(
            sniff(&case("c20-iphone.heic")),
            Sniffed::UnsupportedImage("HEIC")
        );
    }

    #[test]
    fn iso_media_brands_tell_heic_heif_avif_and_video_apart() {
        let ftyp = |major: &[u8], compatible: &[&[u8]]| {
            let mut bytes = vec![0, 0, 0, (16 + 4 * compatible.len()) as u8];
            bytes.extend_from_slice(b"ftyp");
            bytes.extend_from_slice(major);
            bytes.extend_from_slice(&[0; 4]);
            for brand in compatible {
                bytes.extend_from_slice(brand);
            }
            bytes.extend_from_slice(b"\0\0\0\x08free");
            bytes
        };
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])),
            Sniffed::UnsupportedImage("HEIC")
        );
        assert_eq!(
            sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])),
            Sniffed::UnsupportedImage("AVIF")
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1"])),
            Sniffed::UnsupportedImage("HEIF")
        );
        assert_eq!(
            sniff(&ftyp(b"isom", &[b"mp41"])),
            Sniffed::NotAnImage("video")
        );
    }

    #[test]
    fn the_pipelines_formats_are_recognised_with_their_sizes() {
        let expectations: [(&str, ImageFormat, (u32, u32)); 6] = [
            ("c01-summer-trip.jpg", ImageFormat::Jpeg, (120, 80)),
            ("c10-exif-orientation-6.jpg", ImageFormat::Jpeg, (96, 64)),
            ("c08-first.png", ImageFormat::Png, (64, 64)),
            ("c13-palette-trns.png", ImageFormat::Png, (64, 64)),
            ("c15-animated.gif", ImageFormat::Gif, (64, 48)),
            (
                "c18-bomb-100000x100000.png",
                ImageFormat::Png,
                (100_000, 100_000),
            ),
        ];
        for (name, format, size) in expectations {
            let bytes = case(name);
            assert_eq!(sniff(&bytes), Sniffed::Image(format), "{name}");
            assert_eq!(dimensions(format, &bytes), Some(size), "{name}");
        }
    }

    #[test]
    fn encoded_headers_give_their_sizes() {
        use image::{ImageFormat as Codec, RgbaImage};
        let picture = RgbaImage::from_pixel(37, 21, image::Rgba([10, 20, 30, 255]));
        for (codec, format) in [
            (Codec::WebP, ImageFormat::Webp),
            (Codec::Bmp, ImageFormat::Bmp),
            (Codec::Png, ImageFormat::Png),
            (Codec::Gif, ImageFormat::Gif),
        ] {
            let mut bytes = std::io::Cursor::new(Vec::new());
            picture.write_to(&mut bytes, codec).unwrap();
            let bytes = bytes.into_inner();
            assert_eq!(sniff(&bytes), Sniffed::Image(format), "{format:?}");
            assert_eq!(dimensions(format, &bytes), Some((37, 21)), "{format:?}");
        }
    }

    #[test]
    fn a_lossy_webp_header_gives_its_size() {
        // A hand-made VP8 (lossy) header for a 300x200 picture.
        let mut bytes = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0".to_vec();
        bytes.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
        bytes.extend_from_slice(&300u16.to_le_bytes());
        bytes.extend_from_slice(&200u16.to_le_bytes());
        assert_eq!(sniff(&bytes), Sniffed::Image(ImageFormat::Webp));
        assert_eq!(dimensions(ImageFormat::Webp, &bytes), Some((300, 200)));
    }

    #[test]
    fn things_that_are_not_images_are_named() {
        assert_eq!(
            sniff(b"%PDF-1.7\n%\xe2\xe3"),
            Sniffed::NotAnImage("PDF document")
        );
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Sniffed::UnsupportedImage("SVG")
        );
        assert_eq!(sniff(b"hello, world"), Sniffed::Unknown);
        assert_eq!(sniff(b""), Sniffed::Unknown);
    }

    #[test]
    fn a_cut_short_header_has_no_size() {
        let bytes = case("c01-summer-trip.jpg");
        assert_eq!(dimensions(ImageFormat::Jpeg, &bytes[..20]), None);
        assert_eq!(dimensions(ImageFormat::Png, &bytes[..4]), None);
        assert_eq!(dimensions(ImageFormat::Tiff, b"II*\0\x08\0\0\0"), None);
    }
}
