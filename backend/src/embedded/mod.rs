//! The embedded S3-compatible server that `pixelator serve` runs on one machine.
//!
//! It listens on a loopback address and speaks enough of S3 for the pipeline, the web page and
//! the AWS SDKs: buckets, objects (PUT, POST, GET with ranges, HEAD, DELETE, copy), listings,
//! multipart uploads and conditional requests, with Signature V4 (headers, presigned URLs,
//! aws-chunked streaming uploads) checked against one local access key. The s3s crate handles
//! the protocol and the signatures; storage is our own: any valid key is stored exactly, and
//! an upload becomes visible only after its length and checksums are verified, atomically
//! and durably. Each object creation or removal in a
//! configured bucket produces the S3 event notification JSON that Amazon S3 would send, into
//! a bounded queue. CORS answers preflights from the configured web origins only, for the
//! presigned PUTs and GETs a browser makes.
//!
//! Known limits, by design: one access key; no versioning, ACLs, policies, tagging, object
//! lock or encryption (those operations answer `NotImplemented`); the credential scope's
//! region is not compared with the configured one; POST uploads are held in memory by s3s
//! and limited to [`MAX_POST_OBJECT_SIZE`], and a POST whose policy conditions fail gets s3s's
//! 400 `InvalidPolicyDocument` where S3 answers 403 `AccessDenied`; `GetObject` by part
//! number is not supported; objects assembled from multipart uploads keep no full-object
//! checksum; the checksum of a DeleteObjects request body is not verified; a data folder
//! serves one process at a time.

mod checksum;
mod conditions;
mod events;
mod listing;
mod service;
mod store;
mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use s3s::auth::SimpleAuth;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::crypto::{Checksum as _, Sha256};
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};
use tracing::{debug, info, warn};

pub use self::events::{EventKind, NotificationTarget};
use self::events::{Notifier, RequestOrigin};
use self::service::EmbeddedService;
use self::store::{Store, StoreError};

/// Largest object accepted through a browser-style POST upload (s3s holds it in memory).
pub const MAX_POST_OBJECT_SIZE: u64 = 64 * 1024 * 1024;

/// How long shutdown waits for requests in flight before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Methods a browser uses on presigned URLs.
const CORS_METHODS: [Method; 3] = [Method::GET, Method::HEAD, Method::PUT];

/// Request headers a browser sends with a presigned PUT or GET beyond the safelisted ones.
const CORS_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    HeaderName::from_static("content-md5"),
    header::RANGE,
];

/// How long a browser may cache a preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// How to run the embedded server.
#[derive(Debug, Clone)]
pub struct EmbeddedS3Config {
    /// The data folder: created when missing; a folder that holds something else is refused.
    pub data_dir: PathBuf,
    /// A loopback address; port 0 picks a free port (see [`EmbeddedS3::endpoint`]).
    pub listen: SocketAddr,
    /// The one access key id that requests may be signed with.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// The region reported in events and bucket locations, e.g. `us-east-1`.
    pub region: String,
    /// Buckets that exist from the start (created when missing).
    pub buckets: Vec<String>,
    /// Web origins (`http://localhost:8080`) allowed to make cross-origin requests.
    pub cors_origins: Vec<String>,
    /// Where object events go.
    pub notifications: Vec<NotificationTarget>,
}

/// Why the embedded server could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The configuration cannot work; retrying will not help until it is changed.
    #[error("invalid embedded S3 configuration: {0}")]
    InvalidConfig(String),
    /// The data folder cannot be used (permissions, disk, or it belongs to something else);
    /// retrying helps only once the folder is fixed.
    #[error("cannot use the data folder {}: {reason}", path.display())]
    DataDir {
        /// The data folder.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The listen address could not be bound; retrying can help once it is free.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl EmbeddedError {
    /// Whether starting again unchanged may succeed (a busy port may become free).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Bind { .. })
    }
}

/// A running embedded server. Dropping it stops the server too, without waiting.
#[derive(Debug)]
pub struct EmbeddedS3 {
    local_addr: SocketAddr,
    data_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl EmbeddedS3 {
    /// The URL clients use as their S3 endpoint (path-style), e.g. `http://127.0.0.1:9000`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Stops accepting connections, lets requests in flight finish (for a few seconds at
    /// most), and returns once the server has stopped.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Err(error) = self.server.await {
            warn!(%error, "embedded S3 server task failed");
        }
        info!(address = %self.local_addr, "embedded S3 stopped");
    }
}

/// Starts the embedded server: opens the data folder (rebuilding its index), creates the
/// configured buckets, and listens.
pub async fn start(config: EmbeddedS3Config) -> Result<EmbeddedS3, EmbeddedError> {
    let origins = validate(&config)?;

    let data_dir = config.data_dir.clone();
    let buckets = config.buckets.clone();
    let store = tokio::task::spawn_blocking(move || open_store(&data_dir, &buckets))
        .await
        .map_err(|e| EmbeddedError::DataDir {
            path: config.data_dir.clone(),
            reason: e.to_string(),
        })?
        .map_err(|e| EmbeddedError::DataDir {
            path: config.data_dir.clone(),
            reason: e.to_string(),
        })?;

    let owner_id = hex_digest(format!("pixelator-owner:{}", config.access_key).as_bytes());
    let owner_principal = format!("A{}", owner_id[..13].to_uppercase());
    let notifier = Notifier::new(config.notifications, config.region.clone(), owner_principal);
    let service = EmbeddedService::new(store, notifier, config.region.clone(), owner_id);

    let mut builder = S3ServiceBuilder::new(service);
    builder.set_auth(SimpleAuth::from_single(
        config.access_key.clone(),
        config.secret_key.clone(),
    ));
    let mut s3_config = S3Config::default();
    s3_config.post_object_max_file_size = MAX_POST_OBJECT_SIZE;
    s3_config.normalize_forward_slash_path = false;
    builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3_config))));
    let s3 = builder.build();

    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.clone()))
        .allow_methods(CORS_METHODS.to_vec())
        .allow_headers(CORS_HEADERS.to_vec())
        .expose_headers([header::ETAG])
        .max_age(CORS_MAX_AGE);
    let gateway = Gateway {
        service: tower::Layer::layer(&cors, s3),
        allowed_origins: Arc::new(origins),
        ids: Arc::new(RequestIds::default()),
        remote: config.listen,
    };

    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmbeddedError::Bind {
                addr: config.listen,
                source,
            })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| EmbeddedError::Bind {
            addr: config.listen,
            source,
        })?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(serve(listener, gateway, shutdown_rx));

    info!(
        endpoint = %format!("http://{local_addr}"),
        data_dir = %config.data_dir.display(),
        buckets = ?config.buckets,
        "embedded S3 listening"
    );
    Ok(EmbeddedS3 {
        local_addr,
        data_dir: config.data_dir,
        shutdown,
        server,
    })
}

/// Checks what can be checked before touching the disk; returns the CORS origins as header
/// values.
fn validate(config: &EmbeddedS3Config) -> Result<Vec<HeaderValue>, EmbeddedError> {
    let invalid = |reason: String| Err(EmbeddedError::InvalidConfig(reason));
    if !config.listen.ip().is_loopback() {
        return invalid(format!(
            "listen address {} is not a loopback address",
            config.listen
        ));
    }
    if config.access_key.is_empty() || config.secret_key.is_empty() {
        return invalid("the access key and secret must not be empty".into());
    }
    if config.region.is_empty() {
        return invalid("the region must not be empty".into());
    }
    if let Some(bad) = config
        .buckets
        .iter()
        .find(|b| !s3s::path::check_bucket_name(b))
    {
        return invalid(format!("{bad:?} is not a valid bucket name"));
    }
    config
        .cors_origins
        .iter()
        .map(|origin| {
            let trimmed = origin.trim_end_matches('/');
            let host = trimmed
                .strip_prefix("http://")
                .or_else(|| trimmed.strip_prefix("https://"));
            let is_origin = host.is_some_and(|host| !host.is_empty() && !host.contains('/'));
            match HeaderValue::from_str(trimmed) {
                Ok(value) if is_origin => Ok(value),
                _ => Err(EmbeddedError::InvalidConfig(format!(
                    "{origin:?} is not a web origin (scheme://host[:port])"
                ))),
            }
        })
        .collect()
}

fn open_store(data_dir: &std::path::Path, buckets: &[String]) -> Result<Arc<Store>, StoreError> {
    let store = Store::open(data_dir)?;
    for bucket in buckets {
        match store.create_bucket(bucket) {
            Ok(_) => info!(bucket = %bucket, "bucket created"),
            Err(StoreError::BucketExists) => {}
            Err(error) => return Err(error),
        }
    }
    debug!(root = %store.root().display(), "store ready");
    Ok(Arc::new(store))
}

fn hex_digest(bytes: &[u8]) -> String {
    store::hex(&Sha256::checksum(bytes))
}

/// Accepts connections until shutdown, then waits (briefly) for those in flight.
async fn serve(listener: TcpListener, gateway: Gateway, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let gateway = Gateway { remote, ..gateway.clone() };
                    connections.spawn(serve_connection(stream, gateway, shutdown.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);

    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "closing connections that outlived the shutdown grace"
        );
        connections.shutdown().await;
    }
}

async fn serve_connection(
    stream: TcpStream,
    gateway: Gateway,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), gateway);
    tokio::pin!(connection);

    let mut closing = *shutdown.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    debug!(%error, "connection ended with an error");
                }
                break;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The HTTP front: request ids and origins for every request, CORS preflight refusal, then
/// CORS headers around the s3s service.
#[derive(Clone)]
struct Gateway {
    service: Cors<S3Service>,
    allowed_origins: Arc<Vec<HeaderValue>>,
    ids: Arc<RequestIds>,
    remote: SocketAddr,
}

impl hyper::service::Service<http::Request<Incoming>> for Gateway {
    type Response = http::Response<s3s::Body>;
    type Error = s3s::HttpError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        let origin = self.ids.next(self.remote);
        let ids = [
            (
                HeaderName::from_static("x-amz-request-id"),
                origin.request_id.clone(),
            ),
            (
                HeaderName::from_static("x-amz-id-2"),
                origin.host_id.clone(),
            ),
        ];
        request.extensions_mut().insert(origin);

        if let Some(refusal) = refuse_preflight(&request, &self.allowed_origins) {
            return Box::pin(async move { Ok(with_ids(refusal, ids)) });
        }

        // s3s answers a HEAD with a Range 200; S3 answers 206, as for GET.
        let ranged_head =
            request.method() == Method::HEAD && request.headers().contains_key(header::RANGE);
        // For the log line of a refused request: the path only, since the query of a
        // presigned URL holds its signature.
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let mut service = self.service.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| {
                tower::Service::<http::Request<Incoming>>::poll_ready(&mut service, cx)
            })
            .await?;
            let mut response = tower::Service::call(&mut service, request).await?;
            if ranged_head
                && response.status() == StatusCode::OK
                && response.headers().contains_key(header::CONTENT_RANGE)
            {
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            }
            log_refusal(&method, &path, response.status(), &ids[0].1);
            Ok(with_ids(response, ids))
        })
    }
}

/// One line for a request the store did not carry out: a client's mistake (an
/// expired link, a signature that does not cover the Content-Type or length sent)
/// at info, the store's own failure at warn. Answers that are part of normal work
/// (no such key, not modified, a failed precondition) only at debug. What was wrong
/// is in the answer's body, which the client gets.
fn log_refusal(method: &Method, path: &str, status: StatusCode, request_id: &str) {
    let status_code = status.as_u16();
    if status.is_server_error() {
        warn!(%method, path, status = status_code, request_id, "S3 request failed");
    } else if matches!(status_code, 304 | 404 | 412) {
        debug!(%method, path, status = status_code, request_id, "S3 request answered");
    } else if status.is_client_error() {
        info!(%method, path, status = status_code, request_id, "S3 request refused");
    }
}

fn with_ids(
    mut response: http::Response<s3s::Body>,
    ids: [(HeaderName, String); 2],
) -> http::Response<s3s::Body> {
    for (name, value) in ids {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// S3 refuses a preflight whose origin, method or headers its CORS rules do not allow, with
/// 403; CorsLayer would answer 200 without the allow headers. Both make a browser give up,
/// but the 403 says why.
fn refuse_preflight(
    request: &http::Request<Incoming>,
    allowed_origins: &[HeaderValue],
) -> Option<http::Response<s3s::Body>> {
    if request.method() != Method::OPTIONS {
        return None;
    }
    let origin = request.headers().get(header::ORIGIN)?;
    let method = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)?;

    let origin_ok = allowed_origins.contains(origin);
    let method_ok = CORS_METHODS
        .iter()
        .any(|m| m.as_str().as_bytes() == method.as_bytes());
    let headers_ok = request
        .headers()
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .all(|name| {
            CORS_HEADERS
                .iter()
                .any(|allowed| allowed.as_str().eq_ignore_ascii_case(name))
        });
    if origin_ok && method_ok && headers_ok {
        return None;
    }

    debug!(?origin, ?method, "CORS preflight refused");
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessForbidden</Code>\
        <Message>CORSResponse: This CORS request is not allowed. This is usually because the \
        evaluation of Origin, request method / Access-Control-Request-Method or \
        Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.</Message>\
        </Error>";
    let mut response = http::Response::new(s3s::Body::from(body.to_owned()));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    Some(response)
}

/// Makes S3-style request ids: 16 upper-case hex digits and a base64 host id.
#[derive(Debug, Default)]
struct RequestIds {
    counter: AtomicU64,
}

impl RequestIds {
    fn next(&self, remote: SocketAddr) -> RequestOrigin {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut seed = Vec::with_capacity(32);
        seed.extend_from_slice(&nanos.to_le_bytes());
        seed.extend_from_slice(&n.to_le_bytes());
        let digest = Sha256::checksum(&seed);
        RequestOrigin {
            remote_ip: remote.ip(),
            request_id: store::hex(&digest[..8]).to_uppercase(),
            host_id: checksum::base64(&Sha256::checksum(&digest)),
        }
    }
}
