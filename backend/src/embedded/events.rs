//! Bucket notifications: the S3 event notification JSON that Amazon S3 sends, emitted after
//! each successful object creation or removal, into bounded queues.
//!
//! A document is `{"Records":[record]}` with one record per change, in the shape of S3's
//! event message structure version 2.1: the key URL-encoded with `+` for spaces, size and
//! entity tag for creations only, and a sequencer (16 hex digits, increasing with every
//! change of the store) that orders the events of one key. The document is sent only once
//! the change is durable and visible to readers; sending waits while a queue is full, which
//! holds back the response to the request that caused it.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use s3s::dto::{Timestamp, TimestampFormat};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::listing::url_encode;

/// The two families of bucket events the embedded server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `s3:ObjectCreated:*`: Put, Post, Copy, CompleteMultipartUpload.
    ObjectCreated,
    /// `s3:ObjectRemoved:*`: Delete (buckets are unversioned, so there are no delete
    /// markers).
    ObjectRemoved,
}

/// Where the events of one bucket go: S3's notification configuration, reduced to one
/// destination.
#[derive(Debug, Clone)]
pub struct NotificationTarget {
    /// The `configurationId` written into each record.
    pub configuration_id: String,
    /// The bucket whose changes are reported.
    pub bucket: String,
    /// Only keys that start with this (S3's `prefix` filter rule; empty for all).
    pub prefix: String,
    /// Only keys that end with this (S3's `suffix` filter rule; empty for all).
    pub suffix: String,
    /// Which kinds of event are reported.
    pub events: Vec<EventKind>,
    /// The queue that receives each event document. Sending waits while it is full.
    pub sink: mpsc::Sender<Value>,
}

impl NotificationTarget {
    fn wants(&self, bucket: &str, key: &str, kind: EventKind) -> bool {
        self.bucket == bucket
            && key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && self.events.contains(&kind)
    }
}

/// The S3 name of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventName {
    /// `ObjectCreated:Put`.
    Put,
    /// `ObjectCreated:Post`.
    Post,
    /// `ObjectCreated:Copy`.
    Copy,
    /// `ObjectCreated:CompleteMultipartUpload`.
    CompleteMultipartUpload,
    /// `ObjectRemoved:Delete`.
    Delete,
}

impl EventName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Put => "ObjectCreated:Put",
            Self::Post => "ObjectCreated:Post",
            Self::Copy => "ObjectCreated:Copy",
            Self::CompleteMultipartUpload => "ObjectCreated:CompleteMultipartUpload",
            Self::Delete => "ObjectRemoved:Delete",
        }
    }

    fn kind(self) -> EventKind {
        match self {
            Self::Put | Self::Post | Self::Copy | Self::CompleteMultipartUpload => {
                EventKind::ObjectCreated
            }
            Self::Delete => EventKind::ObjectRemoved,
        }
    }
}

/// Who made a request and how S3 would have identified it; attached to each request by the
/// HTTP front of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestOrigin {
    /// The client's address.
    pub remote_ip: IpAddr,
    /// `x-amz-request-id` of the response.
    pub request_id: String,
    /// `x-amz-id-2` of the response.
    pub host_id: String,
}

/// One change to report.
#[derive(Debug, Clone)]
pub(crate) struct ObjectEvent<'a> {
    /// What happened.
    pub name: EventName,
    /// In which bucket.
    pub bucket: &'a str,
    /// To which key (not encoded).
    pub key: &'a str,
    /// Size and entity tag (without quotes) of a created object; `None` for removals.
    pub object: Option<(u64, &'a str)>,
    /// The store's change sequence number.
    pub sequence: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The access key that signed the request.
    pub access_key: &'a str,
    /// Where the request came from.
    pub origin: &'a RequestOrigin,
}

/// Sends event documents to the configured targets.
#[derive(Debug)]
pub(crate) struct Notifier {
    targets: Vec<NotificationTarget>,
    region: String,
    owner_id: String,
}

impl Notifier {
    /// A notifier for these targets; `owner_id` is the buckets' owner principal.
    pub(crate) fn new(targets: Vec<NotificationTarget>, region: String, owner_id: String) -> Self {
        Self {
            targets,
            region,
            owner_id,
        }
    }

    /// Sends the event to every target that wants it, waiting while a queue is full. A
    /// target whose receiver is gone is skipped with a warning: the change has happened.
    pub(crate) async fn publish(&self, event: &ObjectEvent<'_>) {
        let kind = event.name.kind();
        for target in self
            .targets
            .iter()
            .filter(|t| t.wants(event.bucket, event.key, kind))
        {
            let document = notification(
                event,
                &target.configuration_id,
                &self.region,
                &self.owner_id,
            );
            match target.sink.send(document).await {
                Ok(()) => debug!(
                    bucket = event.bucket,
                    event = event.name.as_str(),
                    configuration = %target.configuration_id,
                    "event sent"
                ),
                Err(_) => warn!(
                    bucket = event.bucket,
                    event = event.name.as_str(),
                    configuration = %target.configuration_id,
                    "event receiver is gone; event dropped"
                ),
            }
        }
    }
}

/// The notification document of one event, exactly in S3's shape.
pub(crate) fn notification(
    event: &ObjectEvent<'_>,
    configuration_id: &str,
    region: &str,
    owner_id: &str,
) -> Value {
    let mut object = json!({ "key": url_encode(event.key) });
    if let Some((size, etag)) = event.object {
        object["size"] = json!(size);
        object["eTag"] = json!(etag);
    }
    object["sequencer"] = json!(sequencer(event.sequence));

    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": event_time(event.time_ms),
            "eventName": event.name.as_str(),
            "userIdentity": { "principalId": format!("AWS:{}", event.access_key) },
            "requestParameters": { "sourceIPAddress": event.origin.remote_ip.to_string() },
            "responseElements": {
                "x-amz-request-id": event.origin.request_id,
                "x-amz-id-2": event.origin.host_id,
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": configuration_id,
                "bucket": {
                    "name": event.bucket,
                    "ownerIdentity": { "principalId": owner_id },
                    "arn": format!("arn:aws:s3:::{}", event.bucket),
                },
                "object": object,
            },
        }]
    })
}

/// S3's sequencer: upper-case hex, fixed width, so that string order is change order.
pub(crate) fn sequencer(sequence: u64) -> String {
    format!("{sequence:016X}")
}

/// ISO 8601 in UTC with milliseconds, as in S3 events: `2025-01-15T10:00:00.000Z`.
pub(crate) fn event_time(time_ms: i64) -> String {
    let millis = u64::try_from(time_ms).unwrap_or(0);
    let timestamp = Timestamp::from(UNIX_EPOCH + Duration::from_millis(millis));
    let mut out = Vec::with_capacity(24);
    match timestamp.format(TimestampFormat::DateTime, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::from("1970-01-01T00:00:00.000Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> RequestOrigin {
        RequestOrigin {
            remote_ip: "127.0.0.1".parse().unwrap(),
            request_id: "0123456789ABCDEF".into(),
            host_id: "aWQ=".into(),
        }
    }

    /// The fields of a record with their JSON types, recursively, values left out.
    fn shape(value: &Value) -> Value {
        match value {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
            Value::Array(items) => items.iter().map(shape).collect(),
            Value::String(_) => json!("string"),
            Value::Number(_) => json!("number"),
            other => other.clone(),
        }
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/data/cases/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn put_record_has_exactly_the_fields_of_a_real_s3_event() {
        let origin = origin();
        let event = ObjectEvent {
            name: EventName::Put,
            bucket: "pixelator-source",
            key: "uploads/summer trip (1).jpg",
            object: Some((1361, "d6a8aff34b5cc3c0ce41804e2ef6f0a0")),
            sequence: 0x0065_A1B2_C3D4_E5F6,
            time_ms: 1_736_935_200_000,
            access_key: "local",
            origin: &origin,
        };
        let document = notification(&event, "pixelate-on-upload", "us-east-1", "A1OWNER");
        let real = fixture("c01-event-key-spaces.json");
        assert_eq!(shape(&document), shape(&real));

        let record = &document["Records"][0];
        assert_eq!(record["eventTime"], "2025-01-15T10:00:00.000Z");
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(
            record["s3"]["object"]["key"],
            real["Records"][0]["s3"]["object"]["key"]
        );
        assert_eq!(record["s3"]["object"]["sequencer"], "0065A1B2C3D4E5F6");
        assert_eq!(
            record["s3"]["bucket"]["arn"],
            "arn:aws:s3:::pixelator-source"
        );
    }

    #[test]
    fn removal_record_has_no_size_or_etag() {
        let origin = origin();
        let event = ObjectEvent {
            name: EventName::Delete,
            bucket: "pixelator-source",
            key: "uploads/old-photo.jpg",
            object: None,
            sequence: 7,
            time_ms: 0,
            access_key: "local",
            origin: &origin,
        };
        let document = notification(&event, "pixelate-on-upload", "us-east-1", "A1OWNER");
        assert_eq!(
            shape(&document),
            shape(&fixture("c06-event-object-removed.json"))
        );
        assert_eq!(document["Records"][0]["eventName"], "ObjectRemoved:Delete");
    }

    #[test]
    fn sequencers_sort_as_strings_in_change_order() {
        let values = [1_u64, 15, 16, 255, 1 << 40, u64::MAX];
        let strings: Vec<String> = values.iter().map(|&v| sequencer(v)).collect();
        let mut sorted = strings.clone();
        sorted.sort();
        assert_eq!(strings, sorted);
    }

    #[test]
    fn targets_filter_by_bucket_prefix_suffix_and_kind() {
        let (sink, _receiver) = mpsc::channel(1);
        let target = NotificationTarget {
            configuration_id: "c".into(),
            bucket: "src".into(),
            prefix: "uploads/".into(),
            suffix: ".jpg".into(),
            events: vec![EventKind::ObjectCreated],
            sink,
        };
        assert!(target.wants("src", "uploads/a.jpg", EventKind::ObjectCreated));
        assert!(!target.wants("src", "uploads/a.jpg", EventKind::ObjectRemoved));
        assert!(!target.wants("other", "uploads/a.jpg", EventKind::ObjectCreated));
        assert!(!target.wants("src", "other/a.jpg", EventKind::ObjectCreated));
        assert!(!target.wants("src", "uploads/a.png", EventKind::ObjectCreated));
    }
}
