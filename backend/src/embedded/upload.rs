//! Receiving the bytes of an upload (PutObject, PostObject, UploadPart) into a temp file, and
//! deciding whether they are the bytes the client meant to send.
//!
//! By the time a body reaches this module, s3s has checked the request's signature and wrapped
//! the body so that it checks, while it is read, what the signature covers: the SHA-256 of a
//! signed single-chunk payload, and the chunk and trailer signatures of `aws-chunked`
//! payloads (which it decodes). Its stream errors carry no type we can name, so they are
//! recognised by their text. What s3s leaves to us, and this module does: the length (the
//! declared `Content-Length`, or `x-amz-decoded-content-length` for aws-chunked bodies),
//! `Content-MD5`, and the `x-amz-checksum-*` values, sent as headers or as aws-chunked
//! trailers. Whatever fails, the temp file is removed and nothing becomes visible.

use futures::StreamExt as _;
use http::HeaderMap;
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3ErrorCode, TrailingHeaders, s3_error};
use serde::Serialize;
use tokio::io::{AsyncWriteExt as _, BufWriter};

use super::checksum::{BodyDigest, BodyHasher, ChecksumKind, ContentMd5, StoredChecksum};
use super::store::{Store, TempFile, footer_bytes, hex};

/// Size of the write buffer between the request body and the temp file.
const WRITE_BUFFER: usize = 256 * 1024;

/// What the request says its body is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    /// Exact length of the (decoded) body.
    pub length: u64,
    /// `Content-MD5`, base64.
    pub content_md5: Option<String>,
    /// `x-amz-checksum-*` headers (or POST form fields), base64.
    pub checksums: Vec<(ChecksumKind, String)>,
    /// The checksum announced in `x-amz-trailer`, to arrive after the last chunk.
    pub trailer: Option<ChecksumKind>,
    /// `x-amz-sdk-checksum-algorithm` without a value: computed and kept.
    pub algorithm: Option<ChecksumKind>,
}

impl Expected {
    /// Reads the announced trailer from the request headers.
    pub(crate) fn with_trailer_from(mut self, headers: &HeaderMap) -> Self {
        self.trailer = headers
            .get("x-amz-trailer")
            .and_then(|value| value.to_str().ok())
            .and_then(|names| names.split(',').find_map(ChecksumKind::from_header_name));
        self
    }

    fn kinds(&self) -> Vec<ChecksumKind> {
        let mut kinds: Vec<ChecksumKind> = self.checksums.iter().map(|(kind, _)| *kind).collect();
        kinds.extend(self.trailer);
        kinds.extend(self.algorithm);
        kinds.dedup();
        kinds
    }
}

/// A body received and verified, in a temp file still open for the footer.
#[derive(Debug)]
pub(crate) struct Received {
    temp: TempFile,
    writer: BufWriter<tokio::fs::File>,
    /// Length of the body.
    pub size: u64,
    /// Its digests.
    pub digest: BodyDigest,
    /// The checksum to keep with the object: the one the client sent or asked for.
    pub checksum: Option<StoredChecksum>,
}

impl Received {
    /// S3's entity tag of a single-part body: MD5 hex.
    pub(crate) fn etag(&self) -> String {
        hex(&self.digest.md5)
    }

    /// Appends the footer and syncs the file, ready to be committed.
    pub(crate) async fn seal<T: Serialize>(self, footer: &T) -> Result<TempFile, S3Error> {
        let Self {
            temp, mut writer, ..
        } = self;
        writer
            .write_all(&footer_bytes(footer))
            .await
            .map_err(S3Error::internal_error)?;
        writer.flush().await.map_err(S3Error::internal_error)?;
        writer
            .get_ref()
            .sync_all()
            .await
            .map_err(S3Error::internal_error)?;
        Ok(temp)
    }
}

/// Streams a body into a new temp file, checking its length and checksums.
pub(crate) async fn receive(
    store: &Store,
    body: Option<StreamingBlob>,
    expected: &Expected,
    trailers: Option<&TrailingHeaders>,
) -> Result<Received, S3Error> {
    let temp = store.temp_file();
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp.path())
        .await
        .map_err(S3Error::internal_error)?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hasher = BodyHasher::new(&expected.kinds());

    let mut size = 0_u64;
    if let Some(mut body) = body {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| body_error(&*error))?;
            size += chunk.len() as u64;
            if size > expected.length {
                return Err(s3_error!(
                    IncompleteBody,
                    "the body is longer than its declared length of {} bytes",
                    expected.length
                ));
            }
            hasher.update(&chunk);
            writer
                .write_all(&chunk)
                .await
                .map_err(S3Error::internal_error)?;
        }
    }
    if size != expected.length {
        return Err(s3_error!(
            IncompleteBody,
            "you did not provide the number of bytes specified by the Content-Length HTTP header"
        ));
    }

    let digest = hasher.finish();
    let checksum = verify(expected, &digest, trailers)?;
    Ok(Received {
        temp,
        writer,
        size,
        digest,
        checksum,
    })
}

/// Compares what the client declared with what arrived.
fn verify(
    expected: &Expected,
    digest: &BodyDigest,
    trailers: Option<&TrailingHeaders>,
) -> Result<Option<StoredChecksum>, S3Error> {
    if let Some(content_md5) = &expected.content_md5 {
        match ContentMd5::parse(content_md5) {
            ContentMd5::Digest(md5) if md5 == digest.md5 => {}
            ContentMd5::Digest(_) => {
                return Err(s3_error!(
                    BadDigest,
                    "The Content-MD5 you specified did not match what we received."
                ));
            }
            ContentMd5::Malformed => {
                return Err(s3_error!(
                    InvalidDigest,
                    "The Content-MD5 you specified is not valid."
                ));
            }
        }
    }

    let mut kept = None;
    for (kind, sent) in &expected.checksums {
        check_checksum(*kind, sent, digest)?;
        kept.get_or_insert_with(|| StoredChecksum {
            kind: *kind,
            value: sent.trim().to_owned(),
        });
    }

    if let Some(kind) = expected.trailer {
        let sent = trailers
            .and_then(|t| {
                t.read(|headers| {
                    headers
                        .get(kind.header_name())
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                })
            })
            .flatten()
            .ok_or_else(|| {
                s3_error!(
                    IncompleteBody,
                    "the trailing {} announced in x-amz-trailer did not arrive",
                    kind.header_name()
                )
            })?;
        check_checksum(kind, &sent, digest)?;
        kept.get_or_insert_with(|| StoredChecksum {
            kind,
            value: sent.trim().to_owned(),
        });
    }

    if kept.is_none()
        && let Some(kind) = expected.algorithm
        && let Some(value) = digest.checksum(kind)
    {
        kept = Some(StoredChecksum {
            kind,
            value: value.to_owned(),
        });
    }
    Ok(kept)
}

fn check_checksum(kind: ChecksumKind, sent: &str, digest: &BodyDigest) -> Result<(), S3Error> {
    let computed = digest.checksum(kind).ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InternalError, "checksum was not computed")
    })?;
    if computed == sent.trim() {
        return Ok(());
    }
    Err(S3Error::with_message(
        S3ErrorCode::BadDigest,
        format!(
            "The {} you specified did not match the calculated checksum.",
            kind.algorithm()
        ),
    ))
}

/// Turns an error of the request body stream into S3's answer. s3s's verifying streams are
/// private types, so their errors are recognised by the names in their messages.
fn body_error(error: &(dyn std::error::Error + 'static)) -> S3Error {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }

    if text.contains("Sha256Mismatch") {
        let mut err = S3Error::with_message(
            S3ErrorCode::from_bytes(b"XAmzContentSHA256Mismatch")
                .expect("unknown codes become custom codes"),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        err.set_status_code(http::StatusCode::BAD_REQUEST);
        return err;
    }
    if text.contains("SignatureMismatch") {
        return s3_error!(
            SignatureDoesNotMatch,
            "The chunk signature we calculated does not match the signature you provided."
        );
    }
    if text.contains("LengthMismatch") || text.contains("Incomplete") {
        return s3_error!(
            IncompleteBody,
            "The request body ended before or after its declared length."
        );
    }
    if text.contains("AwsChunkedStreamError") {
        return s3_error!(InvalidRequest, "malformed aws-chunked body: {text}");
    }
    s3_error!(IncompleteBody, "the request body could not be read: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::checksum::base64;

    fn digest_of(data: &[u8], kinds: &[ChecksumKind]) -> BodyDigest {
        let mut hasher = BodyHasher::new(kinds);
        hasher.update(data);
        hasher.finish()
    }

    #[test]
    fn content_md5_mismatch_is_bad_digest_and_garbage_is_invalid_digest() {
        let digest = digest_of(b"data", &[]);
        let right = Expected {
            content_md5: Some(base64(&digest.md5)),
            ..Expected::default()
        };
        assert!(verify(&right, &digest, None).is_ok());

        let wrong = Expected {
            content_md5: Some(base64(&[0; 16])),
            ..Expected::default()
        };
        assert_eq!(
            *verify(&wrong, &digest, None).unwrap_err().code(),
            S3ErrorCode::BadDigest
        );

        let garbage = Expected {
            content_md5: Some("xyz".into()),
            ..Expected::default()
        };
        assert_eq!(
            *verify(&garbage, &digest, None).unwrap_err().code(),
            S3ErrorCode::InvalidDigest
        );
    }

    #[test]
    fn header_checksum_is_checked_and_kept() {
        let digest = digest_of(b"data", &[ChecksumKind::Sha256]);
        let value = digest.checksum(ChecksumKind::Sha256).unwrap().to_owned();
        let right = Expected {
            checksums: vec![(ChecksumKind::Sha256, value.clone())],
            ..Expected::default()
        };
        let kept = verify(&right, &digest, None).unwrap().unwrap();
        assert_eq!(
            kept,
            StoredChecksum {
                kind: ChecksumKind::Sha256,
                value
            }
        );

        let wrong = Expected {
            checksums: vec![(ChecksumKind::Sha256, base64(&[0; 32]))],
            ..Expected::default()
        };
        assert_eq!(
            *verify(&wrong, &digest, None).unwrap_err().code(),
            S3ErrorCode::BadDigest
        );
    }

    #[test]
    fn announced_trailer_that_never_arrives_is_refused() {
        let digest = digest_of(b"data", &[ChecksumKind::Crc32]);
        let expected = Expected {
            trailer: Some(ChecksumKind::Crc32),
            ..Expected::default()
        };
        assert_eq!(
            *verify(&expected, &digest, None).unwrap_err().code(),
            S3ErrorCode::IncompleteBody
        );
    }

    #[test]
    fn trailer_is_read_from_the_x_amz_trailer_header() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-trailer", "x-amz-checksum-crc32c".parse().unwrap());
        let expected = Expected::default().with_trailer_from(&headers);
        assert_eq!(expected.trailer, Some(ChecksumKind::Crc32c));
    }
}
