//! The checksums S3 clients send with uploads, computed while the bytes arrive.
//!
//! A client may send `Content-MD5`, one `x-amz-checksum-<algorithm>` header, or announce a
//! checksum in `x-amz-trailer` and send it after the last aws-chunked chunk (what current
//! AWS SDKs do by default for streaming bodies). The MD5 is always computed, because it is
//! the object's entity tag; the others only when the request names them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use serde::{Deserialize, Serialize};

/// The checksum algorithms of S3's flexible checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ChecksumKind {
    /// CRC-32 (ISO HDLC), the AWS SDKs' default.
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumKind {
    /// Every algorithm.
    pub(crate) const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// The header (or trailer) that carries this checksum.
    pub(crate) fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The algorithm's name in `x-amz-sdk-checksum-algorithm` and listings.
    pub(crate) fn algorithm(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The algorithm whose header (or trailer) is `name`, in any case.
    pub(crate) fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// The algorithm named `name` (`CRC32`, `sha256`, ...).
    pub(crate) fn from_algorithm(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.algorithm().eq_ignore_ascii_case(name.trim()))
    }
}

/// A verified checksum kept with an object or part: base64 of the digest, as S3 shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredChecksum {
    /// The algorithm.
    pub kind: ChecksumKind,
    /// Base64 of the big-endian digest.
    pub value: String,
}

/// Computes the MD5 and the requested checksums of a body, chunk by chunk.
pub(crate) struct BodyHasher {
    md5: Md5,
    others: ChecksumHasher,
}

impl BodyHasher {
    /// A hasher for the MD5 and the given algorithms.
    pub(crate) fn new(kinds: &[ChecksumKind]) -> Self {
        let mut others = ChecksumHasher::default();
        for kind in kinds {
            match kind {
                ChecksumKind::Crc32 => others.crc32 = Some(Crc32::new()),
                ChecksumKind::Crc32c => others.crc32c = Some(Crc32c::new()),
                ChecksumKind::Crc64Nvme => others.crc64nvme = Some(Crc64Nvme::new()),
                ChecksumKind::Sha1 => others.sha1 = Some(Sha1::new()),
                ChecksumKind::Sha256 => others.sha256 = Some(Sha256::new()),
            }
        }
        Self {
            md5: Md5::new(),
            others,
        }
    }

    /// Feeds the next bytes of the body.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.others.update(data);
    }

    /// The digests of everything fed.
    pub(crate) fn finish(self) -> BodyDigest {
        let sums = self.others.finalize();
        let checksums = [
            (ChecksumKind::Crc32, sums.checksum_crc32),
            (ChecksumKind::Crc32c, sums.checksum_crc32c),
            (ChecksumKind::Crc64Nvme, sums.checksum_crc64nvme),
            (ChecksumKind::Sha1, sums.checksum_sha1),
            (ChecksumKind::Sha256, sums.checksum_sha256),
        ]
        .into_iter()
        .filter_map(|(kind, value)| value.map(|value| StoredChecksum { kind, value }))
        .collect();
        BodyDigest {
            md5: self.md5.finalize(),
            checksums,
        }
    }
}

/// The digests of a received body.
#[derive(Debug, Clone)]
pub(crate) struct BodyDigest {
    /// MD5 of the body.
    pub md5: [u8; 16],
    /// The requested checksums, base64.
    pub checksums: Vec<StoredChecksum>,
}

impl BodyDigest {
    /// The computed checksum of one algorithm (base64), if it was requested.
    pub(crate) fn checksum(&self, kind: ChecksumKind) -> Option<&str> {
        self.checksums
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.value.as_str())
    }
}

/// What a `Content-MD5` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentMd5 {
    /// A well-formed digest.
    Digest([u8; 16]),
    /// Not base64 of 16 bytes (S3 answers `InvalidDigest`).
    Malformed,
}

impl ContentMd5 {
    /// Reads the header's value.
    pub(crate) fn parse(value: &str) -> Self {
        match BASE64.decode(value.trim()) {
            Ok(bytes) => <[u8; 16]>::try_from(bytes).map_or(Self::Malformed, Self::Digest),
            Err(_) => Self::Malformed,
        }
    }
}

/// Base64 (standard alphabet, padded) of bytes.
pub(crate) fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_the_values_s3_documents_for_known_input() {
        let mut hasher = BodyHasher::new(&[ChecksumKind::Crc32, ChecksumKind::Sha256]);
        hasher.update(b"Hello ");
        hasher.update(b"world");
        let digest = hasher.finish();
        // MD5 and CRC-32 of "Hello world" as published by common tools.
        assert_eq!(
            crate::embedded::store::hex(&digest.md5),
            "3e25960a79dbc69b674cd4ec67a72c62"
        );
        assert_eq!(
            digest.checksum(ChecksumKind::Crc32),
            Some(base64(&0x8bd6_9e52_u32.to_be_bytes()).as_str())
        );
        assert!(digest.checksum(ChecksumKind::Sha256).is_some());
        assert_eq!(digest.checksum(ChecksumKind::Crc32c), None);
    }

    #[test]
    fn header_and_algorithm_names_round_trip() {
        for kind in ChecksumKind::ALL {
            assert_eq!(
                ChecksumKind::from_header_name(kind.header_name()),
                Some(kind)
            );
            assert_eq!(ChecksumKind::from_algorithm(kind.algorithm()), Some(kind));
        }
        assert_eq!(
            ChecksumKind::from_header_name("X-Amz-Checksum-CRC32C"),
            Some(ChecksumKind::Crc32c)
        );
        assert_eq!(ChecksumKind::from_header_name("x-amz-meta-crc32"), None);
    }

    #[test]
    fn content_md5_must_be_base64_of_sixteen_bytes() {
        assert_eq!(
            ContentMd5::parse("1B2M2Y8AsgTpgAmY7PhCfg=="),
            ContentMd5::Digest(s3s::crypto::Md5::checksum(b""))
        );
        assert_eq!(ContentMd5::parse("not base64!"), ContentMd5::Malformed);
        assert_eq!(ContentMd5::parse("AAAA"), ContentMd5::Malformed);
    }
}
