//! Small, bounded readers of the container structure around the pixels.
//!
//! Two questions are answered here without decoding anything: which EXIF orientation
//! an image carries, and whether a JPEG's compressed data runs to its end-of-image
//! marker. Both walk the bytes already in memory, segment by segment or chunk by
//! chunk, allocate nothing, and read only inside the input slice, so a hostile
//! header (a chunk claiming four gigabytes, an offset pointing anywhere) costs
//! nothing but a bounds check.
//!
//! EXIF data is a small TIFF structure wherever it is stored: in a JPEG's APP1
//! segment after `Exif\0\0`, in a PNG's `eXIf` chunk, in a WebP's `EXIF` chunk, and a
//! TIFF file is one itself. The orientation is tag 0x0112 of its first directory.

use pixelator_shared::Orientation;
use pixelator_shared::wire::ImageFormat;

/// The EXIF orientation of an image, upright when it has none or it cannot be read.
pub fn orientation(format: ImageFormat, bytes: &[u8]) -> Orientation {
    let exif = match format {
        ImageFormat::Jpeg => jpeg_exif(bytes),
        ImageFormat::Png => png_exif(bytes),
        ImageFormat::Webp => webp_exif(bytes),
        ImageFormat::Tiff => Some(bytes),
        ImageFormat::Gif | ImageFormat::Bmp => None,
    };
    exif.and_then(tiff_orientation)
        .map(Orientation::from_exif)
        .unwrap_or_default()
}

/// The EXIF value of tag 0x0112 in the first directory of a TIFF structure. An
/// optional `Exif\0\0` prefix is skipped (some writers put it in PNG and WebP too).
fn tiff_orientation(exif: &[u8]) -> Option<u16> {
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let big_endian = match tiff.get(..4)? {
        b"II*\0" => false,
        b"MM\0*" => true,
        _ => return None,
    };
    let read_u16 = |at: usize| -> Option<u16> {
        let pair: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        })
    };
    let read_u32 = |at: usize| -> Option<u32> {
        let quad: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(quad)
        } else {
            u32::from_le_bytes(quad)
        })
    };

    let directory = read_u32(4)? as usize;
    let entries = read_u16(directory)? as usize;
    for index in 0..entries {
        let entry = directory.checked_add(2 + index * 12)?;
        if read_u16(entry)? != 0x0112 {
            continue;
        }
        // Type SHORT (3), one value, stored in the first two bytes of the value field.
        const SHORT: u16 = 3;
        if read_u16(entry + 2)? != SHORT || read_u32(entry + 4)? != 1 {
            return None;
        }
        return read_u16(entry + 8);
    }
    None
}

/// A JPEG marker segment: the marker byte and the segment's payload.
struct Segment<'a> {
    marker: u8,
    payload: &'a [u8],
}

/// The segments of a JPEG header up to (not including) the first scan.
fn jpeg_header_segments(bytes: &[u8]) -> impl Iterator<Item = Segment<'_>> {
    let mut position = 2; // after SOI
    std::iter::from_fn(move || {
        let (marker, after_marker) = next_marker(bytes, position)?;
        if marker == SOS || marker == EOI {
            return None;
        }
        let (payload, next) = segment_payload(bytes, after_marker)?;
        position = next;
        Some(Segment { marker, payload })
    })
}

const SOS: u8 = 0xDA;
const EOI: u8 = 0xD9;
const APP1: u8 = 0xE1;

/// The marker at `position` (after any fill bytes) and the position after it.
fn next_marker(bytes: &[u8], mut position: usize) -> Option<(u8, usize)> {
    if *bytes.get(position)? != 0xFF {
        return None;
    }
    while *bytes.get(position)? == 0xFF {
        position += 1;
    }
    Some((bytes[position], position + 1))
}

/// A marker segment's payload (after its two length bytes) and the position after it.
fn segment_payload(bytes: &[u8], position: usize) -> Option<(&[u8], usize)> {
    let length = u16::from_be_bytes([*bytes.get(position)?, *bytes.get(position + 1)?]) as usize;
    if length < 2 {
        return None;
    }
    let end = position + length;
    Some((bytes.get(position + 2..end)?, end))
}

fn jpeg_exif(bytes: &[u8]) -> Option<&[u8]> {
    jpeg_header_segments(bytes)
        .find(|segment| segment.marker == APP1 && segment.payload.starts_with(b"Exif\0\0"))
        .map(|segment| &segment.payload[6..])
}

/// Whether a JPEG's compressed data is complete: every scan runs into a marker and
/// the stream reaches its end-of-image marker before the bytes run out.
///
/// A file cut off inside its compressed data has no EOI, and the decoder would fill
/// the missing rows with grey rather than fail. Inside a scan, `0xFF` is always
/// followed by a stuffed `0x00` or a restart marker, so the first other marker ends
/// the scan. Bytes after EOI (some phones append data there) are ignored.
pub fn jpeg_is_complete(bytes: &[u8]) -> Result<(), &'static str> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("no start-of-image marker");
    }
    let mut position = 2;
    loop {
        let Some((marker, after_marker)) = next_marker(bytes, position) else {
            return Err(if position >= bytes.len() {
                "the data ends before the end-of-image marker"
            } else {
                "a marker is missing where one should be"
            });
        };
        match marker {
            EOI => return Ok(()),
            // Markers that stand alone, without a length.
            0x01 | 0xD0..=0xD7 => position = after_marker,
            _ => {
                let Some((_, next)) = segment_payload(bytes, after_marker) else {
                    return Err("the data ends inside a marker segment");
                };
                position = if marker == SOS {
                    skip_entropy_coded_data(bytes, next)
                        .ok_or("the data ends inside the compressed image data")?
                } else {
                    next
                };
            }
        }
    }
}

/// The position of the first marker after the entropy-coded data starting at
/// `position`, if there is one.
fn skip_entropy_coded_data(bytes: &[u8], mut position: usize) -> Option<usize> {
    loop {
        position += bytes
            .get(position..)?
            .iter()
            .position(|&byte| byte == 0xFF)?;
        let mut next = position + 1;
        while *bytes.get(next)? == 0xFF {
            next += 1;
        }
        match bytes[next] {
            0x00 | 0xD0..=0xD7 => position = next + 1,
            _ => return Some(next - 1),
        }
    }
}

/// Whether a WebP holds all the bytes its RIFF header declares. A file cut short
/// can still decode when the cut falls after the image data (in the EXIF chunk, say),
/// but then what follows the pixels, the orientation included, is lost.
pub fn webp_is_complete(bytes: &[u8]) -> Result<(), String> {
    let declared = bytes
        .get(4..8)
        .and_then(|size| size.try_into().ok())
        .map(|size: [u8; 4]| u32::from_le_bytes(size) as u64 + 8)
        .ok_or_else(|| "the RIFF header is cut short".to_owned())?;
    if declared > bytes.len() as u64 {
        return Err(format!(
            "the RIFF header declares {declared} bytes but only {} are present",
            bytes.len()
        ));
    }
    Ok(())
}

/// The payload of the first `eXIf` chunk of a PNG.
fn png_exif(bytes: &[u8]) -> Option<&[u8]> {
    let mut position = 8; // after the signature
    loop {
        let length = u32::from_be_bytes(bytes.get(position..position + 4)?.try_into().ok()?);
        let kind = bytes.get(position + 4..position + 8)?;
        let data_start = position + 8;
        let data_end = data_start.checked_add(length as usize)?;
        match kind {
            b"eXIf" => return bytes.get(data_start..data_end),
            b"IEND" => return None,
            _ => position = data_end.checked_add(4)?, // skip the CRC
        }
    }
}

/// The payload of the `EXIF` chunk of a WebP (extended format).
fn webp_exif(bytes: &[u8]) -> Option<&[u8]> {
    let mut position = 12; // after RIFF, size, WEBP
    loop {
        let kind = bytes.get(position..position + 4)?;
        let length = u32::from_le_bytes(bytes.get(position + 4..position + 8)?.try_into().ok()?);
        let data_start = position + 8;
        let data_end = data_start.checked_add(length as usize)?;
        if kind == b"EXIF" {
            return bytes.get(data_start..data_end);
        }
        // Chunks are padded to an even length.
        position = data_end.checked_add(length as usize % 2)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF structure with one directory holding `entries`.
    fn exif_with(entries: &[(u16, u16, u32, u32)]) -> Vec<u8> {
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for &(tag, kind, count, value) in entries {
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&kind.to_le_bytes());
            tiff.extend_from_slice(&count.to_le_bytes());
            tiff.extend_from_slice(&value.to_le_bytes());
        }
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff
    }

    fn jpeg_with_app1(payload: &[u8]) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, APP1];
        jpeg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        jpeg.extend_from_slice(payload);
        jpeg.extend_from_slice(&[
            0xFF, SOS, 0, 2, 1, 2, 3, 0xFF, 0, 4, 0xFF, 0xD3, 5, 0xFF, EOI,
        ]);
        jpeg
    }

    #[test]
    fn orientation_is_read_from_a_jpeg_app1_segment() {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(exif_with(&[(0x010F, 2, 4, 0), (0x0112, 3, 1, 6)]));
        let jpeg = jpeg_with_app1(&payload);
        assert_eq!(orientation(ImageFormat::Jpeg, &jpeg), Orientation::Rotate90);
    }

    #[test]
    fn orientation_is_read_from_png_and_webp_chunks() {
        let exif = exif_with(&[(0x0112, 3, 1, 8)]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [
            (&b"IHDR"[..], &[0u8; 13][..]),
            (b"eXIf", &exif),
            (b"IEND", &[]),
        ] {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(kind);
            png.extend_from_slice(data);
            png.extend_from_slice(&[0; 4]);
        }
        assert_eq!(orientation(ImageFormat::Png, &png), Orientation::Rotate270);

        let mut webp = b"RIFF\0\0\0\0WEBP".to_vec();
        for (kind, data) in [(&b"VP8X"[..], &[0u8; 9][..]), (b"EXIF", &exif)] {
            webp.extend_from_slice(kind);
            webp.extend_from_slice(&(data.len() as u32).to_le_bytes());
            webp.extend_from_slice(data);
            if data.len() % 2 == 1 {
                webp.push(0);
            }
        }
        assert_eq!(
            orientation(ImageFormat::Webp, &webp),
            Orientation::Rotate270
        );
    }

    #[test]
    fn hostile_or_missing_exif_reads_as_upright() {
        // A directory offset far outside the data, a count that runs off the end, a
        // wrong type, and a chunk length of four gigabytes.
        let mut far = b"II*\0".to_vec();
        far.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(tiff_orientation(&far), None);
        let mut long = exif_with(&[(0x0112, 3, 1, 3)]);
        long[8] = 0xFF;
        long[9] = 0xFF;
        assert_eq!(tiff_orientation(&long), Some(3));
        long.truncate(12);
        assert_eq!(tiff_orientation(&long), None);
        assert_eq!(tiff_orientation(&exif_with(&[(0x0112, 4, 1, 6)])), None);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&u32::MAX.to_be_bytes());
        png.extend_from_slice(b"tEXt");
        assert_eq!(orientation(ImageFormat::Png, &png), Orientation::Normal);
        assert_eq!(
            orientation(ImageFormat::Gif, b"GIF89a"),
            Orientation::Normal
        );
    }

    #[test]
    fn a_webp_shorter_than_its_riff_size_is_incomplete() {
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&12u32.to_le_bytes());
        webp.extend_from_slice(b"WEBPVP8L\0\0\0\0");
        assert_eq!(webp_is_complete(&webp), Ok(()));
        webp.extend_from_slice(b"trailing bytes are fine");
        assert_eq!(webp_is_complete(&webp), Ok(()));
        assert!(webp_is_complete(&webp[..19]).is_err());
    }

    #[test]
    fn a_complete_jpeg_reaches_its_end_marker() {
        let jpeg = jpeg_with_app1(b"JFIF");
        assert_eq!(jpeg_is_complete(&jpeg), Ok(()));
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"SEFT trailer data");
        assert_eq!(jpeg_is_complete(&trailing), Ok(()));
    }

    #[test]
    fn a_jpeg_cut_anywhere_is_incomplete() {
        let jpeg = jpeg_with_app1(b"JFIF");
        for cut in 2..jpeg.len() - 1 {
            assert!(jpeg_is_complete(&jpeg[..cut]).is_err(), "cut at {cut}");
        }
    }
}
