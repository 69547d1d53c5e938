//! Where the pipeline's objects live: the names of variants and manifests.
//!
//! A source `<dir>/<file>` in the source bucket has, in the processed bucket, one
//! variant per grid at `<dir>/pixelated-<columns>x<rows>-<file>` (the classic demo's
//! name, kept in the source's folder) and one manifest at
//! `manifests/<dir>/<file>.json`, written last. Keeping the manifests under their own
//! prefix lets a listing page through the processed images without reading the
//! variants, in the order of their source keys.

use crate::grid::GridShape;
use crate::wire::ImageFormat;

/// The prefix under which manifests are kept in the processed bucket.
pub const MANIFEST_PREFIX: &str = "manifests/";

/// What every variant's file name starts with.
pub const VARIANT_PREFIX: &str = "pixelated-";

/// Extensions of image formats the pipeline recognises but never writes. A variant
/// whose source name ends in one of them is renamed like one claiming a wrong format.
pub const OTHER_IMAGE_EXTENSIONS: &[&str] = &[
    "heic", "heif", "hif", "avif", "jxl", "jp2", "j2k", "jpx", "psd", "ico", "svg", "qoi", "exr",
    "hdr", "dds", "pnm", "ppm", "pgm", "pbm",
];

/// The key of a source's variant for `shape`, written as `written`.
///
/// A variant keeps its source's file name. When the name claims another image
/// format than the one written, the real format's extension is appended (a PNG
/// uploaded as `photo.jpg` gives `pixelated-8x8-photo.jpg.png`), so the name never
/// lies about the bytes and two sources that differ only by their extension
/// (`photo.jpg`, and a JPEG saved as `photo.png`) never share a variant. A name
/// with no image extension is kept as it is.
pub fn variant_key(source_key: &str, shape: GridShape, written: ImageFormat) -> String {
    let (dir, file) = split_key(source_key);
    let file = match file.rsplit_once('.') {
        Some((_, extension)) => {
            let claims_other = match ImageFormat::from_extension(extension) {
                Some(claimed) => claimed != written,
                None => OTHER_IMAGE_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str()),
            };
            if claims_other {
                format!("{file}.{}", written.extension())
            } else {
                file.to_owned()
            }
        }
        None => file.to_owned(),
    };
    format!(
        "{dir}{VARIANT_PREFIX}{}x{}-{file}",
        shape.columns, shape.rows
    )
}

/// The key of a source's manifest.
pub fn manifest_key(source_key: &str) -> String {
    format!("{MANIFEST_PREFIX}{source_key}.json")
}

/// The source key a manifest key belongs to, if it is one.
pub fn source_key_of_manifest(key: &str) -> Option<&str> {
    key.strip_prefix(MANIFEST_PREFIX)?
        .strip_suffix(".json")
        .filter(|source| !source.is_empty())
}

/// Whether a key is named like something the pipeline writes: a variant or a
/// manifest. The pixelator never processes such a key, so its own output can never
/// start a loop.
pub fn is_output_key(key: &str) -> bool {
    let (_, file) = split_key(key);
    key.starts_with(MANIFEST_PREFIX) || file.starts_with(VARIANT_PREFIX)
}

/// The folder (with its trailing `/`, or empty) and the file name of a key.
pub fn split_key(key: &str) -> (&str, &str) {
    match key.rfind('/') {
        Some(slash) => key.split_at(slash + 1),
        None => ("", key),
    }
}

/// The name a person sees for a source key: its file name without the extension.
pub fn display_name(key: &str) -> &str {
    let (_, file) = split_key(key);
    match file.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_sit_beside_the_source_with_the_classic_name() {
        let shape = GridShape::new(16, 16);
        assert_eq!(
            variant_key("uploads/summer trip (1).jpg", shape, ImageFormat::Jpeg),
            "uploads/pixelated-16x16-summer trip (1).jpg"
        );
        assert_eq!(
            variant_key("photo.JPEG", shape, ImageFormat::Jpeg),
            "pixelated-16x16-photo.JPEG"
        );
    }

    #[test]
    fn a_variant_name_never_claims_another_format_than_its_bytes() {
        let shape = GridShape::new(8, 8);
        assert_eq!(
            variant_key("a/b/photo.jpg", shape, ImageFormat::Png),
            "a/b/pixelated-8x8-photo.jpg.png"
        );
        assert_eq!(
            variant_key("a/IMG_0001.HEIC", shape, ImageFormat::Jpeg),
            "a/pixelated-8x8-IMG_0001.HEIC.jpg"
        );
        assert_eq!(
            variant_key("a/scan", shape, ImageFormat::Png),
            "a/pixelated-8x8-scan"
        );
        assert_eq!(
            variant_key("a/notes.v2", shape, ImageFormat::Png),
            "a/pixelated-8x8-notes.v2"
        );
    }

    #[test]
    fn sources_differing_only_by_extension_never_share_a_variant() {
        let shape = GridShape::new(8, 8);
        let formats = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp];
        let names = ["a/dup.jpg", "a/dup.png", "a/dup.webp", "a/dup"];
        let mut keys = Vec::new();
        for name in names {
            for written in formats {
                keys.push((variant_key(name, shape, written), name));
            }
        }
        keys.sort();
        keys.dedup();
        for pair in keys.windows(2) {
            assert!(
                pair[0].0 != pair[1].0 || pair[0].1 == pair[1].1,
                "{} and {} share {}",
                pair[0].1,
                pair[1].1,
                pair[0].0
            );
        }
    }

    #[test]
    fn manifests_round_trip_to_their_source() {
        let key = manifest_key("uploads/x/photo.png");
        assert_eq!(key, "manifests/uploads/x/photo.png.json");
        assert_eq!(source_key_of_manifest(&key), Some("uploads/x/photo.png"));
        assert_eq!(source_key_of_manifest("uploads/photo.png.json"), None);
        assert_eq!(source_key_of_manifest("manifests/.json"), None);
    }

    #[test]
    fn output_keys_are_recognised() {
        assert!(is_output_key("summer-trip/pixelated-16x16.png"));
        assert!(is_output_key("manifests/uploads/a.jpg.json"));
        assert!(!is_output_key("uploads/pixelated.jpg"));
        assert!(!is_output_key("uploads/a.jpg"));
    }

    #[test]
    fn display_names_drop_the_folder_and_extension() {
        assert_eq!(
            display_name("uploads/summer trip (1).jpg"),
            "summer trip (1)"
        );
        assert_eq!(display_name("uploads/x/.hidden"), ".hidden");
        assert_eq!(display_name("plain"), "plain");
    }
}
