//! Reading S3 event notifications as the stores really send them.
//!
//! A notification arrives as JSON in one of two shapes: the usual `{"Records":
//! [...]}` document, or the flat `s3:TestEvent` message S3 sends when a
//! notification is configured, which has no `Records` at all. The document is taken
//! as a [`serde_json::Value`] and each record is read on its own with
//! `aws_lambda_events`' record type, so one record that cannot be read stops none
//! of the others.
//!
//! Keys in events are URL-encoded the way S3 encodes them: a space is `+`, every
//! other byte outside letters, digits and `-_.*/` is `%XX` of its UTF-8 encoding.
//! [`decode_key`] reverses exactly that (no Unicode normalisation: the key is the
//! bytes S3 stored), and [`encode_key`] produces it for the events the local
//! pipeline makes up itself.

use aws_lambda_events::s3::S3EventRecord;
use serde::Deserialize;
use serde_json::Value;

/// What a notification document holds.
#[derive(Debug)]
pub enum Notification {
    /// The `s3:TestEvent` message, for the bucket it names.
    Test {
        /// The bucket the test was sent for, when given.
        bucket: Option<String>,
    },
    /// The records of a `{"Records": [...]}` document, each still unread.
    Records(Vec<Value>),
    /// Anything else: neither records nor a test event.
    Unrecognised,
}

impl Notification {
    /// Sorts a notification document into its shape.
    pub fn classify(document: &Value) -> Notification {
        if let Some(records) = document.get("Records").and_then(Value::as_array) {
            return Notification::Records(records.clone());
        }
        let event = document.get("Event").and_then(Value::as_str);
        if event == Some("s3:TestEvent") {
            let bucket = document
                .get("Bucket")
                .and_then(Value::as_str)
                .map(str::to_owned);
            return Notification::Test { bucket };
        }
        Notification::Unrecognised
    }
}

/// Reads one record of a notification.
pub fn parse_record(record: &Value) -> Result<S3EventRecord, serde_json::Error> {
    S3EventRecord::deserialize(record)
}

/// What kind of change a record reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// An object was written: by PUT, POST, copy or a completed multipart upload.
    Created,
    /// An object (or a version of it) was removed.
    Removed,
    /// Anything else (restores, replication, lifecycle, ...).
    Other,
}

impl ChangeKind {
    /// The kind of an event name, as AWS writes it (`ObjectCreated:Put`) or as
    /// some self-hosted stores do (`s3:ObjectCreated:Put`).
    pub fn of_event_name(event_name: &str) -> ChangeKind {
        let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
        if name.starts_with("ObjectCreated:") {
            ChangeKind::Created
        } else if name.starts_with("ObjectRemoved:") {
            ChangeKind::Removed
        } else {
            ChangeKind::Other
        }
    }
}

/// Why an event key could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyDecodeError {
    /// A `%` is not followed by two hexadecimal digits.
    #[error("malformed escape at byte {position} of the encoded key")]
    MalformedEscape {
        /// Where the `%` is.
        position: usize,
    },
    /// The decoded bytes are not UTF-8, so cannot be an S3 key.
    #[error("the decoded key is not UTF-8")]
    NotUtf8,
    /// The key is empty.
    #[error("the key is empty")]
    Empty,
}

/// Decodes a key as S3 writes it into events: `+` is a space, then each `%XX` is
/// one byte, and the bytes are read as UTF-8. Nothing is normalised.
pub fn decode_key(encoded: &str) -> Result<String, KeyDecodeError> {
    let input = encoded.as_bytes();
    let mut bytes = Vec::with_capacity(input.len());
    let mut position = 0;
    while position < input.len() {
        match input[position] {
            b'+' => {
                bytes.push(b' ');
                position += 1;
            }
            b'%' => {
                let high = input.get(position + 1).and_then(|&c| hex_value(c));
                let low = input.get(position + 2).and_then(|&c| hex_value(c));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(KeyDecodeError::MalformedEscape { position });
                };
                bytes.push(high << 4 | low);
                position += 3;
            }
            other => {
                bytes.push(other);
                position += 1;
            }
        }
    }
    if bytes.is_empty() {
        return Err(KeyDecodeError::Empty);
    }
    String::from_utf8(bytes).map_err(|_| KeyDecodeError::NotUtf8)
}

/// Encodes a key the way S3 writes it into events (the inverse of
/// [`decode_key`]).
pub fn encode_key(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len() + key.len() / 2);
    for &byte in key.as_bytes() {
        match byte {
            b' ' => encoded.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                encoded.push(char::from(byte))
            }
            other => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                encoded.push('%');
                encoded.push(char::from(HEX[usize::from(other >> 4)]));
                encoded.push(char::from(HEX[usize::from(other & 0x0f)]));
            }
        }
    }
    encoded
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// An ETag without the quotes S3 wraps it in.
pub fn bare_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

/// Builds the notification S3 would send for an object written under `key`:
/// used by the local pipeline to queue objects found without a manifest.
pub fn created_event(bucket: &str, key: &str, size: u64, etag: &str, event_time: &str) -> Value {
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": crate::s3::DEFAULT_REGION,
            "eventTime": event_time,
            "eventName": "ObjectCreated:Put",
            "userIdentity": { "principalId": "pixelator" },
            "requestParameters": { "sourceIPAddress": "127.0.0.1" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "pixelator-reconcile",
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": { "principalId": "pixelator" },
                    "arn": format!("arn:aws:s3:::{bucket}"),
                },
                "object": {
                    "key": encode_key(key),
                    "size": size,
                    "eTag": bare_etag(etag),
                    "sequencer": "0",
                },
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str) -> Value {
        let path = format!("{}/tests/data/cases/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("case file");
        serde_json::from_str(&text).expect("case JSON")
    }

    #[test]
    fn plus_is_a_space_and_escapes_are_utf8_bytes() {
        assert_eq!(
            decode_key("uploads/summer+trip+%281%29.jpg").unwrap(),
            "uploads/summer trip (1).jpg"
        );
        assert_eq!(decode_key("a%2Bb").unwrap(), "a+b");
        assert_eq!(decode_key("caf%C3%A9.png").unwrap(), "café.png");
        assert_eq!(decode_key("%e2%82%ac").unwrap(), "€");
        assert_eq!(decode_key("100%25").unwrap(), "100%");
    }

    #[test]
    fn decoding_keeps_the_bytes_without_normalising() {
        // "é" as e + combining acute accent (NFD) stays NFD.
        let decoded = decode_key("cafe%CC%81.png").unwrap();
        assert_eq!(decoded.as_bytes(), b"cafe\xcc\x81.png");
        assert_ne!(decoded, "café.png");
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert_eq!(
            decode_key("bad%2"),
            Err(KeyDecodeError::MalformedEscape { position: 3 })
        );
        assert_eq!(
            decode_key("bad%zz"),
            Err(KeyDecodeError::MalformedEscape { position: 3 })
        );
        assert_eq!(decode_key("%FF%FE"), Err(KeyDecodeError::NotUtf8));
        assert_eq!(decode_key(""), Err(KeyDecodeError::Empty));
    }

    #[test]
    fn encoding_round_trips_every_key() {
        for key in [
            "uploads/summer trip (1).jpg",
            "uploads/a+b=c&d.png",
            "uploads/日本語 ファイル.jpg",
            "uploads/100% real?.gif",
            "uploads//double/../dots",
            "uploads/tab\there",
        ] {
            let encoded = encode_key(key);
            assert!(!encoded.contains(' '), "{encoded}");
            assert_eq!(decode_key(&encoded).unwrap(), key);
        }
        assert_eq!(
            encode_key("uploads/summer trip (1).jpg"),
            "uploads/summer+trip+%281%29.jpg"
        );
    }

    #[test]
    fn event_names_of_every_creation_kind_are_creations() {
        for name in [
            "ObjectCreated:Put",
            "ObjectCreated:Post",
            "ObjectCreated:Copy",
            "ObjectCreated:CompleteMultipartUpload",
            "s3:ObjectCreated:Put",
        ] {
            assert_eq!(
                ChangeKind::of_event_name(name),
                ChangeKind::Created,
                "{name}"
            );
        }
        assert_eq!(
            ChangeKind::of_event_name("ObjectRemoved:Delete"),
            ChangeKind::Removed
        );
        assert_eq!(
            ChangeKind::of_event_name("s3:ObjectRemoved:DeleteMarkerCreated"),
            ChangeKind::Removed
        );
        assert_eq!(
            ChangeKind::of_event_name("ObjectRestore:Completed"),
            ChangeKind::Other
        );
    }

    #[test]
    fn the_test_event_has_no_records_and_is_recognised() {
        match Notification::classify(&case("c04-event-s3-testevent.json")) {
            Notification::Test { bucket } => {
                assert_eq!(bucket.as_deref(), Some("pixelator-source"))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Notification::classify(&serde_json::json!({"hello": 1})),
            Notification::Unrecognised
        ));
        assert!(matches!(
            Notification::classify(&serde_json::json!([1, 2])),
            Notification::Unrecognised
        ));
    }

    #[test]
    fn every_record_of_a_document_is_read_on_its_own() {
        let Notification::Records(records) =
            Notification::classify(&case("c08-event-multi-record.json"))
        else {
            panic!("records expected");
        };
        let keys: Vec<String> = records
            .iter()
            .map(|record| parse_record(record).unwrap().s3.object.key.unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "uploads/first.png",
                "uploads/third-corrupt.png",
                "uploads/second.jpg"
            ]
        );
    }

    #[test]
    fn removal_records_without_size_or_etag_are_read() {
        let Notification::Records(records) =
            Notification::classify(&case("c06-event-object-removed.json"))
        else {
            panic!("records expected");
        };
        let record = parse_record(&records[0]).unwrap();
        assert_eq!(record.s3.object.size, None);
        assert_eq!(record.s3.object.e_tag, None);
        assert_eq!(
            ChangeKind::of_event_name(record.event_name.as_deref().unwrap()),
            ChangeKind::Removed
        );
    }

    #[test]
    fn made_up_events_read_back_like_real_ones() {
        let event = created_event(
            "pixelator-source",
            "uploads/summer trip (1).jpg",
            1361,
            "\"d6a8aff34b5cc3c0ce41804e2ef6f0a0\"",
            "2025-01-15T10:00:00.000Z",
        );
        let Notification::Records(records) = Notification::classify(&event) else {
            panic!("records expected");
        };
        let record = parse_record(&records[0]).unwrap();
        let object = record.s3.object;
        assert_eq!(
            object.key.as_deref(),
            Some("uploads/summer+trip+%281%29.jpg")
        );
        assert_eq!(object.size, Some(1361));
        assert_eq!(
            object.e_tag.as_deref(),
            Some("d6a8aff34b5cc3c0ce41804e2ef6f0a0")
        );
    }
}
