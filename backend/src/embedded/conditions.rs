//! Conditional requests as S3 evaluates them: `If-Match`, `If-None-Match`,
//! `If-Modified-Since` and `If-Unmodified-Since` on GET and HEAD, and the `x-amz-copy-source-if-*`
//! family on CopyObject.
//!
//! The order is RFC 9110's, which S3 follows: `If-Match` (or, without it,
//! `If-Unmodified-Since`) decides 412 first; then `If-None-Match` (or, without it,
//! `If-Modified-Since`) decides 304. Times compare at whole seconds, the resolution of
//! `Last-Modified`.

use http::{HeaderMap, HeaderValue, StatusCode};
use s3s::dto::{ETag, ETagCondition, Timestamp, TimestampFormat};
use s3s::{S3Error, S3ErrorCode};

use super::store::ObjectMeta;

/// The conditions of one request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a ETagCondition>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a ETagCondition>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a Timestamp>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// What the conditions say about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go ahead.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

impl Conditions<'_> {
    /// Evaluates the conditions against the object's entity tag and modification time.
    pub(crate) fn evaluate(&self, etag: &str, last_modified_ms: i64) -> Verdict {
        let modified_secs = last_modified_ms.div_euclid(1000);

        if let Some(if_match) = self.if_match {
            if !matches(if_match, etag) {
                return Verdict::PreconditionFailed;
            }
        } else if let Some(since) = self.if_unmodified_since
            && modified_secs > unix_seconds(since)
        {
            return Verdict::PreconditionFailed;
        }

        if let Some(if_none_match) = self.if_none_match {
            if matches(if_none_match, etag) {
                return Verdict::NotModified;
            }
        } else if let Some(since) = self.if_modified_since
            && modified_secs <= unix_seconds(since)
        {
            return Verdict::NotModified;
        }

        Verdict::Proceed
    }

    /// Evaluates the conditions of a GET or HEAD: 304 or 412 as S3 answers them.
    pub(crate) fn check_read(&self, meta: &ObjectMeta) -> Result<(), S3Error> {
        match self.evaluate(&meta.etag, meta.last_modified_ms) {
            Verdict::Proceed => Ok(()),
            Verdict::PreconditionFailed => Err(precondition_failed()),
            Verdict::NotModified => {
                let mut error = S3Error::with_message(S3ErrorCode::NotModified, "Not Modified");
                error.set_status_code(StatusCode::NOT_MODIFIED);
                error.set_headers(not_modified_headers(meta));
                Err(error)
            }
        }
    }

    /// Evaluates the copy-source conditions of a CopyObject: every failure is 412.
    pub(crate) fn check_copy_source(&self, meta: &ObjectMeta) -> Result<(), S3Error> {
        match self.evaluate(&meta.etag, meta.last_modified_ms) {
            Verdict::Proceed => Ok(()),
            Verdict::NotModified | Verdict::PreconditionFailed => Err(precondition_failed()),
        }
    }
}

fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// S3 answers 304 with the object's `ETag` and `Last-Modified`, and no body.
fn not_modified_headers(meta: &ObjectMeta) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = ETag::Strong(meta.etag.clone()).to_http_header() {
        headers.insert(http::header::ETAG, value);
    }
    let mut date = Vec::new();
    if timestamp_of_ms(meta.last_modified_ms)
        .format(TimestampFormat::HttpDate, &mut date)
        .is_ok()
        && let Ok(value) = HeaderValue::from_bytes(&date)
    {
        headers.insert(http::header::LAST_MODIFIED, value);
    }
    headers
}

/// Whether an `If-Match`/`If-None-Match` value names this entity tag. S3 compares the
/// opaque values, whether or not the client marked them weak.
fn matches(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == etag,
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_seconds(timestamp: &Timestamp) -> i64 {
    time::OffsetDateTime::from(timestamp.clone()).unix_timestamp()
}

/// A timestamp from milliseconds since the Unix epoch.
pub(crate) fn timestamp_of_ms(ms: i64) -> Timestamp {
    let nanos = i128::from(ms) * 1_000_000;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(time)
}

/// Milliseconds since the Unix epoch of a timestamp.
pub(crate) fn ms_of_timestamp(timestamp: &Timestamp) -> i64 {
    let nanos = time::OffsetDateTime::from(timestamp.clone()).unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";
    // 2025-01-15T10:00:00.250Z
    const MODIFIED_MS: i64 = 1_736_935_200_250;

    fn tag(value: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(value.to_owned()))
    }

    fn at(secs: i64) -> Timestamp {
        timestamp_of_ms(secs * 1000)
    }

    #[test]
    fn if_match_decides_before_if_unmodified_since() {
        let right = tag(ETAG);
        let earlier = at(MODIFIED_MS / 1000 - 60);
        let cond = Conditions {
            if_match: Some(&right),
            if_unmodified_since: Some(&earlier),
            ..Conditions::default()
        };
        assert_eq!(cond.evaluate(ETAG, MODIFIED_MS), Verdict::Proceed);

        let wrong = tag("0");
        let cond = Conditions {
            if_match: Some(&wrong),
            ..Conditions::default()
        };
        assert_eq!(
            cond.evaluate(ETAG, MODIFIED_MS),
            Verdict::PreconditionFailed
        );

        let cond = Conditions {
            if_unmodified_since: Some(&earlier),
            ..Conditions::default()
        };
        assert_eq!(
            cond.evaluate(ETAG, MODIFIED_MS),
            Verdict::PreconditionFailed
        );
    }

    #[test]
    fn if_none_match_decides_before_if_modified_since() {
        let right = tag(ETAG);
        let earlier = at(MODIFIED_MS / 1000 - 60);
        let cond = Conditions {
            if_none_match: Some(&right),
            if_modified_since: Some(&earlier),
            ..Conditions::default()
        };
        assert_eq!(cond.evaluate(ETAG, MODIFIED_MS), Verdict::NotModified);

        let any = ETagCondition::Any;
        let cond = Conditions {
            if_none_match: Some(&any),
            ..Conditions::default()
        };
        assert_eq!(cond.evaluate(ETAG, MODIFIED_MS), Verdict::NotModified);

        let other = tag("0");
        let cond = Conditions {
            if_none_match: Some(&other),
            if_modified_since: Some(&at(MODIFIED_MS / 1000 + 60)),
            ..Conditions::default()
        };
        assert_eq!(cond.evaluate(ETAG, MODIFIED_MS), Verdict::Proceed);
    }

    #[test]
    fn modification_times_compare_at_whole_seconds() {
        let same_second = at(MODIFIED_MS / 1000);
        let cond = Conditions {
            if_modified_since: Some(&same_second),
            ..Conditions::default()
        };
        assert_eq!(cond.evaluate(ETAG, MODIFIED_MS), Verdict::NotModified);
        let cond = Conditions {
            if_unmodified_since: Some(&same_second),
            ..Conditions::default()
        };
        assert_eq!(cond.evaluate(ETAG, MODIFIED_MS), Verdict::Proceed);
    }

    #[test]
    fn not_modified_carries_etag_and_last_modified() {
        let any = ETagCondition::Any;
        let meta = ObjectMeta {
            key: "k".into(),
            size: 0,
            etag: ETAG.into(),
            last_modified_ms: MODIFIED_MS,
            content_type: None,
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            expires_ms: None,
            metadata: Default::default(),
            checksum: None,
            parts_count: None,
        };
        let cond = Conditions {
            if_none_match: Some(&any),
            ..Conditions::default()
        };
        let error = cond.check_read(&meta).unwrap_err();
        assert_eq!(error.status_code(), Some(StatusCode::NOT_MODIFIED));
        let headers = error.headers().unwrap();
        assert_eq!(headers[http::header::ETAG], format!("\"{ETAG}\"").as_str());
        assert_eq!(
            headers[http::header::LAST_MODIFIED],
            "Wed, 15 Jan 2025 10:00:00 GMT"
        );
    }
}
