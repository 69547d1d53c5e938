//! The embedded server's storage: buckets and objects in a data folder on local disk.
//!
//! No object key ever becomes a path. An object lives in one file named after the SHA-256
//! of its key, so every valid key (1 to 1024 bytes of UTF-8, with `//`, `..` or slashes at
//! either end as ordinary characters) has a file name of the same fixed shape, inside its own
//! bucket's folder. The file holds the object's bytes followed by a footer: the metadata as
//! JSON (the full key included), the footer's length and a magic. Layout of the data folder:
//!
//! - `FORMAT` and `LOCK`: the folder's format, and a file locked while a process uses it.
//! - `tmp/`: files being received. Emptied at start, never listed.
//! - `buckets/<bucket>/bucket.json`: when the bucket was created.
//! - `buckets/<bucket>/objects/<aa>/<sha256 of key, 64 hex digits>`: one file per object.
//! - `multipart/<upload id>/upload.json` and `multipart/<upload id>/<part number>`: the
//!   multipart uploads in progress, parts in the object file format.
//!
//! A write goes to `tmp/`, is synced, then renamed into place; the rename, followed by a sync
//! of the folder, is the moment the object becomes visible, and the in-memory index that
//! serves listings is updated under the same lock. A crash at any point leaves either the old
//! object or the new one, and at worst a stray file in `tmp/` that the next start removes.
//! The index is rebuilt from the object files' footers at start.
//!
//! Everything here is blocking file I/O: async callers go through `spawn_blocking`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use s3s::crypto::{Checksum as _, Sha256};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::checksum::StoredChecksum;

/// Marks the end of every object and part file.
const FOOTER_MAGIC: &[u8; 8] = b"PXS3OBJ1";

/// Bytes after the footer JSON: its length (u32, little endian) and the magic.
const FOOTER_TRAILER_LEN: u64 = 12;

/// Largest footer accepted when reading; keys and metadata are far smaller.
const MAX_FOOTER_LEN: u32 = 1 << 20;

/// Written at the top of the data folder so a folder of some other program is not mistaken
/// for ours.
const FORMAT_FILE: &str = "FORMAT";
const FORMAT_TEXT: &str = "pixelator embedded S3 store, format 1\n";

/// Locked while a process has the store open.
const LOCK_FILE: &str = "LOCK";

/// Suffix of a multipart upload folder that a completion has claimed.
const COMPLETING_SUFFIX: &str = ".completing";

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The file system refused an operation (permissions, disk full, I/O error).
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A file in the data folder is not in the expected format.
    #[error("corrupt store file {}: {reason}", path.display())]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The data folder belongs to something else.
    #[error("{} is not an embedded S3 data folder: {reason}", path.display())]
    ForeignFolder {
        /// The data folder.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// Another process has the data folder open.
    #[error("{} is in use by another process", path.display())]
    Locked {
        /// The data folder.
        path: PathBuf,
    },
    /// The bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// The bucket exists already.
    #[error("bucket already exists")]
    BucketExists,
    /// The object does not exist.
    #[error("no such key")]
    NoSuchKey,
    /// The multipart upload does not exist (never created, completed or aborted).
    #[error("no such multipart upload")]
    NoSuchUpload,
    /// A write condition (`If-Match`, `If-None-Match`) does not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// Two keys share a SHA-256; the second one cannot be stored.
    #[error("key hash collides with the stored key {existing:?}")]
    HashCollision {
        /// The key already stored under that hash.
        existing: String,
    },
}

/// Attaches the path to an I/O error.
trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Everything kept about one object, stored in its file's footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectMeta {
    /// The key, exactly as given.
    pub key: String,
    /// Length of the object's bytes.
    pub size: u64,
    /// S3's entity tag without quotes: MD5 hex, or `md5-of-md5s-N` after a multipart upload.
    pub etag: String,
    /// When the object was written, in milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// `Content-Type` as given at upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Encoding` as given at upload, without `aws-chunked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Disposition` as given at upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Language` as given at upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Cache-Control` as given at upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Expires` as given at upload, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// User metadata (`x-amz-meta-*`), names without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The full-object checksum verified at upload, if the client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
    /// Number of parts when the object came from a multipart upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts_count: Option<u32>,
}

impl ObjectMeta {
    /// The part of the metadata that listings need.
    pub(crate) fn summary(&self) -> ObjectSummary {
        ObjectSummary {
            size: self.size,
            etag: self.etag.clone(),
            last_modified_ms: self.last_modified_ms,
        }
    }
}

/// What a listing shows about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectSummary {
    /// Length in bytes.
    pub size: u64,
    /// Entity tag without quotes.
    pub etag: String,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// The sorted keys of one bucket; `String`'s order is S3's (bytes of the UTF-8 form).
pub(crate) type ObjectIndex = BTreeMap<String, ObjectSummary>;

/// A multipart upload's own record, written when it is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UploadMeta {
    /// The bucket the object will be stored in.
    pub bucket: String,
    /// Metadata of the object to be; `size`, `etag` and `last_modified_ms` are filled at
    /// completion.
    pub object: ObjectMeta,
    /// When the upload was created, in milliseconds since the Unix epoch.
    pub initiated_ms: i64,
}

/// One uploaded part, stored in its file's footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartMeta {
    /// 1 to 10000.
    pub part_number: u32,
    /// Length of the part's bytes.
    pub size: u64,
    /// MD5 hex of the part's bytes.
    pub etag: String,
    /// When the part was written, in milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// The part's checksum verified at upload, if the client sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
}

/// A condition a write must meet, checked atomically with the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteCondition {
    /// Write whatever is there.
    Always,
    /// `If-None-Match: *`: only if the key does not exist.
    IfAbsent,
    /// `If-Match`: only if the key exists with this entity tag (`None` for `*`).
    IfMatch(Option<String>),
}

/// The outcome of a write or removal that changed what a bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    /// Position of the change in the store's history: strictly increasing, also across
    /// restarts (it starts from the clock), and assigned while the bucket is locked, so that
    /// changes to one key are numbered in the order they took effect.
    pub sequence: u64,
}

/// A file in `tmp/` that is removed when dropped, unless it was committed.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        match fs::remove_file(&self.path) {
            Ok(()) => debug!(path = %self.path.display(), "removed refused upload"),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => warn!(path = %self.path.display(), %error, "cannot remove temp file"),
        }
    }
}

/// One bucket: its folder and the index of its keys.
#[derive(Debug)]
pub(crate) struct Bucket {
    name: String,
    dir: PathBuf,
    created_ms: i64,
    index: Mutex<ObjectIndex>,
}

impl Bucket {
    /// The bucket's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// When the bucket was created, in milliseconds since the Unix epoch.
    pub(crate) fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// Locks the index for reading it (listings).
    pub(crate) fn index(&self) -> MutexGuard<'_, ObjectIndex> {
        // A panic while the lock was held cannot leave the map half-updated (every update is
        // a single insert or remove), so a poisoned lock is still safe to use.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The file of a key: a function of the key's hash alone.
    fn object_path(&self, key: &str) -> PathBuf {
        let name = key_file_name(key);
        self.dir.join("objects").join(&name[..2]).join(name)
    }
}

/// The store: buckets, objects and multipart uploads under one data folder.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    tmp: PathBuf,
    buckets_dir: PathBuf,
    multipart_dir: PathBuf,
    buckets: RwLock<BTreeMap<String, Arc<Bucket>>>,
    sequence: AtomicU64,
    temp_counter: AtomicU64,
    /// Held (with an exclusive lock) while the store is open, so that two processes never
    /// share a data folder.
    _lock: File,
}

impl Store {
    /// Opens the data folder (creating it when missing), removes what interrupted writes left
    /// in `tmp/`, and rebuilds every bucket's index from the object files.
    pub(crate) fn open(root: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(root).at(root)?;
        check_format_file(root)?;
        let lock = lock_folder(root)?;

        let tmp = root.join("tmp");
        let buckets_dir = root.join("buckets");
        let multipart_dir = root.join("multipart");
        for dir in [&tmp, &buckets_dir, &multipart_dir] {
            fs::create_dir_all(dir).at(dir)?;
        }
        clear_folder(&tmp)?;
        restore_claimed_uploads(&multipart_dir)?;

        let mut buckets = BTreeMap::new();
        for entry in fs::read_dir(&buckets_dir).at(&buckets_dir)? {
            let entry = entry.at(&buckets_dir)?;
            let dir = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                warn!(path = %dir.display(), "ignoring a folder that is not a bucket name");
                continue;
            };
            let bucket = load_bucket(name.clone(), dir)?;
            buckets.insert(name, Arc::new(bucket));
        }

        let objects: usize = buckets.values().map(|b| b.index().len()).sum();
        debug!(root = %root.display(), buckets = buckets.len(), objects, "store opened");
        Ok(Self {
            root: root.to_owned(),
            tmp,
            buckets_dir,
            multipart_dir,
            buckets: RwLock::new(buckets),
            sequence: AtomicU64::new(0),
            temp_counter: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// The data folder.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a bucket; `BucketExists` when it is there already.
    pub(crate) fn create_bucket(&self, name: &str) -> Result<Arc<Bucket>, StoreError> {
        let mut buckets = self
            .buckets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.contains_key(name) {
            return Err(StoreError::BucketExists);
        }

        // Build the bucket's folder in tmp/ and rename it into place, so a bucket folder
        // always has its bucket.json.
        let staging = self.temp_path("bucket");
        fs::create_dir_all(staging.join("objects")).at(&staging)?;
        let created_ms = now_ms();
        let record = BucketRecord { created_ms };
        let record_path = staging.join("bucket.json");
        write_synced(&record_path, &to_json(&record))?;
        sync_dir(&staging)?;
        let dir = self.buckets_dir.join(name);
        fs::rename(&staging, &dir).at(&dir)?;
        sync_dir(&self.buckets_dir)?;

        let bucket = Arc::new(Bucket {
            name: name.to_owned(),
            dir,
            created_ms,
            index: Mutex::new(ObjectIndex::new()),
        });
        buckets.insert(name.to_owned(), Arc::clone(&bucket));
        Ok(bucket)
    }

    /// The bucket of that name.
    pub(crate) fn bucket(&self, name: &str) -> Result<Arc<Bucket>, StoreError> {
        let buckets = self
            .buckets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.get(name).cloned().ok_or(StoreError::NoSuchBucket)
    }

    /// All buckets, sorted by name.
    pub(crate) fn buckets(&self) -> Vec<Arc<Bucket>> {
        let buckets = self
            .buckets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.values().cloned().collect()
    }

    /// A new, unique path in `tmp/`; the caller creates the file.
    pub(crate) fn temp_file(&self) -> TempFile {
        TempFile {
            path: self.temp_path("upload"),
            committed: false,
        }
    }

    fn temp_path(&self, what: &str) -> PathBuf {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Opens an object for reading: the file positioned at its first byte, and its metadata.
    pub(crate) fn open_object(
        &self,
        bucket: &Bucket,
        key: &str,
    ) -> Result<(File, ObjectMeta), StoreError> {
        let path = bucket.object_path(key);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchKey);
            }
            Err(error) => {
                return Err(StoreError::Io {
                    path,
                    source: error,
                });
            }
        };
        let meta: ObjectMeta = read_footer(&mut file, &path)?;
        if meta.key != key {
            return Err(StoreError::NoSuchKey);
        }
        file.seek(SeekFrom::Start(0)).at(&path)?;
        Ok((file, meta))
    }

    /// Makes a sealed temp file the object `meta.key`, if `condition` holds.
    pub(crate) fn commit_object(
        &self,
        bucket: &Bucket,
        temp: TempFile,
        meta: &ObjectMeta,
        condition: &WriteCondition,
    ) -> Result<Change, StoreError> {
        let path = bucket.object_path(&meta.key);
        let folder = path.parent().expect("object paths have a fan-out folder");
        ensure_dir(folder)?;

        let mut index = bucket.index();
        check_condition(index.get(&meta.key), condition)?;
        if !index.contains_key(&meta.key) && path.exists() {
            let existing = read_footer::<ObjectMeta>(&mut File::open(&path).at(&path)?, &path)?;
            return Err(StoreError::HashCollision {
                existing: existing.key,
            });
        }

        let mut temp = temp;
        fs::rename(&temp.path, &path).at(&path)?;
        temp.committed = true;
        sync_dir(folder)?;

        index.insert(meta.key.clone(), meta.summary());
        Ok(Change {
            sequence: self.next_sequence(),
        })
    }

    /// Removes an object if `condition` holds; `None` when there was none.
    pub(crate) fn delete_object(
        &self,
        bucket: &Bucket,
        key: &str,
        condition: &WriteCondition,
    ) -> Result<Option<(ObjectSummary, Change)>, StoreError> {
        let path = bucket.object_path(key);
        let mut index = bucket.index();
        check_condition(index.get(key), condition)?;
        let Some(summary) = index.get(key).cloned() else {
            return Ok(None);
        };

        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        if let Some(folder) = path.parent() {
            sync_dir(folder)?;
        }

        index.remove(key);
        Ok(Some((
            summary,
            Change {
                sequence: self.next_sequence(),
            },
        )))
    }

    fn next_sequence(&self) -> u64 {
        let now = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        )
        .unwrap_or(u64::MAX);
        let previous = self
            .sequence
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .unwrap_or_else(|last| last);
        now.max(previous.saturating_add(1))
    }

    /// Starts a multipart upload and returns its id.
    pub(crate) fn create_upload(&self, meta: &UploadMeta) -> Result<String, StoreError> {
        let id = new_upload_id(
            &meta.object.key,
            self.temp_counter.fetch_add(1, Ordering::Relaxed),
        );

        let staging = self.temp_path("multipart");
        fs::create_dir_all(&staging).at(&staging)?;
        write_synced(&staging.join("upload.json"), &to_json(meta))?;
        sync_dir(&staging)?;
        let dir = self.multipart_dir.join(&id);
        fs::rename(&staging, &dir).at(&dir)?;
        sync_dir(&self.multipart_dir)?;
        Ok(id)
    }

    /// The record of an upload in progress.
    pub(crate) fn upload(&self, id: &str) -> Result<UploadMeta, StoreError> {
        let dir = self.upload_dir(id)?;
        read_upload_meta(&dir)
    }

    /// Makes a sealed temp file part `part.part_number` of an upload, replacing an earlier
    /// upload of the same part number.
    pub(crate) fn commit_part(
        &self,
        id: &str,
        temp: TempFile,
        part: &PartMeta,
    ) -> Result<(), StoreError> {
        let dir = self.upload_dir(id)?;
        let path = dir.join(part_file_name(part.part_number));
        let mut temp = temp;
        match fs::rename(&temp.path, &path) {
            Ok(()) => {}
            // Completed or aborted meanwhile: its folder has moved away.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchUpload);
            }
            Err(source) => return Err(StoreError::Io { path, source }),
        }
        temp.committed = true;
        sync_dir(&dir)
    }

    /// The parts uploaded so far, by part number.
    pub(crate) fn parts(&self, id: &str) -> Result<Vec<PartMeta>, StoreError> {
        let dir = self.upload_dir(id)?;
        read_parts(&dir)
    }

    /// Abandons an upload and its parts.
    pub(crate) fn abort_upload(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.upload_dir(id)?;
        let doomed = self.temp_path("aborted");
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchUpload);
            }
            Err(source) => return Err(StoreError::Io { path: dir, source }),
        }
        sync_dir(&self.multipart_dir)?;
        fs::remove_dir_all(&doomed).at(&doomed)
    }

    /// Claims an upload for completion, so that no part can be added or replaced meanwhile.
    /// The claim is released by [`Store::finish_upload`] or [`Store::release_upload`].
    pub(crate) fn claim_upload(&self, id: &str) -> Result<ClaimedUpload, StoreError> {
        let dir = self.upload_dir(id)?;
        let claimed = self.multipart_dir.join(format!("{id}{COMPLETING_SUFFIX}"));
        match fs::rename(&dir, &claimed) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchUpload);
            }
            Err(source) => return Err(StoreError::Io { path: dir, source }),
        }
        let meta = read_upload_meta(&claimed)?;
        let parts = read_parts(&claimed)?;
        Ok(ClaimedUpload {
            id: id.to_owned(),
            dir: claimed,
            meta,
            parts,
        })
    }

    /// Copies the bytes of `parts` (in that order) of a claimed upload into `out`.
    pub(crate) fn copy_parts(
        &self,
        claimed: &ClaimedUpload,
        parts: &[PartMeta],
        out: &mut impl Write,
    ) -> Result<(), StoreError> {
        for part in parts {
            let path = claimed.dir.join(part_file_name(part.part_number));
            let file = File::open(&path).at(&path)?;
            let copied = io::copy(&mut file.take(part.size), out).at(&path)?;
            if copied != part.size {
                return Err(StoreError::Corrupt {
                    path,
                    reason: "part shorter than recorded".into(),
                });
            }
        }
        Ok(())
    }

    /// Removes a completed upload's parts.
    pub(crate) fn finish_upload(&self, claimed: ClaimedUpload) -> Result<(), StoreError> {
        let doomed = self.temp_path("completed");
        fs::rename(&claimed.dir, &doomed).at(&claimed.dir)?;
        sync_dir(&self.multipart_dir)?;
        fs::remove_dir_all(&doomed).at(&doomed)
    }

    /// Gives a claimed upload back, after a completion that did not happen.
    pub(crate) fn release_upload(&self, claimed: ClaimedUpload) -> Result<(), StoreError> {
        let dir = self.multipart_dir.join(&claimed.id);
        fs::rename(&claimed.dir, &dir).at(&dir)?;
        sync_dir(&self.multipart_dir)
    }

    fn upload_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        // Upload ids are ours: 64 lowercase hex digits. Anything else names no upload (and
        // never reaches the file system).
        if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(StoreError::NoSuchUpload);
        }
        let dir = self.multipart_dir.join(id);
        if !dir.is_dir() {
            return Err(StoreError::NoSuchUpload);
        }
        Ok(dir)
    }
}

/// A multipart upload taken out of reach of new parts while it is being completed.
#[derive(Debug)]
pub(crate) struct ClaimedUpload {
    id: String,
    dir: PathBuf,
    /// The upload's record.
    pub meta: UploadMeta,
    /// Its parts, by part number.
    pub parts: Vec<PartMeta>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BucketRecord {
    created_ms: i64,
}

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    i64::try_from(millis).unwrap_or(i64::MAX)
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Bytes of a hex string (either case); `None` when it is not one.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The file name of a key: SHA-256 of its UTF-8 bytes, 64 lowercase hex digits.
fn key_file_name(key: &str) -> String {
    hex(&Sha256::checksum(key.as_bytes()))
}

fn part_file_name(part_number: u32) -> String {
    format!("{part_number:05}")
}

fn new_upload_id(key: &str, counter: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = Sha256::new();
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&counter.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(key.as_bytes());
    hex(&hasher.finalize())
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records serialise: string keys, no floats")
}

/// The footer that ends an object or part file: JSON, its length, the magic.
pub(crate) fn footer_bytes<T: Serialize>(meta: &T) -> Vec<u8> {
    let mut out = to_json(meta);
    let len = u32::try_from(out.len()).expect("footers are far below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(FOOTER_MAGIC);
    out
}

/// Reads the footer of an object or part file, checking that the bytes before it are exactly
/// as long as it says.
fn read_footer<T: DeserializeOwned + HasSize>(
    file: &mut File,
    path: &Path,
) -> Result<T, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        path: path.to_owned(),
        reason: reason.into(),
    };

    let file_len = file.metadata().at(path)?.len();
    if file_len < FOOTER_TRAILER_LEN {
        return Err(corrupt("shorter than a footer"));
    }
    file.seek(SeekFrom::Start(file_len - FOOTER_TRAILER_LEN))
        .at(path)?;
    let mut trailer = [0_u8; FOOTER_TRAILER_LEN as usize];
    file.read_exact(&mut trailer).at(path)?;
    if &trailer[4..] != FOOTER_MAGIC {
        return Err(corrupt("no footer magic"));
    }
    let json_len = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if json_len > MAX_FOOTER_LEN || u64::from(json_len) > file_len - FOOTER_TRAILER_LEN {
        return Err(corrupt("footer length out of range"));
    }

    let data_len = file_len - FOOTER_TRAILER_LEN - u64::from(json_len);
    file.seek(SeekFrom::Start(data_len)).at(path)?;
    let mut json = vec![0_u8; json_len as usize];
    file.read_exact(&mut json).at(path)?;
    let meta: T = serde_json::from_slice(&json).map_err(|e| corrupt(&e.to_string()))?;
    if meta.size() != data_len {
        return Err(corrupt("footer size differs from the data length"));
    }
    Ok(meta)
}

/// Records that carry the length of the bytes before their footer.
trait HasSize {
    fn size(&self) -> u64;
}

impl HasSize for ObjectMeta {
    fn size(&self) -> u64 {
        self.size
    }
}

impl HasSize for PartMeta {
    fn size(&self) -> u64 {
        self.size
    }
}

fn check_condition(
    current: Option<&ObjectSummary>,
    condition: &WriteCondition,
) -> Result<(), StoreError> {
    match (condition, current) {
        (WriteCondition::Always, _) => Ok(()),
        (WriteCondition::IfAbsent, None) => Ok(()),
        (WriteCondition::IfAbsent, Some(_)) => Err(StoreError::PreconditionFailed),
        (WriteCondition::IfMatch(_), None) => Err(StoreError::NoSuchKey),
        (WriteCondition::IfMatch(None), Some(_)) => Ok(()),
        (WriteCondition::IfMatch(Some(etag)), Some(current)) if *etag == current.etag => Ok(()),
        (WriteCondition::IfMatch(Some(_)), Some(_)) => Err(StoreError::PreconditionFailed),
    }
}

fn check_format_file(root: &Path) -> Result<(), StoreError> {
    let path = root.join(FORMAT_FILE);
    match fs::read_to_string(&path) {
        Ok(text) if text == FORMAT_TEXT => Ok(()),
        Ok(_) => Err(StoreError::ForeignFolder {
            path: root.to_owned(),
            reason: format!("{} has unexpected content", path.display()),
        }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            // A new store only in an empty folder, so that some other folder is never
            // taken over (and its tmp/ emptied).
            let mut entries = fs::read_dir(root).at(root)?;
            if entries.next().is_some() {
                return Err(StoreError::ForeignFolder {
                    path: root.to_owned(),
                    reason: format!("not empty and without {FORMAT_FILE}"),
                });
            }
            write_synced(&path, FORMAT_TEXT.as_bytes())?;
            sync_dir(root)
        }
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

fn lock_folder(root: &Path) -> Result<File, StoreError> {
    let path = root.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: root.to_owned(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
    }
}

fn load_bucket(name: String, dir: PathBuf) -> Result<Bucket, StoreError> {
    let record_path = dir.join("bucket.json");
    let record_bytes = fs::read(&record_path).at(&record_path)?;
    let record: BucketRecord =
        serde_json::from_slice(&record_bytes).map_err(|e| StoreError::Corrupt {
            path: record_path.clone(),
            reason: e.to_string(),
        })?;

    let mut index = ObjectIndex::new();
    let objects = dir.join("objects");
    for fan_out in fs::read_dir(&objects).at(&objects)? {
        let fan_out = fan_out.at(&objects)?.path();
        for entry in fs::read_dir(&fan_out).at(&fan_out)? {
            let path = entry.at(&fan_out)?.path();
            let meta = match File::open(&path)
                .at(&path)
                .and_then(|mut file| read_footer::<ObjectMeta>(&mut file, &path))
            {
                Ok(meta) => meta,
                Err(error) => {
                    warn!(%error, "skipping unreadable object file");
                    continue;
                }
            };
            let expected = key_file_name(&meta.key);
            if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
                warn!(
                    path = %path.display(),
                    "skipping object file whose name is not its key's hash"
                );
                continue;
            }
            index.insert(meta.key.clone(), meta.summary());
        }
    }

    Ok(Bucket {
        name,
        dir,
        created_ms: record.created_ms,
        index: Mutex::new(index),
    })
}

fn read_upload_meta(dir: &Path) -> Result<UploadMeta, StoreError> {
    let path = dir.join("upload.json");
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::NoSuchUpload);
        }
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })
}

fn read_parts(dir: &Path) -> Result<Vec<PartMeta>, StoreError> {
    let mut parts = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Ok(number) = name.parse::<u32>() else {
            continue;
        };
        let part: PartMeta = read_footer(&mut File::open(&path).at(&path)?, &path)?;
        if part.part_number != number {
            return Err(StoreError::Corrupt {
                path,
                reason: "part number differs".into(),
            });
        }
        parts.push(part);
    }
    parts.sort_by_key(|p| p.part_number);
    Ok(parts)
}

/// Puts back uploads whose completion was interrupted by a crash: their object was not
/// committed (or it was, and completing again writes the same object).
fn restore_claimed_uploads(multipart_dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(multipart_dir).at(multipart_dir)? {
        let path = entry.at(multipart_dir)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(id) = name.strip_suffix(COMPLETING_SUFFIX) {
            let original = multipart_dir.join(id);
            fs::rename(&path, &original).at(&original)?;
        }
    }
    sync_dir(multipart_dir)
}

fn clear_folder(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.at(&path)?;
        debug!(path = %path.display(), "removed leftover of an interrupted write");
    }
    Ok(())
}

fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    }
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create(path).at(path)?;
    file.write_all(bytes).at(path)?;
    file.sync_all().at(path)
}

/// Makes renames and removals in a folder durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str, data: &[u8]) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: data.len() as u64,
            etag: hex(&s3s::crypto::Md5::checksum(data)),
            last_modified_ms: now_ms(),
            content_type: Some("text/plain".into()),
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            expires_ms: None,
            metadata: BTreeMap::from([("colour".to_owned(), "blue".to_owned())]),
            checksum: None,
            parts_count: None,
        }
    }

    fn put(store: &Store, bucket: &Bucket, key: &str, data: &[u8]) -> Result<Change, StoreError> {
        put_if(store, bucket, key, data, &WriteCondition::Always)
    }

    fn put_if(
        store: &Store,
        bucket: &Bucket,
        key: &str,
        data: &[u8],
        condition: &WriteCondition,
    ) -> Result<Change, StoreError> {
        let temp = store.temp_file();
        let meta = meta(key, data);
        let mut file = File::create(temp.path()).unwrap();
        file.write_all(data).unwrap();
        file.write_all(&footer_bytes(&meta)).unwrap();
        file.sync_all().unwrap();
        store.commit_object(bucket, temp, &meta, condition)
    }

    fn read(store: &Store, bucket: &Bucket, key: &str) -> Vec<u8> {
        let (file, meta) = store.open_object(bucket, key).unwrap();
        let mut data = Vec::new();
        file.take(meta.size).read_to_end(&mut data).unwrap();
        data
    }

    #[test]
    fn keys_that_look_like_paths_are_distinct_objects_inside_their_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bucket = store.create_bucket("alpha").unwrap();
        let keys = [
            "a/b",
            "a//b",
            "/a/b",
            "a/b/",
            "../beta/x",
            "a/../b",
            "..",
            "/",
            &"x".repeat(1024),
        ];
        for (i, key) in keys.iter().enumerate() {
            put(&store, &bucket, key, format!("object {i}").as_bytes()).unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(read(&store, &bucket, key), format!("object {i}").as_bytes());
        }
        assert_eq!(bucket.index().len(), keys.len());
        // Nothing but the hashed files exists under the bucket.
        let outside = fs::read_dir(dir.path().join("buckets")).unwrap().count();
        assert_eq!(outside, 1);
    }

    #[test]
    fn index_is_rebuilt_from_object_files_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let bucket = store.create_bucket("alpha").unwrap();
            put(&store, &bucket, "one", b"1").unwrap();
            put(&store, &bucket, "two/2", b"22").unwrap();
            put(&store, &bucket, "gone", b"x").unwrap();
            store
                .delete_object(&bucket, "gone", &WriteCondition::Always)
                .unwrap()
                .unwrap();
            // An interrupted upload leaves a file in tmp/.
            fs::write(store.temp_file().path(), b"half an upload").unwrap();
            std::mem::forget(store.temp_file());
        }
        let store = Store::open(dir.path()).unwrap();
        let bucket = store.bucket("alpha").unwrap();
        let keys: Vec<String> = bucket.index().keys().cloned().collect();
        assert_eq!(keys, ["one", "two/2"]);
        assert_eq!(bucket.index()["two/2"].size, 2);
        assert_eq!(read(&store, &bucket, "two/2"), b"22");
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let temp = store.temp_file();
        fs::write(temp.path(), b"refused").unwrap();
        let path = temp.path().to_owned();
        drop(temp);
        assert!(!path.exists());
    }

    #[test]
    fn if_none_match_star_refuses_an_existing_key_and_if_match_needs_the_etag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bucket = store.create_bucket("alpha").unwrap();
        put_if(&store, &bucket, "k", b"first", &WriteCondition::IfAbsent).unwrap();
        let refused = put_if(&store, &bucket, "k", b"second", &WriteCondition::IfAbsent);
        assert!(matches!(refused, Err(StoreError::PreconditionFailed)));
        assert_eq!(read(&store, &bucket, "k"), b"first");

        let wrong = WriteCondition::IfMatch(Some("0".repeat(32)));
        assert!(matches!(
            put_if(&store, &bucket, "k", b"x", &wrong),
            Err(StoreError::PreconditionFailed)
        ));
        let right = WriteCondition::IfMatch(Some(hex(&s3s::crypto::Md5::checksum(b"first"))));
        put_if(&store, &bucket, "k", b"third", &right).unwrap();
        assert_eq!(read(&store, &bucket, "k"), b"third");
        let missing = put_if(&store, &bucket, "new", b"x", &WriteCondition::IfMatch(None));
        assert!(matches!(missing, Err(StoreError::NoSuchKey)));
    }

    #[test]
    fn change_sequence_strictly_increases() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bucket = store.create_bucket("alpha").unwrap();
        let first = put(&store, &bucket, "k", b"1").unwrap().sequence;
        let second = put(&store, &bucket, "k", b"2").unwrap().sequence;
        let (_, third) = store
            .delete_object(&bucket, "k", &WriteCondition::Always)
            .unwrap()
            .unwrap();
        assert!(first < second && second < third.sequence);
    }

    #[test]
    fn a_second_store_on_the_same_folder_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        drop(first);
        Store::open(dir.path()).unwrap();
    }

    #[test]
    fn a_folder_that_is_not_a_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::ForeignFolder { .. })
        ));
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn upload_ids_that_are_not_ours_name_no_upload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in ["", "..", "../buckets", &"A".repeat(64), &"0".repeat(64)] {
            assert!(
                matches!(store.upload(id), Err(StoreError::NoSuchUpload)),
                "{id}"
            );
        }
    }
}
