//! The embedded S3 server driven by the real AWS SDK client and by plain HTTP: keys, listings,
//! multipart uploads, copies, conditional requests, checksums, presigned URLs (case C23),
//! POST uploads, CORS, event notifications (cases C01, C06, C07) and restarts.

// Helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod embedded_s3_support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete, EncodingType,
    MetadataDirective, ObjectIdentifier,
};
use embedded_s3_support::*;
use serde_json::Value;

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

#[tokio::test]
async fn configured_buckets_exist_at_start_and_others_can_be_created() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;

    let listed = s3.client.list_buckets().send().await.unwrap();
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, [PROCESSED, SOURCE]);
    s3.client.head_bucket().bucket(SOURCE).send().await.unwrap();

    let again = s3
        .client
        .create_bucket()
        .bucket(SOURCE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&again).as_deref(),
        Some("BucketAlreadyOwnedByYou")
    );
    s3.client
        .create_bucket()
        .bucket("scratch")
        .send()
        .await
        .unwrap();
    s3.client
        .head_bucket()
        .bucket("scratch")
        .send()
        .await
        .unwrap();

    let missing = s3
        .client
        .head_bucket()
        .bucket("no-such-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_status(&missing), Some(404));
    s3.server.shutdown().await;
}

#[tokio::test]
async fn odd_keys_round_trip_exactly_and_list_exactly() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let long_ascii = "k".repeat(1024);
    let long_unicode = "é".repeat(512);
    let keys = [
        "uploads/summer trip (1).jpg",
        "a+b",
        "100%",
        "%2F",
        "ünïcödé/ファイル.png",
        "a//b",
        "../escape",
        "a/../b",
        "..",
        "/leading",
        "trailing/",
        "/",
        "?query#fragment&x=1",
        "tab\tand~tilde",
        long_ascii.as_str(),
        long_unicode.as_str(),
    ];

    for (i, key) in keys.iter().enumerate() {
        s3.client
            .put_object()
            .bucket(SOURCE)
            .key(*key)
            .body(ByteStream::from(format!("object {i}").into_bytes()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            get_bytes(&s3.client, SOURCE, key).await,
            format!("object {i}").as_bytes()
        );
    }

    let listed = all_keys(&s3.client, SOURCE).await;
    let mut expected: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "listed in UTF-8 byte order, each key exactly once"
    );
    assert!(
        all_keys(&s3.client, PROCESSED).await.is_empty(),
        "no key reaches another bucket"
    );
    s3.server.shutdown().await;
}

#[tokio::test]
async fn key_longer_than_1024_bytes_is_refused() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let error = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key("k".repeat(1025))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&error).as_deref(), Some("KeyTooLongError"));
    assert_eq!(error_status(&error), Some(400));
    assert!(all_keys(&s3.client, SOURCE).await.is_empty());
    s3.server.shutdown().await;
}

async fn put_keys(s3: &TestS3, keys: &[&str]) {
    for key in keys {
        s3.client
            .put_object()
            .bucket(SOURCE)
            .key(*key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn listing_paginates_with_continuation_tokens_start_after_and_prefix() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let keys: Vec<String> = (0..23).map(|i| format!("p/{i:02}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).chain(["q/other"]).collect();
    put_keys(&s3, &refs).await;

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .client
            .list_objects_v2()
            .bucket(SOURCE)
            .prefix("p/")
            .max_keys(5)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.key_count().unwrap() <= 5);
        assert_eq!(page.continuation_token(), token.as_deref());
        seen.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
        match page.next_continuation_token() {
            Some(next) => {
                assert_eq!(page.is_truncated(), Some(true));
                token = Some(next.to_owned());
            }
            None => {
                assert_eq!(page.is_truncated(), Some(false));
                break;
            }
        }
    }
    assert_eq!(seen, keys);
    assert_eq!(pages, 5);

    let after = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .start_after("p/20")
        .send()
        .await
        .unwrap();
    let after: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(after, ["p/21", "p/22", "q/other"]);

    let object = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .prefix("q/")
        .send()
        .await
        .unwrap();
    let object = &object.contents()[0];
    assert_eq!(object.size(), Some(1));
    assert_eq!(
        object.e_tag(),
        Some(format!("\"{}\"", md5_hex(b"x")).as_str())
    );
    assert!(object.last_modified().is_some());

    let bad = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .continuation_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&bad).as_deref(), Some("InvalidArgument"));
    s3.server.shutdown().await;
}

#[tokio::test]
async fn listing_rolls_up_common_prefixes_at_the_delimiter_across_pages() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    put_keys(&s3, &["a/1", "a/2", "a/b/3", "b", "c/1", "c/", "d"]).await;

    let page = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    let keys: Vec<&str> = page.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(prefixes, ["a/", "c/"]);
    assert_eq!(keys, ["b", "d"]);
    assert_eq!(page.key_count(), Some(4));

    let inner = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = inner
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    let keys: Vec<&str> = inner.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(prefixes, ["a/b/"]);
    assert_eq!(keys, ["a/1", "a/2"]);

    // One entry per page: every prefix and key once, in order.
    let mut entries = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .client
            .list_objects_v2()
            .bucket(SOURCE)
            .delimiter("/")
            .max_keys(1)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        entries.extend(
            page.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned)),
        );
        entries.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(entries, ["a/", "b", "c/", "d"]);
    s3.server.shutdown().await;
}

#[tokio::test]
async fn listing_with_url_encoding_encodes_keys_prefixes_and_delimiter() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    put_keys(&s3, &["dir one/é+%.txt", "dir one/sub dir/x", "plain"]).await;

    let page = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .prefix("dir one/")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = page.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["dir+one/%C3%A9%2B%25.txt"]);
    assert_eq!(prefixes, ["dir+one/sub+dir/"]);
    assert_eq!(page.prefix(), Some("dir+one/"));
    assert_eq!(page.delimiter(), Some("/"));
    assert_eq!(page.encoding_type(), Some(&EncodingType::Url));

    let plain = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .prefix("dir one/")
        .send()
        .await
        .unwrap();
    let plain: Vec<&str> = plain.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        plain,
        ["dir one/sub dir/x", "dir one/é+%.txt"],
        "not encoded unless asked"
    );
    s3.server.shutdown().await;
}

#[tokio::test]
async fn list_objects_v1_pages_with_markers() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    put_keys(&s3, &["a", "b/1", "b/2", "c"]).await;

    let first = s3
        .client
        .list_objects()
        .bucket(SOURCE)
        .max_keys(2)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = first.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a", "b/1"]);
    assert_eq!(first.is_truncated(), Some(true));
    let rest = s3
        .client
        .list_objects()
        .bucket(SOURCE)
        .marker("b/1")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = rest.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b/2", "c"]);
    assert_eq!(rest.is_truncated(), Some(false));

    let rolled = s3
        .client
        .list_objects()
        .bucket(SOURCE)
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = rolled
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["b/"]);
    assert_eq!(rolled.next_marker(), Some("b/"));
    let after = s3
        .client
        .list_objects()
        .bucket(SOURCE)
        .delimiter("/")
        .marker("b/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["c"]);
    assert!(after.common_prefixes().is_empty());
    s3.server.shutdown().await;
}

#[tokio::test]
async fn put_keeps_content_type_and_user_metadata_and_answers_the_md5_etag() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let put = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key("uploads/octet.png")
        .content_type("application/octet-stream")
        .metadata("source-etag", "abc123")
        .cache_control("max-age=60")
        .body(ByteStream::from(case_file("c22-octet-stream.png")))
        .send()
        .await
        .unwrap();
    let etag = format!("\"{}\"", md5_hex(&case_file("c22-octet-stream.png")));
    assert_eq!(put.e_tag(), Some(etag.as_str()));

    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("uploads/octet.png")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/octet-stream"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(
        head.content_length(),
        Some(case_file("c22-octet-stream.png").len() as i64)
    );
    assert_eq!(
        head.metadata()
            .unwrap()
            .get("source-etag")
            .map(String::as_str),
        Some("abc123")
    );

    let missing = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_status(&missing), Some(404));
    let missing = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&missing).as_deref(), Some("NoSuchKey"));
    s3.server.shutdown().await;
}

#[tokio::test]
async fn ranged_get_and_head_return_partial_content() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let data: Vec<u8> = (0..=255).collect();
    s3.client
        .put_object()
        .bucket(SOURCE)
        .key("r")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();

    let part = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("r")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(part.content_range(), Some("bytes 10-19/256"));
    assert_eq!(part.content_length(), Some(10));
    assert_eq!(
        part.body.collect().await.unwrap().into_bytes().as_ref(),
        &data[10..20]
    );

    let tail = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("r")
        .range("bytes=-6")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tail.body.collect().await.unwrap().into_bytes().as_ref(),
        &data[250..]
    );

    let beyond = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("r")
        .range("bytes=300-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_status(&beyond), Some(416));
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("r")
        .range("bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(10));
    assert_eq!(head.content_range(), Some("bytes 0-9/256"));
    let presigned = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("r")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let ranged = http
        .head(presigned.uri())
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    let whole = http.head(presigned.uri()).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    s3.server.shutdown().await;
}

#[tokio::test]
async fn conditional_get_and_head_answer_304_and_412_as_s3_does() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    s3.client
        .put_object()
        .bucket(SOURCE)
        .key("c")
        .body(ByteStream::from_static(b"v1"))
        .send()
        .await
        .unwrap();
    let etag = format!("\"{}\"", md5_hex(b"v1"));
    let past =
        aws_sdk_s3::primitives::DateTime::from(SystemTime::now() - Duration::from_secs(3600));
    let future =
        aws_sdk_s3::primitives::DateTime::from(SystemTime::now() + Duration::from_secs(3600));

    let get = || s3.client.get_object().bucket(SOURCE).key("c");
    let head = || s3.client.head_object().bucket(SOURCE).key("c");

    assert!(get().if_match(&etag).send().await.is_ok());
    assert_eq!(
        error_status(&get().if_match("\"0000\"").send().await.unwrap_err()),
        Some(412)
    );
    assert_eq!(
        error_status(&head().if_match("\"0000\"").send().await.unwrap_err()),
        Some(412)
    );
    assert_eq!(
        error_status(&get().if_none_match(&etag).send().await.unwrap_err()),
        Some(304)
    );
    assert_eq!(
        error_status(&head().if_none_match(&etag).send().await.unwrap_err()),
        Some(304)
    );
    assert_eq!(
        error_status(&get().if_none_match("*").send().await.unwrap_err()),
        Some(304)
    );
    assert!(get().if_none_match("\"0000\"").send().await.is_ok());
    assert_eq!(
        error_status(&get().if_modified_since(future).send().await.unwrap_err()),
        Some(304)
    );
    assert!(get().if_modified_since(past).send().await.is_ok());
    assert_eq!(
        error_status(&get().if_unmodified_since(past).send().await.unwrap_err()),
        Some(412)
    );
    assert!(get().if_unmodified_since(future).send().await.is_ok());
    // If-Match that holds wins over If-Unmodified-Since that does not.
    assert!(
        get()
            .if_match(&etag)
            .if_unmodified_since(past)
            .send()
            .await
            .is_ok()
    );
    // If-None-Match that fails wins over If-Modified-Since that holds.
    let both = get()
        .if_none_match(&etag)
        .if_modified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_status(&both), Some(304));
    let not_modified = error_status(&head().if_modified_since(future).send().await.unwrap_err());
    assert_eq!(not_modified, Some(304));
    s3.server.shutdown().await;
}

#[tokio::test]
async fn put_with_if_none_match_star_refuses_to_overwrite() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let put = |body: &'static [u8]| {
        s3.client
            .put_object()
            .bucket(SOURCE)
            .key("once")
            .if_none_match("*")
            .body(ByteStream::from_static(body))
    };
    put(b"first").send().await.unwrap();
    let refused = put(b"second").send().await.unwrap_err();
    assert_eq!(error_status(&refused), Some(412));
    assert_eq!(error_code(&refused).as_deref(), Some("PreconditionFailed"));
    assert_eq!(get_bytes(&s3.client, SOURCE, "once").await, b"first");

    s3.next_event().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s3.assert_no_event();
    assert_eq!(temp_files(dir.path()), 0);
    s3.server.shutdown().await;
}

#[tokio::test]
async fn checksum_mismatch_is_refused_and_leaves_nothing() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let body = b"the bytes that were meant";

    let wrong_crc = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key("bad-crc")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&wrong_crc).as_deref(), Some("BadDigest"));
    assert_eq!(error_status(&wrong_crc), Some(400));

    let wrong_md5 = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key("bad-md5")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&wrong_md5).as_deref(), Some("BadDigest"));

    let wrong_sha = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key("bad-sha")
        .checksum_sha256("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&wrong_sha).as_deref(), Some("BadDigest"));

    for key in ["bad-crc", "bad-md5", "bad-sha"] {
        let head = s3
            .client
            .head_object()
            .bucket(SOURCE)
            .key(key)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_status(&head), Some(404), "{key}");
    }
    assert!(all_keys(&s3.client, SOURCE).await.is_empty());
    assert_eq!(temp_files(dir.path()), 0);
    s3.assert_no_event();

    // The right values are accepted and the checksum is given back on request.
    let md5 = {
        use base64::Engine as _;
        use s3s::crypto::{Checksum as _, Md5};
        base64::engine::general_purpose::STANDARD.encode(Md5::checksum(body))
    };
    s3.client
        .put_object()
        .bucket(SOURCE)
        .key("good")
        .content_md5(md5)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
    let got = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("good")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert!(got.checksum_sha256().is_some());
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body
    );
    s3.server.shutdown().await;
}

#[tokio::test]
async fn streaming_upload_with_trailing_checksum_is_stored_decoded() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    // A file body makes the SDK stream it: aws-chunked with a trailing CRC32.
    let data: Vec<u8> = (0..300_000_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let put = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key("streamed.bin")
        .content_type("application/x-test")
        .body(ByteStream::from_path(&file).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert!(
        put.checksum_crc32().is_some(),
        "the trailing checksum was read and kept"
    );

    let got = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("streamed.bin")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(data.len() as i64));
    assert_eq!(got.content_encoding(), None, "aws-chunked is not kept");
    assert_eq!(got.checksum_crc32(), put.checksum_crc32());
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        data.as_slice()
    );
    s3.server.shutdown().await;
}

/// Sends a signed aws-chunked PUT (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) in two chunks, built
/// with aws-sigv4 as a client would; `tamper` alters the second chunk after signing.
async fn signed_chunked_put(
    endpoint: &str,
    key: &str,
    data: &[u8],
    tamper: bool,
) -> reqwest::Response {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;

    let now = SystemTime::now();
    let credentials =
        aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    let identity = credentials.into();
    let params = || {
        v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
    };

    let chunks: Vec<&[u8]> = vec![&data[..data.len() / 2], &data[data.len() / 2..], &[]];
    let mut signature_len = 0;
    let encoded_len: usize = chunks
        .iter()
        .map(|c| {
            signature_len = 64;
            format!("{:x}", c.len()).len()
                + ";chunk-signature=".len()
                + signature_len
                + 2
                + c.len()
                + 2
        })
        .sum();

    let url = format!("{endpoint}/{SOURCE}/{key}");
    let host = endpoint.trim_start_matches("http://").to_owned();
    let mut request = http::Request::builder()
        .method("PUT")
        .uri(&url)
        .header("host", &host)
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", data.len().to_string())
        .header("content-length", encoded_len.to_string())
        .header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        .body(())
        .unwrap();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let signable = SignableRequest::new(
        "PUT",
        url.as_str(),
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()),
    )
    .unwrap();
    let (instructions, seed) = sign(signable, &params().into()).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);

    let chunk_params = params();
    let mut body = Vec::new();
    let mut previous = seed;
    for chunk in chunks {
        let signature = v4::sign_chunk(
            &bytes::Bytes::copy_from_slice(chunk),
            &previous,
            &chunk_params,
        )
        .unwrap()
        .into_parts()
        .1;
        let mut sent = chunk.to_vec();
        if tamper && !sent.is_empty() && !body.is_empty() {
            sent[0] ^= 0xff;
        }
        body.extend_from_slice(
            format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
        );
        body.extend_from_slice(&sent);
        body.extend_from_slice(b"\r\n");
        previous = signature;
    }
    assert_eq!(body.len(), encoded_len);

    let mut sent = reqwest::Client::new().put(&url).body(body);
    for (name, value) in request.headers() {
        if name != "host" && name != "content-length" {
            sent = sent.header(name.as_str(), value.to_str().unwrap());
        }
    }
    sent.send().await.unwrap()
}

#[tokio::test]
async fn signed_aws_chunked_upload_is_decoded_and_a_tampered_chunk_is_refused() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let data: Vec<u8> = (0..100_000_u32).map(|i| (i % 251) as u8).collect();

    let accepted = signed_chunked_put(&s3.server.endpoint(), "chunked.bin", &data, false).await;
    assert_eq!(accepted.status(), 200, "{}", accepted.text().await.unwrap());
    assert_eq!(get_bytes(&s3.client, SOURCE, "chunked.bin").await, data);
    s3.next_event().await;

    let refused = signed_chunked_put(&s3.server.endpoint(), "tampered.bin", &data, true).await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("<Code>SignatureDoesNotMatch</Code>")
    );
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("tampered.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_status(&head), Some(404));
    assert_eq!(temp_files(dir.path()), 0);
    s3.assert_no_event();
    s3.server.shutdown().await;
}

#[tokio::test]
async fn unsigned_or_wrongly_signed_requests_are_refused() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;

    let anonymous = reqwest::get(format!("{}/{SOURCE}/anything", s3.server.endpoint()))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);
    assert!(
        anonymous
            .text()
            .await
            .unwrap()
            .contains("<Code>AccessDenied</Code>")
    );

    let wrong_secret = client(&s3.server.endpoint(), "not-the-secret");
    let error = wrong_secret
        .list_objects_v2()
        .bucket(SOURCE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&error).as_deref(), Some("SignatureDoesNotMatch"));
    assert_eq!(error_status(&error), Some(403));
    s3.server.shutdown().await;
}

/// A presigned PUT URL for `key`, signed for this content type and length.
async fn presign_put(
    s3: &TestS3,
    key: &str,
    content_type: &str,
    length: usize,
    presigning: PresigningConfig,
) -> String {
    let presigned = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key(key)
        .content_type(content_type)
        .content_length(length as i64)
        .presigned(presigning)
        .await
        .unwrap();
    let signed: BTreeSet<String> = presigned
        .uri()
        .split_once("X-Amz-SignedHeaders=")
        .map(|(_, rest)| {
            rest.split('&')
                .next()
                .unwrap()
                .split("%3B")
                .map(str::to_owned)
                .collect()
        })
        .unwrap();
    assert!(
        signed.contains("content-type") && signed.contains("content-length"),
        "{signed:?}"
    );
    presigned.uri().to_owned()
}

#[tokio::test]
async fn c23_presigned_put_is_refused_for_another_type_length_or_after_expiry() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let scenario: Value = serde_json::from_slice(&case_file("c23-presign-scenario.json")).unwrap();
    let key = scenario["key"].as_str().unwrap();
    let file = case_file(scenario["file"].as_str().unwrap());
    let signed_type = scenario["presign"]["content_type"].as_str().unwrap();
    let lifetime = Duration::from_secs(scenario["presign"]["expires_in_seconds"].as_u64().unwrap());
    let http = reqwest::Client::new();

    // Refusals first, so that the object can only come from the matching attempt.
    for attempt in scenario["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["expect_status"] != 200)
    {
        let content_type = attempt["headers"]["Content-Type"].as_str().unwrap();
        let body = if attempt["body"].as_str().unwrap().contains("multipart form") {
            let mut form = b"------x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c23-upload.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
            form.extend_from_slice(&file);
            form.extend_from_slice(b"\r\n------x--\r\n");
            form
        } else {
            file.clone()
        };
        // Sending 301 s after signing a 300 s URL is signing it 301 s ago.
        let start = SystemTime::now()
            - Duration::from_secs(attempt["send_after_seconds"].as_u64().unwrap_or(0));
        let presigning = PresigningConfig::builder()
            .start_time(start)
            .expires_in(lifetime)
            .build()
            .unwrap();
        let url = presign_put(&s3, key, signed_type, file.len(), presigning).await;

        let response = http
            .put(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let name = attempt["name"].as_str().unwrap();
        assert_eq!(
            u64::from(status),
            attempt["expect_status"].as_u64().unwrap(),
            "{name}: {text}"
        );
        let code = attempt["expect_error_code"].as_str().unwrap();
        assert!(
            text.contains(&format!("<Code>{code}</Code>")),
            "{name}: {text}"
        );
    }

    // The right type but another length than signed.
    let presigning = PresigningConfig::expires_in(lifetime).unwrap();
    let url = presign_put(&s3, key, signed_type, file.len(), presigning).await;
    let mut longer = file.clone();
    longer.push(0);
    let response = http
        .put(&url)
        .header("content-type", signed_type)
        .body(longer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<Code>SignatureDoesNotMatch</Code>")
    );

    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_status(&head),
        Some(404),
        "no refused attempt stored anything"
    );
    assert_eq!(temp_files(dir.path()), 0);
    s3.assert_no_event();

    let matching = scenario["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["expect_status"] == 200)
        .unwrap();
    let presigning = PresigningConfig::expires_in(lifetime).unwrap();
    let url = presign_put(&s3, key, signed_type, file.len(), presigning).await;
    let response = http
        .put(&url)
        .header(
            "content-type",
            matching["headers"]["Content-Type"].as_str().unwrap(),
        )
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["etag"],
        format!("\"{}\"", md5_hex(&file)).as_str()
    );

    let event = s3.next_event().await;
    assert_eq!(event["Records"][0]["eventName"], "ObjectCreated:Put");
    assert_eq!(event["Records"][0]["s3"]["object"]["key"], key);
    assert_eq!(event["Records"][0]["s3"]["object"]["size"], file.len());
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some(signed_type));
    assert_eq!(get_bytes(&s3.client, SOURCE, key).await, file);
    s3.server.shutdown().await;
}

#[tokio::test]
async fn presigned_get_reads_the_object_and_expires() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    s3.client
        .put_object()
        .bucket(SOURCE)
        .key("a b.jpg")
        .body(ByteStream::from_static(b"jpeg"))
        .send()
        .await
        .unwrap();

    let fresh = PresigningConfig::expires_in(Duration::from_secs(60)).unwrap();
    let url = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("a b.jpg")
        .presigned(fresh)
        .await
        .unwrap();
    let response = reqwest::get(url.uri()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"jpeg");

    let old = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(120))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("a b.jpg")
        .presigned(old)
        .await
        .unwrap();
    let response = reqwest::get(url.uri()).await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<Code>AccessDenied</Code>")
    );
    s3.server.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_is_answered_for_the_web_origin_only() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/{SOURCE}/uploads/x.jpg?X-Amz-Signature=abc",
        s3.server.endpoint()
    );
    let preflight = |origin: &str, method: &str, headers: &str| {
        http.request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .send()
    };

    let allowed = preflight(WEB_ORIGIN, "PUT", "content-type").await.unwrap();
    assert_eq!(allowed.status(), 200);
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], WEB_ORIGIN);
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PUT")
    );
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type")
    );

    for (origin, method, requested) in [
        ("http://evil.example", "PUT", "content-type"),
        (WEB_ORIGIN, "DELETE", "content-type"),
        (WEB_ORIGIN, "PUT", "content-type,x-amz-acl"),
    ] {
        let refused = preflight(origin, method, requested).await.unwrap();
        assert_eq!(refused.status(), 403, "{origin} {method} {requested}");
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }

    s3.client
        .put_object()
        .bucket(SOURCE)
        .key("shown.jpg")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let presigned = s3
        .client
        .get_object()
        .bucket(SOURCE)
        .key("shown.jpg")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let get = http
        .get(presigned.uri())
        .header("origin", WEB_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["access-control-allow-origin"], WEB_ORIGIN);
    let exposed = get.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"));
    let foreign = http
        .get(presigned.uri())
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    s3.server.shutdown().await;
}

/// The fields of a JSON document with their types, recursively, values left out.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
        Value::Array(items) => items.iter().map(shape).collect(),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        other => other.clone(),
    }
}

#[tokio::test]
async fn events_have_the_shape_of_real_s3_events_for_put_copy_multipart_and_delete() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let created_shape =
        shape(&serde_json::from_slice(&case_file("c01-event-key-spaces.json")).unwrap());
    let removed_shape =
        shape(&serde_json::from_slice(&case_file("c06-event-object-removed.json")).unwrap());
    let photo = case_file("c01-summer-trip.jpg");
    let key = "uploads/summer trip (1).jpg";

    s3.client
        .put_object()
        .bucket(SOURCE)
        .key(key)
        .body(ByteStream::from(photo.clone()))
        .send()
        .await
        .unwrap();
    let put = s3.next_event().await;
    assert_eq!(shape(&put), created_shape);
    let record = &put["Records"][0];
    assert_eq!(record["eventName"], "ObjectCreated:Put");
    assert_eq!(record["awsRegion"], REGION);
    assert_eq!(record["eventSource"], "aws:s3");
    assert_eq!(record["eventVersion"], "2.1");
    assert_eq!(record["requestParameters"]["sourceIPAddress"], "127.0.0.1");
    assert_eq!(
        record["userIdentity"]["principalId"],
        format!("AWS:{ACCESS_KEY}")
    );
    assert_eq!(record["s3"]["configurationId"], CONFIGURATION_ID);
    assert_eq!(record["s3"]["bucket"]["name"], SOURCE);
    assert_eq!(
        record["s3"]["bucket"]["arn"],
        format!("arn:aws:s3:::{SOURCE}")
    );
    assert_eq!(
        record["s3"]["object"]["key"],
        "uploads/summer+trip+%281%29.jpg"
    );
    assert_eq!(record["s3"]["object"]["size"], photo.len());
    assert_eq!(record["s3"]["object"]["eTag"], md5_hex(&photo));
    let event_time = record["eventTime"].as_str().unwrap();
    assert!(
        event_time.len() == 24 && event_time.ends_with('Z'),
        "{event_time}"
    );

    s3.client
        .copy_object()
        .bucket(SOURCE)
        .key("uploads/copy.jpg")
        .copy_source(format!("{SOURCE}/uploads/summer%20trip%20%281%29.jpg"))
        .send()
        .await
        .unwrap();
    let copy = s3.next_event().await;
    assert_eq!(shape(&copy), created_shape);
    assert_eq!(copy["Records"][0]["eventName"], "ObjectCreated:Copy");
    assert_eq!(copy["Records"][0]["s3"]["object"]["eTag"], md5_hex(&photo));

    let multipart = case_file("c07-multipart.jpg");
    let etag = upload_in_one_part(&s3, "uploads/multipart.jpg", &multipart).await;
    let complete = s3.next_event().await;
    assert_eq!(shape(&complete), created_shape);
    assert_eq!(
        complete["Records"][0]["eventName"],
        "ObjectCreated:CompleteMultipartUpload"
    );
    assert_eq!(
        complete["Records"][0]["s3"]["object"]["eTag"],
        etag.trim_matches('"')
    );
    assert_eq!(
        complete["Records"][0]["s3"]["object"]["size"],
        multipart.len()
    );

    s3.client
        .delete_object()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await
        .unwrap();
    let delete = s3.next_event().await;
    assert_eq!(shape(&delete), removed_shape);
    assert_eq!(delete["Records"][0]["eventName"], "ObjectRemoved:Delete");
    assert_eq!(
        delete["Records"][0]["s3"]["object"]["key"],
        "uploads/summer+trip+%281%29.jpg"
    );

    let sequencers: Vec<&str> = [&put, &copy, &complete, &delete]
        .iter()
        .map(|e| {
            e["Records"][0]["s3"]["object"]["sequencer"]
                .as_str()
                .unwrap()
        })
        .collect();
    let mut sorted = sequencers.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sequencers, sorted, "sequencers increase");

    // Writes to the processed bucket are not reported to the source bucket's target.
    s3.client
        .put_object()
        .bucket(PROCESSED)
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s3.assert_no_event();
    s3.server.shutdown().await;
}

/// Uploads `data` as a one-part multipart upload; returns the ETag.
async fn upload_in_one_part(s3: &TestS3, key: &str, data: &[u8]) -> String {
    let created = s3
        .client
        .create_multipart_upload()
        .bucket(SOURCE)
        .key(key)
        .content_type("image/jpeg")
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap();
    let part = s3
        .client
        .upload_part()
        .bucket(SOURCE)
        .key(key)
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap();
    let completed = s3
        .client
        .complete_multipart_upload()
        .bucket(SOURCE)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    completed.e_tag().unwrap().to_owned()
}

fn md5_of_md5s(parts: &[&[u8]]) -> String {
    use s3s::crypto::{Checksum as _, Md5};
    let joined: Vec<u8> = parts.iter().flat_map(|p| Md5::checksum(p)).collect();
    format!("{}-{}", md5_hex(&joined), parts.len())
}

#[tokio::test]
async fn c07_one_part_multipart_upload_has_s3s_multipart_etag() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let data = case_file("c07-multipart.jpg");
    let etag = upload_in_one_part(&s3, "uploads/multipart.jpg", &data).await;
    assert_eq!(etag, format!("\"{}\"", md5_of_md5s(&[&data])));
    assert!(etag.ends_with("-1\""));

    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("uploads/multipart.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_type(), Some("image/jpeg"));
    assert_eq!(
        get_bytes(&s3.client, SOURCE, "uploads/multipart.jpg").await,
        data
    );
    let event = s3.next_event().await;
    assert_eq!(
        event["Records"][0]["eventName"],
        "ObjectCreated:CompleteMultipartUpload"
    );
    s3.server.shutdown().await;
}

#[tokio::test]
async fn multipart_upload_lists_parts_enforces_s3_rules_and_assembles_in_order() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let key = "big/object.bin";
    let first: Vec<u8> = (0..5 * 1024 * 1024).map(|i: u32| (i % 253) as u8).collect();
    let second: Vec<u8> = b"the short last part".to_vec();

    let upload = s3
        .client
        .create_multipart_upload()
        .bucket(SOURCE)
        .key(key)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap().to_owned();
    let send_part = |number: i32, data: Vec<u8>| {
        s3.client
            .upload_part()
            .bucket(SOURCE)
            .key(key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
    };
    let small = send_part(1, second.clone()).await.unwrap();
    let last = send_part(2, second.clone()).await.unwrap();
    let complete = |parts: Vec<CompletedPart>| {
        s3.client
            .complete_multipart_upload()
            .bucket(SOURCE)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
    };
    let part = |n: i32, etag: &str| CompletedPart::builder().part_number(n).e_tag(etag).build();

    // A part other than the last below 5 MiB.
    let too_small = complete(vec![
        part(1, small.e_tag().unwrap()),
        part(2, last.e_tag().unwrap()),
    ])
    .await
    .unwrap_err();
    assert_eq!(error_code(&too_small).as_deref(), Some("EntityTooSmall"));
    // Parts out of order, and an entity tag that is not the part's.
    let disordered = complete(vec![
        part(2, last.e_tag().unwrap()),
        part(1, small.e_tag().unwrap()),
    ])
    .await
    .unwrap_err();
    assert_eq!(error_code(&disordered).as_deref(), Some("InvalidPartOrder"));
    let wrong = complete(vec![part(1, "\"00000000000000000000000000000000\"")])
        .await
        .unwrap_err();
    assert_eq!(error_code(&wrong).as_deref(), Some("InvalidPart"));

    // The upload survived the refusals; part 1 is replaced with a big one.
    let big = send_part(1, first.clone()).await.unwrap();
    let parts = s3
        .client
        .list_parts()
        .bucket(SOURCE)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, i64)> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
        .collect();
    assert_eq!(listed, [(1, first.len() as i64), (2, second.len() as i64)]);
    let page = s3
        .client
        .list_parts()
        .bucket(SOURCE)
        .key(key)
        .upload_id(&upload_id)
        .max_parts(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.next_part_number_marker(), Some("1"));

    let done = complete(vec![
        part(1, big.e_tag().unwrap()),
        part(2, last.e_tag().unwrap()),
    ])
    .await
    .unwrap();
    assert_eq!(
        done.e_tag(),
        Some(format!("\"{}\"", md5_of_md5s(&[&first, &second])).as_str())
    );
    let mut whole = first.clone();
    whole.extend_from_slice(&second);
    assert_eq!(get_bytes(&s3.client, SOURCE, key).await, whole);

    let gone = s3
        .client
        .list_parts()
        .bucket(SOURCE)
        .key(key)
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&gone).as_deref(), Some("NoSuchUpload"));

    // An aborted upload is gone too.
    let aborted = s3
        .client
        .create_multipart_upload()
        .bucket(SOURCE)
        .key("aborted")
        .send()
        .await
        .unwrap();
    let aborted_id = aborted.upload_id().unwrap();
    s3.client
        .abort_multipart_upload()
        .bucket(SOURCE)
        .key("aborted")
        .upload_id(aborted_id)
        .send()
        .await
        .unwrap();
    let gone = s3
        .client
        .upload_part()
        .bucket(SOURCE)
        .key("aborted")
        .upload_id(aborted_id)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&gone).as_deref(), Some("NoSuchUpload"));
    assert_eq!(temp_files(dir.path()), 0);
    s3.server.shutdown().await;
}

#[tokio::test]
async fn copy_object_keeps_or_replaces_metadata_and_checks_source_conditions() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    s3.client
        .put_object()
        .bucket(SOURCE)
        .key("orig/a b.png")
        .content_type("image/png")
        .metadata("k", "v")
        .body(ByteStream::from_static(b"png bytes"))
        .send()
        .await
        .unwrap();
    let etag = format!("\"{}\"", md5_hex(b"png bytes"));

    let copied = s3
        .client
        .copy_object()
        .bucket(PROCESSED)
        .key("copy.png")
        .copy_source(format!("{SOURCE}/orig/a%20b.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.copy_object_result().unwrap().e_tag(),
        Some(etag.as_str())
    );
    let head = s3
        .client
        .head_object()
        .bucket(PROCESSED)
        .key("copy.png")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(
        head.metadata().unwrap().get("k").map(String::as_str),
        Some("v")
    );
    assert_eq!(
        get_bytes(&s3.client, PROCESSED, "copy.png").await,
        b"png bytes"
    );

    s3.client
        .copy_object()
        .bucket(SOURCE)
        .key("orig/a b.png")
        .copy_source(format!("{SOURCE}/orig/a%20b.png"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("image/x-png")
        .send()
        .await
        .unwrap();
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("orig/a b.png")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/x-png"));
    assert!(head.metadata().is_none_or(|m| m.is_empty()));

    let onto_itself = s3
        .client
        .copy_object()
        .bucket(SOURCE)
        .key("orig/a b.png")
        .copy_source(format!("{SOURCE}/orig/a%20b.png"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&onto_itself).as_deref(), Some("InvalidRequest"));

    let unmet = s3
        .client
        .copy_object()
        .bucket(PROCESSED)
        .key("never.png")
        .copy_source(format!("{SOURCE}/orig/a%20b.png"))
        .copy_source_if_match("\"0000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_status(&unmet), Some(412));
    let missing = s3
        .client
        .copy_object()
        .bucket(PROCESSED)
        .key("never.png")
        .copy_source(format!("{SOURCE}/nothing"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&missing).as_deref(), Some("NoSuchKey"));
    s3.server.shutdown().await;
}

#[tokio::test]
async fn delete_objects_removes_each_key_and_reports_each_removal() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    put_keys(&s3, &["d/1", "d/2", "keep"]).await;
    for _ in 0..3 {
        s3.next_event().await;
    }

    let identifiers = ["d/1", "d/2", "d/never-existed"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect();
    let result = s3
        .client
        .delete_objects()
        .bucket(SOURCE)
        .delete(
            Delete::builder()
                .set_objects(Some(identifiers))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let deleted: Vec<&str> = result.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, ["d/1", "d/2", "d/never-existed"]);
    assert!(result.errors().is_empty());
    assert_eq!(all_keys(&s3.client, SOURCE).await, ["keep"]);

    let mut removed = Vec::new();
    for _ in 0..2 {
        let event = s3.next_event().await;
        assert_eq!(event["Records"][0]["eventName"], "ObjectRemoved:Delete");
        removed.push(
            event["Records"][0]["s3"]["object"]["key"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(removed, ["d/1", "d/2"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    s3.assert_no_event();

    // Deleting what is not there succeeds, as in S3.
    s3.client
        .delete_object()
        .bucket(SOURCE)
        .key("d/1")
        .send()
        .await
        .unwrap();
    s3.server.shutdown().await;
}

#[tokio::test]
async fn upload_cut_off_mid_body_leaves_nothing() {
    use tokio::io::AsyncWriteExt as _;

    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let presigned = s3
        .client
        .put_object()
        .bucket(SOURCE)
        .key("cut.bin")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let uri: http::Uri = presigned.uri().parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(s3.server.local_addr())
        .await
        .unwrap();
    let head = format!(
        "PUT {} HTTP/1.1\r\nhost: {}\r\ncontent-length: 100000\r\n\r\n",
        uri.path_and_query().unwrap(),
        uri.authority().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[7_u8; 40_000]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);

    // The server notices the broken body and cleans up.
    let mut waited = 0;
    while temp_files(dir.path()) > 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(temp_files(dir.path()), 0);
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("cut.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_status(&head), Some(404));
    s3.assert_no_event();
    s3.server.shutdown().await;
}

#[tokio::test]
async fn objects_and_uploads_persist_across_a_restart_and_leftovers_are_removed() {
    let dir = data_dir();
    let keys = ["uploads/one.jpg", "uploads/two words.png", "//odd//"];
    let upload_id = {
        let s3 = TestS3::start(dir.path()).await;
        for key in keys {
            s3.client
                .put_object()
                .bucket(SOURCE)
                .key(key)
                .content_type("image/jpeg")
                .body(ByteStream::from(key.as_bytes().to_vec()))
                .send()
                .await
                .unwrap();
        }
        s3.client
            .delete_object()
            .bucket(SOURCE)
            .key("uploads/one.jpg")
            .send()
            .await
            .unwrap();
        let upload = s3
            .client
            .create_multipart_upload()
            .bucket(SOURCE)
            .key("later.bin")
            .send()
            .await
            .unwrap();
        let upload_id = upload.upload_id().unwrap().to_owned();
        s3.client
            .upload_part()
            .bucket(SOURCE)
            .key("later.bin")
            .upload_id(&upload_id)
            .part_number(1)
            .body(ByteStream::from_static(b"part one"))
            .send()
            .await
            .unwrap();
        s3.server.shutdown().await;
        upload_id
    };
    // What a crash in the middle of an upload leaves behind.
    std::fs::write(dir.path().join("tmp").join("upload-interrupted"), b"half").unwrap();

    let s3 = TestS3::start(dir.path()).await;
    assert_eq!(temp_files(dir.path()), 0);
    assert_eq!(
        all_keys(&s3.client, SOURCE).await,
        ["//odd//", "uploads/two words.png"]
    );
    assert_eq!(
        get_bytes(&s3.client, SOURCE, "uploads/two words.png").await,
        b"uploads/two words.png"
    );
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("//odd//")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/jpeg"));
    assert_eq!(
        head.e_tag(),
        Some(format!("\"{}\"", md5_hex(b"//odd//")).as_str())
    );

    let parts = s3
        .client
        .list_parts()
        .bucket(SOURCE)
        .key("later.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let etag = parts.parts()[0].e_tag().unwrap().to_owned();
    s3.client
        .complete_multipart_upload()
        .bucket(SOURCE)
        .key("later.bin")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_bytes(&s3.client, SOURCE, "later.bin").await,
        b"part one"
    );
    s3.server.shutdown().await;
}

#[tokio::test]
async fn invalid_configuration_is_refused_before_listening() {
    let dir = data_dir();
    let (sink, _events) = tokio::sync::mpsc::channel(1);
    let base = pixelator::embedded::EmbeddedS3Config {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        region: REGION.into(),
        buckets: vec![SOURCE.into()],
        cors_origins: vec![WEB_ORIGIN.into()],
        notifications: vec![pixelator::embedded::NotificationTarget {
            configuration_id: "c".into(),
            bucket: SOURCE.into(),
            prefix: String::new(),
            suffix: String::new(),
            events: vec![pixelator::embedded::EventKind::ObjectCreated],
            sink,
        }],
    };
    let variants = [
        pixelator::embedded::EmbeddedS3Config {
            listen: "0.0.0.0:0".parse().unwrap(),
            ..base.clone()
        },
        pixelator::embedded::EmbeddedS3Config {
            buckets: vec!["Not_A_Bucket".into()],
            ..base.clone()
        },
        pixelator::embedded::EmbeddedS3Config {
            cors_origins: vec!["localhost:8080/path".into()],
            ..base.clone()
        },
        pixelator::embedded::EmbeddedS3Config {
            secret_key: String::new(),
            ..base.clone()
        },
    ];
    for config in variants {
        let error = pixelator::embedded::start(config).await.unwrap_err();
        assert!(
            matches!(error, pixelator::embedded::EmbeddedError::InvalidConfig(_)),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    let foreign = data_dir();
    std::fs::write(foreign.path().join("somebody-elses.txt"), b"keep me").unwrap();
    let error = pixelator::embedded::start(pixelator::embedded::EmbeddedS3Config {
        data_dir: foreign.path().to_owned(),
        ..base.clone()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(error, pixelator::embedded::EmbeddedError::DataDir { .. }),
        "{error}"
    );
    assert!(foreign.path().join("somebody-elses.txt").exists());
}

/// A browser-style POST upload (multipart form with a SigV4-signed policy that wants keys
/// under `uploads/` and an image content type).
async fn post_upload(
    endpoint: &str,
    key: &str,
    content_type: &str,
    data: &[u8],
) -> reqwest::Response {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    use aws_sigv4::sign::v4;
    use base64::Engine as _;

    // Whole seconds: x-amz-date has no fractions.
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
    let iso = DateTime::from(now).fmt(DateTimeFormat::DateTime).unwrap();
    let amz_date: String = iso.chars().filter(|c| *c != '-' && *c != ':').collect();
    let credential = format!("{ACCESS_KEY}/{}/{REGION}/s3/aws4_request", &amz_date[..8]);
    let expiration = DateTime::from(now + Duration::from_secs(300))
        .fmt(DateTimeFormat::DateTime)
        .unwrap();
    let policy = serde_json::json!({
        "expiration": expiration,
        "conditions": [
            { "bucket": SOURCE },
            ["starts-with", "$key", "uploads/"],
            ["starts-with", "$Content-Type", "image/"],
            ["content-length-range", 1, 1_048_576],
            { "x-amz-algorithm": "AWS4-HMAC-SHA256" },
            { "x-amz-credential": credential },
            { "x-amz-date": amz_date },
        ]
    });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signing_key = v4::generate_signing_key(SECRET_KEY, now, REGION, "s3");
    let signature = v4::calculate_signature(signing_key, policy.as_bytes());

    let boundary = "----pixelator-form-boundary";
    let mut body = Vec::new();
    for (name, value) in [
        ("key", key),
        ("Content-Type", content_type),
        ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ("x-amz-credential", credential.as_str()),
        ("x-amz-date", amz_date.as_str()),
        ("policy", policy.as_str()),
        ("x-amz-signature", signature.as_str()),
    ] {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\nContent-Type: {content_type}\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

    reqwest::Client::new()
        .post(format!("{endpoint}/{SOURCE}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn post_upload_within_its_policy_is_stored_and_reported_as_post() {
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let png = case_file("c22-octet-stream.png");

    let accepted = post_upload(
        &s3.server.endpoint(),
        "uploads/posted.png",
        "image/png",
        &png,
    )
    .await;
    assert_eq!(accepted.status(), 204, "{}", accepted.text().await.unwrap());
    let event = s3.next_event().await;
    assert_eq!(event["Records"][0]["eventName"], "ObjectCreated:Post");
    assert_eq!(event["Records"][0]["s3"]["object"]["size"], png.len());
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("uploads/posted.png")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(
        get_bytes(&s3.client, SOURCE, "uploads/posted.png").await,
        png
    );

    let outside = post_upload(
        &s3.server.endpoint(),
        "elsewhere/posted.png",
        "image/png",
        &png,
    )
    .await;
    // S3 answers 403 AccessDenied; s3s answers 400 InvalidPolicyDocument. Either way the
    // upload is refused and nothing is stored.
    assert!(outside.status().is_client_error());
    let text = outside.text().await.unwrap();
    assert!(
        text.contains("<Code>InvalidPolicyDocument</Code>"),
        "{text}"
    );
    let not_an_image = post_upload(
        &s3.server.endpoint(),
        "uploads/x.txt",
        "text/plain",
        b"hello",
    )
    .await;
    assert!(not_an_image.status().is_client_error());
    let text = not_an_image.text().await.unwrap();
    assert!(
        text.contains("<Code>InvalidPolicyDocument</Code>"),
        "{text}"
    );
    assert_eq!(all_keys(&s3.client, SOURCE).await, ["uploads/posted.png"]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    s3.assert_no_event();
    s3.server.shutdown().await;
}

#[tokio::test]
async fn expires_is_kept_and_listing_shows_owners_when_asked() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let expires = aws_sdk_s3::primitives::DateTime::from_secs(1_900_000_000);
    s3.client
        .put_object()
        .bucket(SOURCE)
        .key("e")
        .expires(expires)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let head = s3
        .client
        .head_object()
        .bucket(SOURCE)
        .key("e")
        .send()
        .await
        .unwrap();
    assert_eq!(head.expires_string(), Some("Sun, 17 Mar 2030 17:46:40 GMT"));

    let plain = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .send()
        .await
        .unwrap();
    assert!(plain.contents()[0].owner().is_none());
    let owned = s3
        .client
        .list_objects_v2()
        .bucket(SOURCE)
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let owner = owned.contents()[0].owner().unwrap();
    assert_eq!(owner.id().map(str::len), Some(64));
    s3.server.shutdown().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_data_folder_is_refused() {
    let dir = data_dir();
    let s3 = TestS3::start(dir.path()).await;
    let (sink, _events) = tokio::sync::mpsc::channel(1);
    let error = pixelator::embedded::start(pixelator::embedded::EmbeddedS3Config {
        data_dir: dir.path().to_owned(),
        listen: ([127, 0, 0, 1], 0).into(),
        access_key: ACCESS_KEY.into(),
        secret_key: SECRET_KEY.into(),
        region: REGION.into(),
        buckets: vec![SOURCE.into()],
        cors_origins: Vec::new(),
        notifications: vec![pixelator::embedded::NotificationTarget {
            configuration_id: "c".into(),
            bucket: SOURCE.into(),
            prefix: String::new(),
            suffix: String::new(),
            events: vec![pixelator::embedded::EventKind::ObjectCreated],
            sink,
        }],
    })
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("in use by another process"),
        "{error}"
    );
    s3.server.shutdown().await;
}

/// The bench photos folder: PIXELATOR_BENCH_IMAGES, or ../shared/bench-images from the
/// repository's root.
fn bench_image(name: &str) -> Vec<u8> {
    let folder = std::env::var("PIXELATOR_BENCH_IMAGES")
        .unwrap_or_else(|_| format!("{}/../../shared/bench-images", env!("CARGO_MANIFEST_DIR")));
    std::fs::read(format!("{folder}/{name}")).unwrap_or_else(|e| panic!("{folder}/{name}: {e}"))
}

/// Load run, on demand (`cargo test --test embedded_s3 -- --ignored --nocapture`): 100
/// concurrent presigned PUTs of a 2 MP photo; every one must succeed and be reported once.
/// Prints the wall time and the test process's peak resident memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load run, on demand"]
async fn hundred_concurrent_presigned_uploads_all_succeed_and_are_reported() {
    const UPLOADS: usize = 100;
    let dir = data_dir();
    let mut s3 = TestS3::start(dir.path()).await;
    let photo = bench_image("jpeg-medium-portrait-1800x1200-orient6.jpg");
    let http = reqwest::Client::new();

    let mut urls = Vec::with_capacity(UPLOADS);
    for i in 0..UPLOADS {
        let presigning = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
        urls.push(
            presign_put(
                &s3,
                &format!("uploads/{i:03}/photo.jpg"),
                "image/jpeg",
                photo.len(),
                presigning,
            )
            .await,
        );
    }

    let started = std::time::Instant::now();
    let uploads = urls.into_iter().map(|url| {
        let http = http.clone();
        let photo = photo.clone();
        tokio::spawn(async move {
            http.put(url)
                .header("content-type", "image/jpeg")
                .body(photo)
                .send()
                .await
                .map(|r| r.status())
        })
    });
    let drain = async {
        let mut received = 0;
        while received < UPLOADS {
            s3.next_event().await;
            received += 1;
        }
        received
    };
    let (statuses, events) = tokio::join!(futures::future::join_all(uploads), drain);
    let elapsed = started.elapsed();

    let failures = statuses
        .iter()
        .filter(|s| !matches!(s, Ok(Ok(status)) if status.as_u16() == 200))
        .count();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    println!(
        "{UPLOADS} presigned uploads of {} bytes: {failures} failed, {events} events, {:.2} s, {peak}",
        photo.len(),
        elapsed.as_secs_f64()
    );
    assert_eq!(failures, 0);
    assert_eq!(all_keys(&s3.client, SOURCE).await.len(), UPLOADS);
    s3.server.shutdown().await;
}
