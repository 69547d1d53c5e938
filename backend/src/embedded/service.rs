//! The S3 operations of the embedded server, on top of [`Store`].
//!
//! s3s parses each request into a typed input after checking its signature; the methods here
//! do what S3 does with it and answer in S3's terms. Operations not implemented here answer
//! `NotImplemented` (s3s's default). Writes are received into a temp file, verified, then
//! committed; the event notification is sent only after the commit.

use std::io::{self, Read as _, SeekFrom, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures::Stream;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, Bucket as BucketDto,
    BucketLocationConstraint, ChecksumAlgorithm, CommonPrefix, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CopyObjectInput, CopyObjectOutput, CopyObjectResult, CopySource,
    CreateBucketInput, CreateBucketOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput,
    DeleteObjectInput, DeleteObjectOutput, DeleteObjectsInput, DeleteObjectsOutput, DeletedObject,
    ETag, ETagCondition, EncodingType, Error as ErrorDto, GetBucketLocationInput,
    GetBucketLocationOutput, GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput,
    HeadObjectInput, HeadObjectOutput, Initiator, ListBucketsInput, ListBucketsOutput,
    ListObjectsInput, ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, ListPartsInput,
    ListPartsOutput, MetadataDirective, Object, ObjectStorageClass, Owner, Part, PostObjectInput,
    PostObjectOutput, PutObjectInput, PutObjectOutput, Range, StorageClass, StreamingBlob,
    UploadPartInput, UploadPartOutput,
};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tokio::io::{AsyncRead as _, AsyncSeekExt as _, ReadBuf};
use tracing::{debug, error, info};

use super::checksum::{BodyHasher, ChecksumKind, StoredChecksum};
use super::conditions::{Conditions, ms_of_timestamp, timestamp_of_ms};
use super::events::{EventName, Notifier, ObjectEvent, RequestOrigin};
use super::listing::{
    ListEntry, ListPage, ListQuery, continuation_token, list_page, parse_continuation_token,
    url_encode,
};
use super::store::{
    Bucket, Change, ObjectMeta, PartMeta, Store, StoreError, UploadMeta, WriteCondition,
    footer_bytes, hex, now_ms, unhex,
};
use super::upload::{Expected, receive};

/// S3's limit for a single PUT and for one part.
const MAX_UPLOAD_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// S3's smallest part, except the last.
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// S3's highest part number.
const MAX_PART_NUMBER: i32 = 10_000;

/// S3's page size limit for listings.
const MAX_KEYS: usize = 1000;

/// Bytes read from an object file per chunk of a response body.
const READ_CHUNK: usize = 256 * 1024;

/// The `Content-Type` S3 reports for objects stored without one.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Sets the `checksum_*` field of an output that matches a stored checksum.
macro_rules! set_checksum {
    ($output:expr, $checksum:expr) => {{
        if let Some(StoredChecksum { kind, value }) = $checksum {
            let value = Some(value.clone());
            match kind {
                ChecksumKind::Crc32 => $output.checksum_crc32 = value,
                ChecksumKind::Crc32c => $output.checksum_crc32c = value,
                ChecksumKind::Crc64Nvme => $output.checksum_crc64nvme = value,
                ChecksumKind::Sha1 => $output.checksum_sha1 = value,
                ChecksumKind::Sha256 => $output.checksum_sha256 = value,
            }
        }
    }};
}

/// Fills the headers GET and HEAD share from the object's metadata.
macro_rules! fill_read_headers {
    ($output:ident, $meta:ident, $with_checksum:expr) => {{
        $output.e_tag = Some(ETag::Strong($meta.etag.clone()));
        $output.last_modified = Some(timestamp_of_ms($meta.last_modified_ms));
        $output.content_type = Some(
            $meta
                .content_type
                .clone()
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
        );
        $output.content_encoding = $meta.content_encoding.clone();
        $output.content_disposition = $meta.content_disposition.clone();
        $output.content_language = $meta.content_language.clone();
        $output.cache_control = $meta.cache_control.clone();
        $output.expires = $meta.expires_ms.map(timestamp_of_ms);
        if !$meta.metadata.is_empty() {
            $output.metadata = Some($meta.metadata.clone().into_iter().collect());
        }
        if $with_checksum {
            set_checksum!($output, &$meta.checksum);
        }
    }};
}

/// The embedded server's implementation of the S3 operations.
#[derive(Debug)]
pub(crate) struct EmbeddedService {
    store: Arc<Store>,
    notifier: Arc<Notifier>,
    region: String,
    owner_id: String,
}

impl EmbeddedService {
    /// A service over `store`, sending events through `notifier`; `owner_id` is the canonical
    /// id shown as the owner of buckets and objects.
    pub(crate) fn new(
        store: Arc<Store>,
        notifier: Notifier,
        region: String,
        owner_id: String,
    ) -> Self {
        Self {
            store,
            notifier: Arc::new(notifier),
            region,
            owner_id,
        }
    }

    fn bucket(&self, name: &str) -> S3Result<Arc<Bucket>> {
        self.store.bucket(name).map_err(store_error)
    }

    fn owner(&self) -> Owner {
        Owner {
            display_name: Some("pixelator".into()),
            id: Some(self.owner_id.clone()),
        }
    }

    /// Receives, verifies and commits a new object, then reports it.
    async fn write_object(&self, new: NewObject, caller: &Caller) -> S3Result<ObjectMeta> {
        let started = Instant::now();
        let bucket = self.bucket(&new.bucket)?;
        if new.length > MAX_UPLOAD_SIZE {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size"
            ));
        }

        let received = receive(&self.store, new.body, &new.expected, new.trailers.as_ref()).await?;
        let mut meta = new.meta;
        meta.size = received.size;
        meta.etag = received.etag();
        meta.last_modified_ms = now_ms();
        meta.checksum = received.checksum.clone();
        let temp = received.seal(&meta).await?;

        let store = Arc::clone(&self.store);
        let notifier = Arc::clone(&self.notifier);
        let caller = caller.clone();
        detached(async move {
            let change = {
                let store = Arc::clone(&store);
                let bucket = Arc::clone(&bucket);
                let meta = meta.clone();
                blocking(move || store.commit_object(&bucket, temp, &meta, &new.condition)).await?
            };
            info!(
                bucket = bucket.name(),
                key = %meta.key,
                bytes = meta.size,
                ms = started.elapsed().as_millis(),
                event = ?new.event,
                "object stored"
            );
            notifier
                .publish(&created(new.event, &bucket, &meta, change, &caller))
                .await;
            Ok(meta)
        })
        .await
    }

    /// Removes one object and reports it; `false` when there was none.
    async fn remove_object(
        &self,
        bucket: &Arc<Bucket>,
        key: &str,
        condition: WriteCondition,
        caller: &Caller,
    ) -> S3Result<bool> {
        let store = Arc::clone(&self.store);
        let notifier = Arc::clone(&self.notifier);
        let bucket = Arc::clone(bucket);
        let key = key.to_owned();
        let caller = caller.clone();
        detached(async move {
            let removed = {
                let store = Arc::clone(&store);
                let bucket = Arc::clone(&bucket);
                let key = key.clone();
                blocking(move || store.delete_object(&bucket, &key, &condition)).await?
            };
            let Some((_, change)) = removed else {
                return Ok(false);
            };
            info!(bucket = bucket.name(), key = %key, "object deleted");

            let event = ObjectEvent {
                name: EventName::Delete,
                bucket: bucket.name(),
                key: &key,
                object: None,
                sequence: change.sequence,
                time_ms: now_ms(),
                access_key: &caller.access_key,
                origin: &caller.origin,
            };
            notifier.publish(&event).await;
            Ok(true)
        })
        .await
    }

    /// Opens an object and checks read conditions; the shared start of GET and HEAD.
    async fn open_for_read(
        &self,
        bucket: &str,
        key: &str,
        conditions: &Conditions<'_>,
    ) -> S3Result<(std::fs::File, ObjectMeta)> {
        let bucket = self.bucket(bucket)?;
        let store = Arc::clone(&self.store);
        let key = key.to_owned();
        let (file, meta) = blocking(move || store.open_object(&bucket, &key)).await?;
        conditions.check_read(&meta)?;
        Ok((file, meta))
    }

    fn list(&self, bucket: &Bucket, query: &ListQuery<'_>) -> ListPage {
        let index = bucket.index();
        list_page(&index, query)
    }

    fn object_dto(
        &self,
        key: &str,
        summary: &super::store::ObjectSummary,
        encode: bool,
        with_owner: bool,
    ) -> Object {
        Object {
            e_tag: Some(ETag::Strong(summary.etag.clone())),
            key: Some(encode_if(key, encode)),
            last_modified: Some(timestamp_of_ms(summary.last_modified_ms)),
            size: Some(i64::try_from(summary.size).unwrap_or(i64::MAX)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            owner: with_owner.then(|| self.owner()),
            ..Object::default()
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone)]
struct Caller {
    access_key: String,
    origin: RequestOrigin,
}

impl Caller {
    fn of<T>(req: &S3Request<T>) -> Self {
        let access_key = req
            .credentials
            .as_ref()
            .map(|c| c.access_key.clone())
            .unwrap_or_default();
        let origin = req
            .extensions
            .get::<RequestOrigin>()
            .cloned()
            .unwrap_or_else(|| RequestOrigin {
                remote_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                request_id: String::new(),
                host_id: String::new(),
            });
        Self { access_key, origin }
    }
}

/// A new object about to be received: where, what the request declares, how it is reported.
struct NewObject {
    bucket: String,
    body: Option<StreamingBlob>,
    length: u64,
    expected: Expected,
    trailers: Option<s3s::TrailingHeaders>,
    meta: ObjectMeta,
    condition: WriteCondition,
    event: EventName,
}

/// The request fields PutObject and PostObject share.
struct UploadFields {
    bucket: String,
    key: String,
    body: Option<StreamingBlob>,
    content_length: Option<i64>,
    content_md5: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<s3s::dto::Timestamp>,
    metadata: Option<s3s::dto::Metadata>,
    checksum_algorithm: Option<ChecksumAlgorithm>,
    checksums: [(ChecksumKind, Option<String>); 5],
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
}

macro_rules! upload_fields {
    ($input:expr) => {{
        let input = $input;
        UploadFields {
            bucket: input.bucket,
            key: input.key,
            body: input.body,
            content_length: input.content_length,
            content_md5: input.content_md5,
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires,
            metadata: input.metadata,
            checksum_algorithm: input.checksum_algorithm,
            checksums: [
                (ChecksumKind::Crc32, input.checksum_crc32),
                (ChecksumKind::Crc32c, input.checksum_crc32c),
                (ChecksumKind::Crc64Nvme, input.checksum_crc64nvme),
                (ChecksumKind::Sha1, input.checksum_sha1),
                (ChecksumKind::Sha256, input.checksum_sha256),
            ],
            if_match: input.if_match,
            if_none_match: input.if_none_match,
        }
    }};
}

impl UploadFields {
    fn into_new_object(
        self,
        headers: &http::HeaderMap,
        trailers: Option<s3s::TrailingHeaders>,
        event: EventName,
    ) -> S3Result<NewObject> {
        let length = match self.content_length {
            Some(length) => u64::try_from(length)
                .map_err(|_| s3_error!(InvalidArgument, "Content-Length must not be negative"))?,
            None if self.body.is_none() || event == EventName::Post => 0,
            None => {
                return Err(s3_error!(
                    MissingContentLength,
                    "You must provide the Content-Length HTTP header."
                ));
            }
        };
        let expected = Expected {
            length,
            content_md5: self.content_md5,
            checksums: self
                .checksums
                .into_iter()
                .filter_map(|(kind, value)| value.map(|value| (kind, value)))
                .collect(),
            trailer: None,
            algorithm: self
                .checksum_algorithm
                .as_ref()
                .and_then(|a| ChecksumKind::from_algorithm(a.as_str())),
        }
        .with_trailer_from(headers);

        let meta = ObjectMeta {
            key: self.key,
            size: 0,
            etag: String::new(),
            last_modified_ms: 0,
            content_type: self.content_type,
            content_encoding: stored_content_encoding(self.content_encoding),
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires_ms: self.expires.as_ref().map(ms_of_timestamp),
            metadata: self
                .metadata
                .map(|m| m.into_iter().collect())
                .unwrap_or_default(),
            checksum: None,
            parts_count: None,
        };
        Ok(NewObject {
            bucket: self.bucket,
            body: self.body,
            length,
            expected,
            trailers,
            meta,
            condition: write_condition(self.if_match, self.if_none_match)?,
            event,
        })
    }
}

#[async_trait::async_trait]
impl S3 for EmbeddedService {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = req.input.bucket;
        let store = Arc::clone(&self.store);
        let created = {
            let name = name.clone();
            blocking(move || store.create_bucket(&name)).await?
        };
        info!(bucket = created.name(), "bucket created");
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.bucket(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..HeadBucketOutput::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.bucket(&req.input.bucket)?;
        // S3 reports us-east-1 as no constraint at all.
        let location_constraint = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint,
        }))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .store
            .buckets()
            .iter()
            .map(|bucket| BucketDto {
                bucket_region: Some(self.region.clone()),
                creation_date: Some(timestamp_of_ms(bucket.created_ms())),
                name: Some(bucket.name().to_owned()),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(self.owner()),
            ..ListBucketsOutput::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let caller = Caller::of(&req);
        let new = upload_fields!(req.input).into_new_object(
            &req.headers,
            req.trailing_headers,
            EventName::Put,
        )?;
        let meta = self.write_object(new, &caller).await?;

        let mut output = PutObjectOutput {
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            size: Some(i64::try_from(meta.size).unwrap_or(i64::MAX)),
            ..PutObjectOutput::default()
        };
        set_checksum!(output, &meta.checksum);
        Ok(S3Response::new(output))
    }

    async fn post_object(
        &self,
        req: S3Request<PostObjectInput>,
    ) -> S3Result<S3Response<PostObjectOutput>> {
        let caller = Caller::of(&req);
        let new = upload_fields!(req.input).into_new_object(
            &req.headers,
            req.trailing_headers,
            EventName::Post,
        )?;
        let meta = self.write_object(new, &caller).await?;
        Ok(S3Response::new(PostObjectOutput {
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            size: Some(i64::try_from(meta.size).unwrap_or(i64::MAX)),
            ..PostObjectOutput::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        if input.part_number.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "GetObject by part number is not supported"
            ));
        }
        let conditions = Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        };
        let (file, meta) = self
            .open_for_read(&input.bucket, &input.key, &conditions)
            .await?;
        let range = byte_range(input.range.as_ref(), meta.size)?;
        let length = range.as_ref().map_or(meta.size, |r| r.end - r.start);
        let start = range.as_ref().map_or(0, |r| r.start);
        let full_checksum = range.is_none() && wants_checksum(input.checksum_mode.as_ref());
        debug!(bucket = %input.bucket, key = %input.key, bytes = length, "object read");

        let mut file = tokio::fs::File::from_std(file);
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(S3Error::internal_error)?;
        let body = StreamingBlob::wrap(FileBody::new(file, length));

        let mut output = GetObjectOutput {
            accept_ranges: Some("bytes".into()),
            body: Some(body),
            content_length: Some(i64::try_from(length).unwrap_or(i64::MAX)),
            content_range: range.map(|r| format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)),
            ..GetObjectOutput::default()
        };
        fill_read_headers!(output, meta, full_checksum);
        Ok(S3Response::new(output))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        if input.part_number.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "HeadObject by part number is not supported"
            ));
        }
        let conditions = Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        };
        let (_, meta) = self
            .open_for_read(&input.bucket, &input.key, &conditions)
            .await?;
        let range = byte_range(input.range.as_ref(), meta.size)?;
        let length = range.as_ref().map_or(meta.size, |r| r.end - r.start);
        let full_checksum = range.is_none() && wants_checksum(input.checksum_mode.as_ref());

        let mut output = HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(length).unwrap_or(i64::MAX)),
            content_range: range.map(|r| format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)),
            ..HeadObjectOutput::default()
        };
        fill_read_headers!(output, meta, full_checksum);
        // s3s sends 200 whatever the status here; the HTTP front turns a ranged HEAD into 206.
        Ok(S3Response::new(output))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let caller = Caller::of(&req);
        let input = req.input;
        let bucket = self.bucket(&input.bucket)?;
        let condition = write_condition(input.if_match, None)?;
        self.remove_object(&bucket, &input.key, condition, &caller)
            .await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let caller = Caller::of(&req);
        let input = req.input;
        let bucket = self.bucket(&input.bucket)?;
        if input.delete.objects.len() > MAX_KEYS {
            return Err(s3_error!(
                MalformedXML,
                "The request may name at most 1000 keys"
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);

        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            let condition = match object.e_tag.as_ref() {
                Some(etag) => WriteCondition::IfMatch(Some(etag.value().to_owned())),
                None => WriteCondition::Always,
            };
            match self
                .remove_object(&bucket, &object.key, condition, &caller)
                .await
            {
                Ok(_) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(object.key),
                            ..DeletedObject::default()
                        });
                    }
                }
                Err(error) => errors.push(ErrorDto {
                    code: Some(error.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: error.message().map(str::to_owned),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            request_charged: None,
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let bucket = self.bucket(&input.bucket)?;
        let encode = url_encoding(input.encoding_type.as_ref())?;
        let max_keys = max_keys(input.max_keys)?;
        let resume = match &input.continuation_token {
            Some(token) => Some(parse_continuation_token(token).ok_or_else(|| {
                s3_error!(
                    InvalidArgument,
                    "The continuation token provided is incorrect"
                )
            })?),
            None => None,
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let query = ListQuery {
            prefix: &prefix,
            delimiter: input.delimiter.as_deref(),
            after: resume.as_deref().or(input.start_after.as_deref()),
            max_keys,
        };

        let page = self.list(&bucket, &query);
        let (contents, common_prefixes) =
            self.page_dtos(&page, encode, input.fetch_owner.unwrap_or(false));
        let output = ListObjectsV2Output {
            name: Some(bucket.name().to_owned()),
            prefix: Some(encode_if(&prefix, encode)),
            delimiter: input.delimiter.as_deref().map(|d| encode_if(d, encode)),
            max_keys: input.max_keys.or(Some(1000)),
            key_count: Some(i32::try_from(page.entries.len()).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next_marker().map(continuation_token),
            start_after: input.start_after.as_deref().map(|s| encode_if(s, encode)),
            is_truncated: Some(page.truncated),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: input.encoding_type,
            request_charged: None,
        };
        Ok(S3Response::new(output))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let bucket = self.bucket(&input.bucket)?;
        let encode = url_encoding(input.encoding_type.as_ref())?;
        let max_keys = max_keys(input.max_keys)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let query = ListQuery {
            prefix: &prefix,
            delimiter: input.delimiter.as_deref(),
            after: input.marker.as_deref(),
            max_keys,
        };

        let page = self.list(&bucket, &query);
        // ListObjects (v1) always shows owners.
        let (contents, common_prefixes) = self.page_dtos(&page, encode, true);
        // S3 sends NextMarker only when a delimiter is given; clients otherwise resume
        // after the last key.
        let next_marker = input
            .delimiter
            .as_ref()
            .and_then(|_| page.next_marker())
            .map(|m| encode_if(m, encode));
        let output = ListObjectsOutput {
            name: Some(bucket.name().to_owned()),
            prefix: Some(encode_if(&prefix, encode)),
            marker: Some(
                input
                    .marker
                    .as_deref()
                    .map(|m| encode_if(m, encode))
                    .unwrap_or_default(),
            ),
            max_keys: input.max_keys.or(Some(1000)),
            is_truncated: Some(page.truncated),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            delimiter: input.delimiter.as_deref().map(|d| encode_if(d, encode)),
            next_marker,
            encoding_type: input.encoding_type,
            request_charged: None,
        };
        Ok(S3Response::new(output))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let started = Instant::now();
        let caller = Caller::of(&req);
        let input = req.input;
        let CopySource::Bucket {
            bucket: source_bucket,
            key: source_key,
            version_id,
        } = &input.copy_source
        else {
            return Err(s3_error!(
                NotImplemented,
                "copying from an access point is not supported"
            ));
        };
        if version_id.as_deref().is_some_and(|v| v != "null") {
            return Err(s3_error!(
                NoSuchVersion,
                "The specified version does not exist."
            ));
        }
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if **source_bucket == *input.bucket && **source_key == *input.key && !replace {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata, storage class, website redirect \
                 location or encryption attributes."
            ));
        }

        let source = self.bucket(source_bucket)?;
        let target = self.bucket(&input.bucket)?;
        let (file, source_meta) = {
            let store = Arc::clone(&self.store);
            let source = Arc::clone(&source);
            let key = source_key.to_string();
            blocking(move || store.open_object(&source, &key)).await?
        };
        let conditions = Conditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        };
        conditions.check_copy_source(&source_meta)?;

        let mut meta = if replace {
            ObjectMeta {
                content_type: input.content_type,
                content_encoding: stored_content_encoding(input.content_encoding),
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires_ms: input.expires.as_ref().map(ms_of_timestamp),
                metadata: input
                    .metadata
                    .map(|m| m.into_iter().collect())
                    .unwrap_or_default(),
                ..source_meta.clone()
            }
        } else {
            source_meta.clone()
        };
        meta.key = input.key.clone();
        meta.parts_count = None;
        meta.last_modified_ms = now_ms();

        let store = Arc::clone(&self.store);
        let notifier = Arc::clone(&self.notifier);
        let meta = detached(async move {
            let (meta, change) = {
                let target = Arc::clone(&target);
                blocking_s3(move || {
                    let temp = store.temp_file();
                    let md5 = copy_bytes(file, source_meta.size, temp.path())
                        .map_err(S3Error::internal_error)?;
                    meta.etag = hex(&md5);
                    append_footer(temp.path(), &meta).map_err(S3Error::internal_error)?;
                    let change = store
                        .commit_object(&target, temp, &meta, &WriteCondition::Always)
                        .map_err(store_error)?;
                    Ok((meta, change))
                })
                .await?
            };
            info!(
                bucket = target.name(),
                key = %meta.key,
                source_bucket = source.name(),
                bytes = meta.size,
                ms = started.elapsed().as_millis(),
                "object copied"
            );
            notifier
                .publish(&created(EventName::Copy, &target, &meta, change, &caller))
                .await;
            Ok(meta)
        })
        .await?;

        let mut result = CopyObjectResult {
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            last_modified: Some(timestamp_of_ms(meta.last_modified_ms)),
            ..CopyObjectResult::default()
        };
        set_checksum!(result, &meta.checksum);
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            ..CopyObjectOutput::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        self.bucket(&input.bucket)?;
        let upload = UploadMeta {
            bucket: input.bucket.clone(),
            object: ObjectMeta {
                key: input.key.clone(),
                size: 0,
                etag: String::new(),
                last_modified_ms: 0,
                content_type: input.content_type,
                content_encoding: stored_content_encoding(input.content_encoding),
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires_ms: input.expires.as_ref().map(ms_of_timestamp),
                metadata: input
                    .metadata
                    .map(|m| m.into_iter().collect())
                    .unwrap_or_default(),
                checksum: None,
                parts_count: None,
            },
            initiated_ms: now_ms(),
        };
        let store = Arc::clone(&self.store);
        let upload_id = blocking(move || store.create_upload(&upload)).await?;
        debug!(bucket = %input.bucket, key = %input.key, %upload_id, "multipart upload created");
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            checksum_algorithm: input.checksum_algorithm,
            ..CreateMultipartUploadOutput::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let headers = req.headers;
        let trailers = req.trailing_headers;
        let input = req.input;
        let part_number = part_number(input.part_number)?;
        self.bucket(&input.bucket)?;
        let upload = {
            let store = Arc::clone(&self.store);
            let id = input.upload_id.clone();
            blocking(move || store.upload(&id)).await?
        };
        if upload.bucket != input.bucket || upload.object.key != input.key {
            return Err(no_such_upload());
        }

        let length = input
            .content_length
            .ok_or_else(|| {
                s3_error!(
                    MissingContentLength,
                    "You must provide the Content-Length HTTP header."
                )
            })
            .and_then(|l| {
                u64::try_from(l)
                    .map_err(|_| s3_error!(InvalidArgument, "Content-Length must not be negative"))
            })?;
        if length > MAX_UPLOAD_SIZE {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size"
            ));
        }
        let expected = Expected {
            length,
            content_md5: input.content_md5,
            checksums: [
                (ChecksumKind::Crc32, input.checksum_crc32),
                (ChecksumKind::Crc32c, input.checksum_crc32c),
                (ChecksumKind::Crc64Nvme, input.checksum_crc64nvme),
                (ChecksumKind::Sha1, input.checksum_sha1),
                (ChecksumKind::Sha256, input.checksum_sha256),
            ]
            .into_iter()
            .filter_map(|(kind, value)| value.map(|value| (kind, value)))
            .collect(),
            trailer: None,
            algorithm: input
                .checksum_algorithm
                .as_ref()
                .and_then(|a| ChecksumKind::from_algorithm(a.as_str())),
        }
        .with_trailer_from(&headers);

        let received = receive(&self.store, input.body, &expected, trailers.as_ref()).await?;
        let part = PartMeta {
            part_number,
            size: received.size,
            etag: received.etag(),
            last_modified_ms: now_ms(),
            checksum: received.checksum.clone(),
        };
        let temp = received.seal(&part).await?;
        {
            let store = Arc::clone(&self.store);
            let id = input.upload_id.clone();
            let part = part.clone();
            blocking(move || store.commit_part(&id, temp, &part)).await?;
        }
        debug!(upload_id = %input.upload_id, part_number, bytes = part.size, "part stored");

        let mut output = UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            ..UploadPartOutput::default()
        };
        set_checksum!(output, part.checksum);
        Ok(S3Response::new(output))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let started = Instant::now();
        let caller = Caller::of(&req);
        let input = req.input;
        let bucket = self.bucket(&input.bucket)?;
        let condition = write_condition(input.if_match, input.if_none_match)?;

        let requested = requested_parts(input.multipart_upload.and_then(|m| m.parts))?;
        let store = Arc::clone(&self.store);
        let notifier = Arc::clone(&self.notifier);
        let id = input.upload_id.clone();
        let key = input.key.clone();
        let meta = detached(async move {
            let (meta, change) = {
                let bucket = Arc::clone(&bucket);
                blocking_s3(move || {
                    complete_upload(&store, &bucket, &id, &key, &requested, &condition)
                })
                .await?
            };
            info!(
                bucket = bucket.name(),
                key = %meta.key,
                bytes = meta.size,
                parts = meta.parts_count,
                ms = started.elapsed().as_millis(),
                "multipart upload completed"
            );
            let event = created(
                EventName::CompleteMultipartUpload,
                &bucket,
                &meta,
                change,
                &caller,
            );
            notifier.publish(&event).await;
            Ok(meta)
        })
        .await?;

        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(ETag::Strong(meta.etag)),
            location: Some(format!("/{}/{}", input.bucket, url_encode(&input.key))),
            ..CompleteMultipartUploadOutput::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        self.bucket(&input.bucket)?;
        let store = Arc::clone(&self.store);
        blocking_s3(move || {
            let upload = store.upload(&input.upload_id).map_err(store_error)?;
            if upload.bucket != input.bucket || upload.object.key != input.key {
                return Err(no_such_upload());
            }
            store.abort_upload(&input.upload_id).map_err(store_error)
        })
        .await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        self.bucket(&input.bucket)?;
        let max_parts = match input.max_parts {
            Some(n) if n < 0 => {
                return Err(s3_error!(InvalidArgument, "max-parts must not be negative"));
            }
            Some(n) => usize::try_from(n).unwrap_or(MAX_KEYS).min(MAX_KEYS),
            None => MAX_KEYS,
        };
        let marker = input.part_number_marker.unwrap_or(0);
        let (upload, parts) = {
            let store = Arc::clone(&self.store);
            let id = input.upload_id.clone();
            blocking(move || Ok((store.upload(&id)?, store.parts(&id)?))).await?
        };
        if upload.bucket != input.bucket || upload.object.key != input.key {
            return Err(no_such_upload());
        }

        let after_marker: Vec<&PartMeta> = parts
            .iter()
            .filter(|p| i64::from(p.part_number) > i64::from(marker))
            .collect();
        let truncated = after_marker.len() > max_parts;
        let page: Vec<Part> = after_marker
            .iter()
            .take(max_parts)
            .map(|p| {
                let mut part = Part {
                    e_tag: Some(ETag::Strong(p.etag.clone())),
                    last_modified: Some(timestamp_of_ms(p.last_modified_ms)),
                    part_number: i32::try_from(p.part_number).ok(),
                    size: i64::try_from(p.size).ok(),
                    ..Part::default()
                };
                set_checksum!(part, &p.checksum);
                part
            })
            .collect();
        let next_marker = page.last().and_then(|p| p.part_number);

        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: if truncated { next_marker } else { None },
            max_parts: Some(i32::try_from(max_parts).unwrap_or(i32::MAX)),
            is_truncated: Some(truncated),
            parts: Some(page),
            owner: Some(self.owner()),
            initiator: Some(Initiator {
                display_name: Some("pixelator".into()),
                id: Some(self.owner_id.clone()),
            }),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..ListPartsOutput::default()
        }))
    }
}

impl EmbeddedService {
    fn page_dtos(
        &self,
        page: &ListPage,
        encode: bool,
        with_owner: bool,
    ) -> (Vec<Object>, Vec<CommonPrefix>) {
        let mut contents = Vec::new();
        let mut common_prefixes = Vec::new();
        for entry in &page.entries {
            match entry {
                ListEntry::Object(key, summary) => {
                    contents.push(self.object_dto(key, summary, encode, with_owner))
                }
                ListEntry::CommonPrefix(prefix) => common_prefixes.push(CommonPrefix {
                    prefix: Some(encode_if(prefix, encode)),
                }),
            }
        }
        (contents, common_prefixes)
    }
}

/// Completes a multipart upload: checks the requested parts, concatenates them into a new
/// object with S3's multipart entity tag, commits it and removes the parts. On any failure
/// the upload stays as it was.
fn complete_upload(
    store: &Store,
    bucket: &Bucket,
    id: &str,
    key: &str,
    requested: &[(u32, String)],
    condition: &WriteCondition,
) -> S3Result<(ObjectMeta, Change)> {
    let claimed = store.claim_upload(id).map_err(store_error)?;
    let assembled = (|| {
        if claimed.meta.bucket != bucket.name() || claimed.meta.object.key != key {
            return Err(no_such_upload());
        }

        let mut chosen = Vec::with_capacity(requested.len());
        for (number, etag) in requested {
            let part = claimed
                .parts
                .iter()
                .find(|p| p.part_number == *number && p.etag == *etag)
                .ok_or_else(|| {
                    s3_error!(
                        InvalidPart,
                        "One or more of the specified parts could not be found. The part may not \
                         have been uploaded, or the specified entity tag may not match the part's \
                         entity tag."
                    )
                })?;
            chosen.push(part.clone());
        }
        if let Some((_, all_but_last)) = chosen.split_last()
            && all_but_last.iter().any(|p| p.size < MIN_PART_SIZE)
        {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size."
            ));
        }

        let temp = store.temp_file();
        let mut md5_of_md5s = BodyHasher::new(&[]);
        for part in &chosen {
            md5_of_md5s.update(&unhex(&part.etag).ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::InternalError,
                    "stored part has a malformed entity tag",
                )
            })?);
        }
        let mut meta = claimed.meta.object.clone();
        meta.size = chosen.iter().map(|p| p.size).sum();
        meta.etag = format!("{}-{}", hex(&md5_of_md5s.finish().md5), chosen.len());
        meta.last_modified_ms = now_ms();
        meta.parts_count = u32::try_from(chosen.len()).ok();

        let mut file = std::fs::File::create_new(temp.path()).map_err(S3Error::internal_error)?;
        {
            let mut writer = io::BufWriter::with_capacity(READ_CHUNK, &mut file);
            store
                .copy_parts(&claimed, &chosen, &mut writer)
                .map_err(store_error)?;
            writer
                .write_all(&footer_bytes(&meta))
                .map_err(S3Error::internal_error)?;
            writer.flush().map_err(S3Error::internal_error)?;
        }
        file.sync_all().map_err(S3Error::internal_error)?;
        drop(file);

        let change = store
            .commit_object(bucket, temp, &meta, condition)
            .map_err(store_error)?;
        Ok((meta, change))
    })();

    match assembled {
        Ok(done) => {
            if let Err(error) = store.finish_upload(claimed) {
                error!(%error, "cannot remove the parts of a completed upload");
            }
            Ok(done)
        }
        Err(refusal) => {
            store.release_upload(claimed).map_err(store_error)?;
            Err(refusal)
        }
    }
}

/// Copies `size` bytes of an object file into a new file, returning their MD5.
fn copy_bytes(
    mut source: std::fs::File,
    size: u64,
    target: &std::path::Path,
) -> io::Result<[u8; 16]> {
    let mut out = io::BufWriter::with_capacity(READ_CHUNK, std::fs::File::create_new(target)?);
    let mut hasher = BodyHasher::new(&[]);
    let mut buffer = vec![0_u8; READ_CHUNK];
    let mut remaining = size;
    while remaining > 0 {
        let want = usize::try_from(remaining)
            .unwrap_or(READ_CHUNK)
            .min(READ_CHUNK);
        let read = source.read(&mut buffer[..want])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "object file shorter than recorded",
            ));
        }
        hasher.update(&buffer[..read]);
        out.write_all(&buffer[..read])?;
        remaining -= read as u64;
    }
    out.flush()?;
    Ok(hasher.finish().md5)
}

/// Appends the footer to a file written by [`copy_bytes`] and syncs it.
fn append_footer(path: &std::path::Path, meta: &ObjectMeta) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    file.write_all(&footer_bytes(meta))?;
    file.sync_all()
}

/// The parts a CompleteMultipartUpload names, checked for S3's rules on their order.
fn requested_parts(parts: Option<Vec<s3s::dto::CompletedPart>>) -> S3Result<Vec<(u32, String)>> {
    let parts = parts.unwrap_or_default();
    if parts.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let mut requested: Vec<(u32, String)> = Vec::with_capacity(parts.len());
    for part in parts {
        let number = part_number(part.part_number.unwrap_or(0))?;
        let etag = part
            .e_tag
            .map(ETag::into_value)
            .ok_or_else(|| s3_error!(InvalidPart, "Each part needs its ETag"))?;
        if requested
            .last()
            .is_some_and(|(previous, _)| *previous >= number)
        {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number."
            ));
        }
        requested.push((number, etag));
    }
    Ok(requested)
}

fn part_number(number: i32) -> S3Result<u32> {
    if (1..=MAX_PART_NUMBER).contains(&number) {
        Ok(u32::try_from(number).expect("checked to be positive"))
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ))
    }
}

/// The write condition of a PUT or CompleteMultipartUpload. S3 accepts only `*` in
/// `If-None-Match` on writes.
fn write_condition(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> S3Result<WriteCondition> {
    match (if_match, if_none_match) {
        (None, None) => Ok(WriteCondition::Always),
        (None, Some(ETagCondition::Any)) => Ok(WriteCondition::IfAbsent),
        (None, Some(ETagCondition::ETag(_))) => Err(s3_error!(
            NotImplemented,
            "A header you provided implies functionality that is not implemented: If-None-Match accepts only *"
        )),
        (Some(ETagCondition::Any), None) => Ok(WriteCondition::IfMatch(None)),
        (Some(ETagCondition::ETag(etag)), None) => {
            Ok(WriteCondition::IfMatch(Some(etag.into_value())))
        }
        (Some(_), Some(_)) => Err(s3_error!(
            NotImplemented,
            "A header you provided implies functionality that is not implemented: If-Match with If-None-Match"
        )),
    }
}

/// `Content-Encoding` as S3 keeps it: without the `aws-chunked` transfer coding.
fn stored_content_encoding(encoding: Option<String>) -> Option<String> {
    let encoding = encoding?;
    let kept: Vec<&str> = encoding
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

fn byte_range(range: Option<&Range>, size: u64) -> S3Result<Option<std::ops::Range<u64>>> {
    match range {
        None => Ok(None),
        Some(range) => range
            .check(size)
            .map(Some)
            .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable")),
    }
}

fn wants_checksum(mode: Option<&s3s::dto::ChecksumMode>) -> bool {
    mode.is_some_and(|m| {
        m.as_str()
            .eq_ignore_ascii_case(s3s::dto::ChecksumMode::ENABLED)
    })
}

fn url_encoding(encoding: Option<&EncodingType>) -> S3Result<bool> {
    match encoding {
        None => Ok(false),
        Some(e) if e.as_str() == EncodingType::URL => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

fn max_keys(max_keys: Option<i32>) -> S3Result<usize> {
    match max_keys {
        None => Ok(MAX_KEYS),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(MAX_KEYS).min(MAX_KEYS)),
    }
}

fn encode_if(text: &str, encode: bool) -> String {
    if encode {
        url_encode(text)
    } else {
        text.to_owned()
    }
}

fn no_such_upload() -> S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

/// S3's answer to a storage failure.
fn store_error(error: StoreError) -> S3Error {
    match error {
        StoreError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        StoreError::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        StoreError::NoSuchUpload => no_such_upload(),
        StoreError::BucketExists => s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        ),
        StoreError::PreconditionFailed => s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ),
        other => {
            error!(error = %other, "storage failure");
            S3Error::internal_error(other)
        }
    }
}

/// Runs the end of a write (commit, then event) in a task of its own: if the client goes
/// away meanwhile, the request's future is dropped, but the work is not cut between the commit
/// and the event, which would leave an object stored and never reported.
async fn detached<T, F>(work: F) -> S3Result<T>
where
    T: Send + 'static,
    F: Future<Output = S3Result<T>> + Send + 'static,
{
    tokio::spawn(work).await.map_err(S3Error::internal_error)?
}

/// The event of a created object.
fn created<'a>(
    name: EventName,
    bucket: &'a Bucket,
    meta: &'a ObjectMeta,
    change: Change,
    caller: &'a Caller,
) -> ObjectEvent<'a> {
    ObjectEvent {
        name,
        bucket: bucket.name(),
        key: &meta.key,
        object: Some((meta.size, &meta.etag)),
        sequence: change.sequence,
        time_ms: meta.last_modified_ms,
        access_key: &caller.access_key,
        origin: &caller.origin,
    }
}

/// Runs blocking store work off the async threads.
async fn blocking<T, F>(work: F) -> S3Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(S3Error::internal_error)?
        .map_err(store_error)
}

/// Like [`blocking`], for work that answers in S3's terms itself.
async fn blocking_s3<T, F>(work: F) -> S3Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> S3Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(S3Error::internal_error)?
}

/// A response body read from an object file, chunk by chunk.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buffer: Vec<u8>,
}

impl FileBody {
    fn new(file: tokio::fs::File, length: u64) -> Self {
        Self {
            file,
            remaining: length,
            buffer: Vec::new(),
        }
    }
}

impl Stream for FileBody {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(READ_CHUNK)
            .min(READ_CHUNK);
        this.buffer.resize(want, 0);
        let mut read = ReadBuf::new(&mut this.buffer[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Some(Err(error))),
            Poll::Ready(Ok(())) => {
                let filled = read.filled();
                if filled.is_empty() {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "object file shorter than recorded",
                    ))));
                }
                this.remaining -= filled.len() as u64;
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(filled))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_not_kept_as_content_encoding() {
        assert_eq!(stored_content_encoding(Some("aws-chunked".into())), None);
        assert_eq!(
            stored_content_encoding(Some("aws-chunked,gzip".into())),
            Some("gzip".into())
        );
        assert_eq!(
            stored_content_encoding(Some("gzip".into())),
            Some("gzip".into())
        );
        assert_eq!(stored_content_encoding(None), None);
    }

    #[test]
    fn completion_parts_must_ascend() {
        let part = |n: i32| s3s::dto::CompletedPart {
            part_number: Some(n),
            e_tag: Some(ETag::Strong("abc".into())),
            ..s3s::dto::CompletedPart::default()
        };
        assert_eq!(
            requested_parts(Some(vec![part(1), part(3)])).unwrap().len(),
            2
        );
        let refused = requested_parts(Some(vec![part(2), part(1)])).unwrap_err();
        assert_eq!(*refused.code(), S3ErrorCode::InvalidPartOrder);
        let refused = requested_parts(Some(vec![part(1), part(1)])).unwrap_err();
        assert_eq!(*refused.code(), S3ErrorCode::InvalidPartOrder);
        assert_eq!(
            *requested_parts(None).unwrap_err().code(),
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            *requested_parts(Some(vec![part(0)])).unwrap_err().code(),
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn writes_accept_only_star_in_if_none_match() {
        let tag = || ETagCondition::ETag(ETag::Strong("abc".into()));
        assert_eq!(
            write_condition(None, Some(ETagCondition::Any)).unwrap(),
            WriteCondition::IfAbsent
        );
        assert_eq!(
            write_condition(Some(tag()), None).unwrap(),
            WriteCondition::IfMatch(Some("abc".into()))
        );
        assert!(write_condition(None, Some(tag())).is_err());
    }
}
