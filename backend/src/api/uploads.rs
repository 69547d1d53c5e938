//! `POST /api/uploads`: where the browser may put one file, as a presigned PUT.
//!
//! The server chooses the key, never the browser: `<prefix><id>/<safe name>`. The id
//! sorts newest first (an inverted millisecond timestamp, then randomness), so a
//! listing in key order is the gallery's order. The file name is cut to its last
//! path component and cleaned of control, invisible and unusual characters, so no
//! name can climb out of its folder, hide its extension or look like the
//! pipeline's own output.
//!
//! The signature covers the Content-Type and the exact Content-Length, so the store
//! refuses any other type or size, and the URL expires after a few minutes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::presigning::PresigningConfig;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use pixelator_shared::layout::VARIANT_PREFIX;
use pixelator_shared::wire::{ImageFormat, UploadRequest, UploadTicket};

use super::{ApiFailure, ApiState};

/// The longest file name kept, in bytes (extension included).
pub const MAX_FILE_NAME_BYTES: usize = 100;

/// What a cleaned name starts with when it would otherwise look like a variant.
const RENAMED_OUTPUT_PREFIX: &str = "upload-";

/// One more than the largest inverted timestamp: ids keep 13 digits until the
/// year 2286.
const INVERTED_TIME_BASE: u64 = 10_000_000_000_000;

/// Answers an upload request with a presigned PUT.
pub(super) async fn create_upload(
    State(state): State<ApiState>,
    request: Result<Json<UploadRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<UploadTicket>), ApiFailure> {
    let Json(request) = request?;
    let config = &state.config;

    let format = accepted_format(&request.content_type)?;
    if request.size == 0 {
        return Err(ApiFailure::EmptyFile);
    }
    if request.size > config.max_upload_bytes {
        return Err(ApiFailure::FileTooLarge {
            size: request.size,
            limit: config.max_upload_bytes,
        });
    }
    let size = i64::try_from(request.size).map_err(|_| ApiFailure::FileTooLarge {
        size: request.size,
        limit: config.max_upload_bytes,
    })?;

    let key = format!(
        "{}{}/{}",
        config.source_prefix,
        new_upload_id(SystemTime::now()),
        safe_file_name(&request.file_name, format)
    );
    let lifetime = config.upload_url_lifetime;
    let presigning = PresigningConfig::expires_in(lifetime)
        .map_err(|error| ApiFailure::Presign(error.to_string()))?;
    let presigned = state
        .s3
        .put_object()
        .bucket(&config.buckets.source)
        .key(&key)
        .content_type(format.mime_type())
        .content_length(size)
        .presigned(presigning)
        .await
        .map_err(|error| ApiFailure::Presign(error.to_string()))?;

    tracing::info!(
        key = %key,
        bytes = request.size,
        content_type = format.mime_type(),
        "upload presigned"
    );
    let headers = presigned
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let ticket = UploadTicket {
        key,
        url: presigned.uri().to_owned(),
        method: presigned.method().to_owned(),
        headers,
        expires_in: u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX),
    };
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// The format of a declared media type, or why it is refused.
fn accepted_format(content_type: &str) -> Result<ImageFormat, ApiFailure> {
    if let Some(format) = ImageFormat::from_mime_type(content_type) {
        return Ok(format);
    }
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let message = match essence.as_str() {
        "image/heic" | "image/heif" | "image/heic-sequence" | "image/heif-sequence" => {
            "unsupported format: HEIC; convert the photo to JPEG before uploading".to_owned()
        }
        "image/avif" => "unsupported format: AVIF; convert the image to JPEG or PNG".to_owned(),
        "" => "the file's media type is unknown; upload a JPEG, PNG, GIF, WebP, BMP or TIFF image"
            .to_owned(),
        _ => format!(
            "{content_type:?} is not an image type the pipeline reads; upload a JPEG, PNG, \
             GIF, WebP, BMP or TIFF image"
        ),
    };
    Err(ApiFailure::UnsupportedType { message })
}

/// A new upload id: 13 digits of inverted milliseconds since 1970, so newer ids
/// sort first, and 12 hex digits of randomness, so ids made in the same
/// millisecond differ.
pub fn new_upload_id(now: SystemTime) -> String {
    let millis = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    let millis = u64::try_from(millis)
        .unwrap_or(u64::MAX)
        .min(INVERTED_TIME_BASE - 1);
    let inverted = INVERTED_TIME_BASE - 1 - millis;
    let random = match getrandom::u64() {
        Ok(random) => random,
        // No system randomness: a process-local hash still keeps ids apart.
        Err(_) => {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(now)
        }
    };
    format!("{inverted:013}-{:012x}", random & 0xffff_ffff_ffff)
}

/// The file name a source is stored under: the last component of `raw`, with
/// control and invisible characters removed, unusual ones replaced by `_`, cut to
/// [`MAX_FILE_NAME_BYTES`], never empty, never hidden, never named like a
/// variant, and ending in an extension (the format's, when `raw` has none that
/// names an image format).
pub fn safe_file_name(raw: &str, format: ImageFormat) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");

    let mut cleaned = String::with_capacity(last.len());
    for c in last.chars() {
        if c.is_control() || is_invisible(c) {
            continue;
        }
        let c = if c.is_whitespace() {
            ' '
        } else if c.is_alphanumeric() || " -_.,()[]'!&+@=".contains(c) {
            c
        } else {
            '_'
        };
        // One space or underscore where there were several.
        if (c == ' ' || c == '_') && cleaned.ends_with(c) {
            continue;
        }
        cleaned.push(c);
    }
    let cleaned = cleaned.trim_matches(|c: char| c == ' ' || c == '.' || c == '_');

    let (stem, extension) = match cleaned.rsplit_once('.') {
        Some((stem, extension))
            if ImageFormat::from_extension(extension).is_some() && !stem.is_empty() =>
        {
            (stem.trim_end_matches([' ', '.', '_']), extension.to_owned())
        }
        _ => (cleaned, format.extension().to_owned()),
    };
    let stem = if stem.is_empty() { "image" } else { stem };
    let stem = if stem.starts_with(VARIANT_PREFIX) {
        format!("{RENAMED_OUTPUT_PREFIX}{stem}")
    } else {
        stem.to_owned()
    };

    let room = MAX_FILE_NAME_BYTES - extension.len() - 1;
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end_matches([' ', '.', '_']);
    let stem = if stem.is_empty() { "image" } else { stem };
    format!("{stem}.{extension}")
}

/// Characters that change how a name displays without being seen: bidirectional
/// overrides (which can disguise an extension), zero-width characters, the byte
/// order mark, and other Unicode format characters of that kind.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_letters_spaces_and_parentheses() {
        assert_eq!(
            safe_file_name("summer trip (1).jpg", ImageFormat::Jpeg),
            "summer trip (1).jpg"
        );
        assert_eq!(
            safe_file_name("Grüße 日本.PNG", ImageFormat::Png),
            "Grüße 日本.PNG"
        );
    }

    #[test]
    fn paths_are_cut_to_their_last_component() {
        for raw in [
            "../../etc/passwd.jpg",
            "..\\..\\windows\\passwd.jpg",
            "/abs/passwd.jpg",
        ] {
            assert_eq!(
                safe_file_name(raw, ImageFormat::Jpeg),
                "passwd.jpg",
                "{raw}"
            );
        }
        assert_eq!(safe_file_name("..", ImageFormat::Jpeg), "image.jpg");
        assert_eq!(safe_file_name("a/..", ImageFormat::Png), "image.png");
        assert_eq!(safe_file_name("", ImageFormat::Gif), "image.gif");
        assert_eq!(
            safe_file_name(".hidden.jpg", ImageFormat::Jpeg),
            "hidden.jpg"
        );
    }

    #[test]
    fn control_and_invisible_characters_are_removed() {
        assert_eq!(
            safe_file_name("a\u{0}b\nc\t.jpg", ImageFormat::Jpeg),
            "abc.jpg"
        );
        // A right-to-left override that would display "photo\u{202E}gpj.exe" as
        // "photoexe.jpg".
        assert_eq!(
            safe_file_name("photo\u{202E}gpj.exe", ImageFormat::Jpeg),
            "photogpj.exe.jpg"
        );
        assert_eq!(
            safe_file_name("zero\u{200B}width.png", ImageFormat::Png),
            "zerowidth.png"
        );
    }

    #[test]
    fn unusual_characters_become_underscores() {
        assert_eq!(
            safe_file_name("what?*<>|\"%#{}.jpg", ImageFormat::Jpeg),
            "what.jpg"
        );
        assert_eq!(safe_file_name("a%2Fb.jpg", ImageFormat::Jpeg), "a_2Fb.jpg");
        assert_eq!(safe_file_name("a   b.jpg", ImageFormat::Jpeg), "a b.jpg");
    }

    #[test]
    fn names_get_an_image_extension() {
        assert_eq!(safe_file_name("scan", ImageFormat::Png), "scan.png");
        assert_eq!(safe_file_name("notes.v2", ImageFormat::Png), "notes.v2.png");
        assert_eq!(
            safe_file_name("photo.jpeg", ImageFormat::Jpeg),
            "photo.jpeg"
        );
    }

    #[test]
    fn names_never_look_like_output() {
        let name = safe_file_name("pixelated-8x8-cat.jpg", ImageFormat::Jpeg);
        assert_eq!(name, "upload-pixelated-8x8-cat.jpg");
        assert!(!pixelator_shared::layout::is_output_key(&format!(
            "uploads/x/{name}"
        )));
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary_keeping_the_extension() {
        let long = format!("{}.jpg", "é".repeat(300));
        let name = safe_file_name(&long, ImageFormat::Jpeg);
        assert!(name.len() <= MAX_FILE_NAME_BYTES, "{}", name.len());
        assert!(name.ends_with("é.jpg"), "{name}");
        let name = safe_file_name(&"x".repeat(5000), ImageFormat::Webp);
        assert_eq!(name.len(), MAX_FILE_NAME_BYTES);
        assert!(name.ends_with(".webp"));
    }

    #[test]
    fn ids_sort_newest_first_and_differ_within_a_millisecond() {
        let earlier = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let later = earlier + Duration::from_millis(1);
        let (old, new) = (new_upload_id(earlier), new_upload_id(later));
        assert!(new < old, "{new} should sort before {old}");
        assert_eq!(old.len(), 26);
        assert_ne!(new_upload_id(later), new_upload_id(later));
        assert!(old.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    }

    fn request(
        file_name: &str,
        content_type: &str,
        size: u64,
    ) -> Result<Json<UploadRequest>, JsonRejection> {
        Ok(Json(UploadRequest {
            file_name: file_name.to_owned(),
            content_type: content_type.to_owned(),
            size,
        }))
    }

    fn offline_state() -> ApiState {
        let keys = crate::s3::StaticKeys {
            access_key: "test".to_owned(),
            secret_key: "test-secret".to_owned(),
        };
        // Presigning is computed locally: nothing listens on this port.
        let s3 = crate::s3::client_for_endpoint("http://127.0.0.1:9", "us-east-1", &keys);
        ApiState::new(s3, std::sync::Arc::new(crate::config::Config::default()))
    }

    #[tokio::test]
    async fn the_presigned_put_signs_type_and_exact_length() {
        let (status, Json(ticket)) = create_upload(
            State(offline_state()),
            request("../Summer trip (1).JPG", "image/jpeg", 1361),
        )
        .await
        .unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(ticket.method, "PUT");
        assert_eq!(ticket.expires_in, 300);
        assert!(ticket.key.starts_with("uploads/"), "{}", ticket.key);
        assert!(
            ticket.key.ends_with("/Summer trip (1).JPG"),
            "{}",
            ticket.key
        );
        assert_eq!(ticket.key.matches('/').count(), 2, "{}", ticket.key);

        let signed = ticket
            .url
            .split(['?', '&'])
            .find_map(|part| part.strip_prefix("X-Amz-SignedHeaders="))
            .expect("signed headers in the URL");
        let signed: Vec<&str> = signed.split("%3B").collect();
        assert!(signed.contains(&"content-type"), "{signed:?}");
        assert!(signed.contains(&"content-length"), "{signed:?}");
        assert!(ticket.url.contains("X-Amz-Expires=300"), "{}", ticket.url);
        assert!(
            !ticket.url.to_ascii_lowercase().contains("x-amz-checksum"),
            "{}",
            ticket.url
        );

        let header = |name: &str| {
            ticket
                .headers
                .iter()
                .find(|(header, _)| header.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(header("content-type"), Some("image/jpeg"));
        assert_eq!(header("content-length"), Some("1361"));
    }

    #[tokio::test]
    async fn upload_requests_outside_the_limits_are_refused() {
        let limit = crate::config::Config::default().max_upload_bytes;
        for (request, code) in [
            (request("a.jpg", "image/jpeg", 0), "empty_file"),
            (request("a.jpg", "image/jpeg", limit + 1), "file_too_large"),
            (request("a.heic", "image/heic", 10), "unsupported_type"),
            (request("a.svg", "image/svg+xml", 10), "unsupported_type"),
        ] {
            let error = create_upload(State(offline_state()), request)
                .await
                .unwrap_err();
            assert_eq!(error.code(), code);
        }
        let (_, Json(ticket)) = create_upload(
            State(offline_state()),
            request("a.jpg", "image/jpeg", limit),
        )
        .await
        .unwrap();
        assert!(ticket.key.ends_with("/a.jpg"));
    }

    #[test]
    fn heic_is_refused_with_a_clear_message() {
        let error = accepted_format("image/heic").unwrap_err();
        assert_eq!(error.code(), "unsupported_type");
        assert!(error.to_string().contains("HEIC"), "{error}");
        assert_eq!(accepted_format("image/jpeg").unwrap(), ImageFormat::Jpeg);
        assert_eq!(accepted_format("IMAGE/PNG").unwrap(), ImageFormat::Png);
        assert!(accepted_format("text/html").is_err());
    }
}
