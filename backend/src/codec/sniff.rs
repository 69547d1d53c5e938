//! What an input is, read from its first bytes.
//!
//! The format always comes from the content, never from a file name or a
//! Content-Type: uploads arrive as `application/octet-stream`, phones name HEIC
//! files `.jpg`, and a name is whatever a person typed. Formats the pipeline decodes
//! are recognised by their signatures; a few that it does not decode (HEIC, AVIF,
//! JPEG XL, ...) are recognised too, so the refusal can name them; anything else is
//! "not an image" with a hint of what it looks like.

use pixelator_shared::wire::ImageFormat;

use super::CodecError;

/// The format of `bytes`, or why they cannot be decoded.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, CodecError> {
    if bytes.is_empty() {
        return Err(CodecError::Empty);
    }
    if let Some(format) = supported(bytes) {
        return Ok(format);
    }
    if let Some(format) = unsupported_image(bytes) {
        return Err(CodecError::UnsupportedFormat { format });
    }
    Err(CodecError::NotAnImage {
        detail: describe_other(bytes),
    })
}

/// The decodable format whose signature `bytes` start with.
fn supported(bytes: &[u8]) -> Option<ImageFormat> {
    let format = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        ImageFormat::Jpeg
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        ImageFormat::Png
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        ImageFormat::Gif
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        ImageFormat::Webp
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        ImageFormat::Tiff
    } else if is_bmp(bytes) {
        ImageFormat::Bmp
    } else {
        return None;
    };
    Some(format)
}

/// A Windows bitmap: `BM`, then a file size, then an info header of a known size.
/// `BM` alone is too common a start of text to trust.
fn is_bmp(bytes: &[u8]) -> bool {
    if bytes.len() < 18 || !bytes.starts_with(b"BM") {
        return false;
    }
    let header_size = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
    matches!(header_size, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124)
}

/// The name of an image format the pipeline recognises but does not decode.
fn unsupported_image(bytes: &[u8]) -> Option<&'static str> {
    if let Some(brand) = iso_media_image_brand(bytes) {
        return Some(brand);
    }
    let format =
        if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
            "JPEG XL"
        } else if bytes.starts_with(b"\0\0\0\x0cjP  \r\n\x87\n")
            || bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
        {
            "JPEG 2000"
        } else if bytes.starts_with(b"8BPS") {
            "PSD"
        } else if bytes.starts_with(&[0, 0, 1, 0]) && bytes.len() > 6 && bytes[4..6] != [0, 0] {
            "ICO"
        } else if bytes.starts_with(b"qoif") {
            "QOI"
        } else if bytes.starts_with(&[0x76, 0x2F, 0x31, 0x01]) {
            "OpenEXR"
        } else if bytes.starts_with(b"#?RADIANCE") || bytes.starts_with(b"#?RGBE") {
            "Radiance HDR"
        } else if bytes.starts_with(b"DDS ") {
            "DDS"
        } else if bytes.starts_with(b"farbfeld") {
            "farbfeld"
        } else if bytes.len() > 2
            && bytes[0] == b'P'
            && (b'1'..=b'7').contains(&bytes[1])
            && bytes[2].is_ascii_whitespace()
        {
            "PNM"
        } else if looks_like_svg(bytes) {
            "SVG"
        } else {
            return None;
        };
    Some(format)
}

/// HEIF-family images (HEIC, HEIF, AVIF) are ISO media files whose `ftyp` box names
/// the kind of file in its major brand and compatible brands.
fn iso_media_image_brand(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 16 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let box_size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = box_size.clamp(16, bytes.len().min(4096));
    let major = &bytes[8..12];
    // The major brand, then the compatible brands after the minor version.
    let brands = std::iter::once(major).chain(bytes[16..end].chunks_exact(4));
    let mut generic_heif = false;
    for brand in brands {
        match brand {
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => return Some("HEIC"),
            b"avif" | b"avis" => return Some("AVIF"),
            b"mif1" | b"msf1" | b"heif" => generic_heif = true,
            _ => {}
        }
    }
    generic_heif.then_some("HEIF")
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let text = text.trim_start_matches('\u{feff}').trim_start();
    (text.starts_with("<?xml") || text.starts_with("<svg") || text.starts_with("<!--"))
        && text.contains("<svg")
}

/// A short description of content that is not an image.
fn describe_other(bytes: &[u8]) -> String {
    let kind = if bytes.starts_with(b"%PDF") {
        Some("a PDF document")
    } else if bytes.starts_with(b"PK\x03\x04") {
        Some("a ZIP archive (or an office document)")
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        Some("a video or other ISO media file")
    } else if bytes.starts_with(&[0x1F, 0x8B]) {
        Some("gzip-compressed data")
    } else if looks_like_html(bytes) {
        Some("an HTML page")
    } else if std::str::from_utf8(&bytes[..bytes.len().min(512)]).is_ok() {
        Some("text")
    } else {
        None
    };
    match kind {
        Some(kind) => format!("the content is {kind}"),
        None => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!(
                "the content matches no supported format (JPEG, PNG, GIF, WebP, BMP, TIFF); \
                 it starts with {}",
                head.join(" ")
            )
        }
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).to_ascii_lowercase();
    let head = head.trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len();
        let mut bytes = (size as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"ftyp");
        bytes.extend_from_slice(major);
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        for brand in compatible {
            bytes.extend_from_slice(*brand);
        }
        bytes.extend_from_slice(&[0; 32]);
        bytes
    }

    #[test]
    fn supported_formats_come_from_their_signatures() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Ok(ImageFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Ok(ImageFormat::Png));
        assert_eq!(sniff(b"GIF89a...."), Ok(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Ok(ImageFormat::Webp));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Ok(ImageFormat::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Ok(ImageFormat::Tiff));
        let mut bmp = b"BM".to_vec();
        bmp.extend_from_slice(&[0; 12]);
        bmp.extend_from_slice(&40u32.to_le_bytes());
        assert_eq!(sniff(&bmp), Ok(ImageFormat::Bmp));
    }

    #[test]
    fn heif_family_is_named_from_its_brands() {
        let heic = CodecError::UnsupportedFormat { format: "HEIC" };
        assert_eq!(
            sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
            Err(heic.clone())
        );
        assert_eq!(sniff(&ftyp(b"mif1", &[b"mif1", b"heic"])), Err(heic));
        assert_eq!(
            sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])),
            Err(CodecError::UnsupportedFormat { format: "AVIF" })
        );
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1"])),
            Err(CodecError::UnsupportedFormat { format: "HEIF" })
        );
        assert_eq!(
            sniff(&ftyp(b"isom", &[b"mp41"])).map_err(|e| e.code()),
            Err("not_an_image")
        );
    }

    #[test]
    fn other_content_is_described() {
        assert_eq!(sniff(b""), Err(CodecError::Empty));
        let pdf = sniff(b"%PDF-1.7\n...").unwrap_err();
        assert_eq!(
            pdf.to_string(),
            "not an image: the content is a PDF document"
        );
        let text = sniff(b"BMW is a car").unwrap_err();
        assert_eq!(text.code(), "not_an_image");
        let svg = sniff(b"<?xml version=\"1.0\"?>\n<svg xmlns=\"...\"/>").unwrap_err();
        assert_eq!(svg.to_string(), "unsupported format: SVG");
        let binary = sniff(&[0x00, 0xFE, 0x80, 0x81, 0x90]).unwrap_err();
        assert!(
            binary.to_string().contains("starts with 00 fe 80 81 90"),
            "{binary}"
        );
    }
}
