//! `pixelator serve`: the whole pipeline in one process on one machine.
//!
//! [`start`] brings up, in order:
//! 1. the embedded S3 store on loopback, with both buckets, CORS for the web page
//!    and ObjectCreated notifications for the upload prefix onto a bounded queue;
//! 2. the delivery of that queue to the pixelator ([`crate::delivery::run`]), with a
//!    concurrency limit and retries;
//! 3. a reconciliation pass that queues every source without a manifest, so an
//!    upload whose event died with an earlier process is still processed;
//! 4. the API and the built web app (`dist/`) on one HTTP port.
//!
//! [`Serving::summary`] is what the command prints: addresses, buckets, data
//! folder.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tower_http::services::{ServeDir, ServeFile};

use crate::api::{self, ApiState};
use crate::config::{Config, DEFAULT_LOCAL_SECRET_KEY};
use crate::delivery;
use crate::embedded::NotificationTarget;
use crate::embedded::{self, EmbeddedError, EmbeddedS3, EmbeddedS3Config, EventKind};
use crate::pixelator::{Pixelator, PixelatorSettings};
use crate::s3::{StaticKeys, client_for_endpoint};

/// How long shutting down waits for events being processed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the local pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The embedded store did not start; retrying helps only for a busy port.
    #[error("the embedded S3 store did not start: {0}")]
    Store(#[from] EmbeddedError),
    /// The configuration is unsafe for the local pipeline; retrying will not help.
    #[error("{0}")]
    Unsafe(String),
    /// The HTTP port could not be bound; retrying can help once it is free.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

impl ServeError {
    /// Whether starting again unchanged may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ServeError::Store(error) => error.is_retryable(),
            ServeError::Unsafe(_) => false,
            ServeError::Bind { .. } => true,
        }
    }
}

/// The running local pipeline.
#[derive(Debug)]
pub struct Serving {
    store: EmbeddedS3,
    http_address: SocketAddr,
    config: Arc<Config>,
    keys: StaticKeys,
    region: String,
    web_built: bool,
    stop_http: watch::Sender<bool>,
    http: JoinHandle<()>,
    delivery: JoinHandle<()>,
    reconciliation: JoinHandle<()>,
}

/// The region the local store reports.
pub fn local_region() -> String {
    std::env::var("AWS_REGION")
        .ok()
        .filter(|region| !region.trim().is_empty())
        .unwrap_or_else(|| crate::s3::DEFAULT_REGION.to_owned())
}

/// Starts the local pipeline as `config` describes.
pub async fn start(config: Config) -> Result<Serving, ServeError> {
    let mut config = config;
    if !config.bind_address.is_loopback() && config.local_secret_key == DEFAULT_LOCAL_SECRET_KEY {
        return Err(ServeError::Unsafe(format!(
            "PIXELATOR_BIND={} exposes the local store beyond this machine; set \
             PIXELATOR_LOCAL_SECRET_KEY to a secret of your own first",
            config.bind_address
        )));
    }

    // The HTTP listener first: with port 0 its real port is needed for CORS.
    let http_requested = SocketAddr::new(config.bind_address, config.http_port);
    let http_listener =
        TcpListener::bind(http_requested)
            .await
            .map_err(|source| ServeError::Bind {
                address: http_requested,
                source,
            })?;
    let http_address = http_listener
        .local_addr()
        .map_err(|source| ServeError::Bind {
            address: http_requested,
            source,
        })?;
    for own in [
        format!("http://{http_address}"),
        format!("http://localhost:{}", http_address.port()),
    ] {
        if !config.web_origins.contains(&own) {
            config.web_origins.push(own);
        }
    }
    let config = Arc::new(config);

    let (queue, queued) = mpsc::channel(config.delivery.queue_capacity);
    let keys = StaticKeys {
        access_key: config.local_access_key.clone(),
        secret_key: config.local_secret_key.clone(),
    };
    let region = local_region();
    let store = embedded::start(EmbeddedS3Config {
        data_dir: config.data_dir.clone(),
        listen: SocketAddr::new(config.bind_address, config.s3_port),
        access_key: keys.access_key.clone(),
        secret_key: keys.secret_key.clone(),
        region: region.clone(),
        buckets: vec![
            config.buckets.source.clone(),
            config.buckets.processed.clone(),
        ],
        cors_origins: config.web_origins.clone(),
        notifications: vec![NotificationTarget {
            configuration_id: "pixelate-on-upload".to_owned(),
            bucket: config.buckets.source.clone(),
            prefix: config.source_prefix.clone(),
            suffix: String::new(),
            events: vec![EventKind::ObjectCreated],
            sink: queue.clone(),
        }],
    })
    .await?;

    let s3 = client_for_endpoint(&store.endpoint(), &region, &keys);
    let pixelator = Pixelator::new(s3.clone(), PixelatorSettings::from_config(&config));
    let delivery = tokio::spawn(delivery::run(
        pixelator.clone(),
        queued,
        config.delivery.clone(),
    ));
    let reconciliation = tokio::spawn(async move {
        if let Err(error) = delivery::reconcile(&pixelator, &queue).await {
            tracing::error!(
                error = %error,
                "reconciliation failed; sources without a manifest wait for the next start"
            );
        }
    });

    let web_built = config.web_dir.join("index.html").is_file();
    let app = api::router(ApiState::new(s3, Arc::clone(&config)))
        .fallback_service(web_app(&config.web_dir, web_built));
    let (stop_http, mut stopped) = watch::channel(false);
    let http = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(http_listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %error, "the HTTP server stopped");
        }
    });

    Ok(Serving {
        store,
        http_address,
        config,
        keys,
        region,
        web_built,
        stop_http,
        http,
        delivery,
        reconciliation,
    })
}

/// The built web app, or a page saying how to build it.
fn web_app(web_dir: &Path, built: bool) -> Router {
    if built {
        let index = ServeFile::new(web_dir.join("index.html"));
        Router::new().fallback_service(ServeDir::new(web_dir).fallback(index))
    } else {
        let page = not_built_page(web_dir);
        Router::new().fallback(move || {
            let page = page.clone();
            async move { (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response() }
        })
    }
}

fn not_built_page(web_dir: &Path) -> String {
    let folder = html_escape(&web_dir.display().to_string());
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Pixelator: web app not built</title></head><body>\
         <h1>The web app is not built yet</h1>\
         <p>Pixelator is running, but there is no <code>index.html</code> in \
         <code>{folder}</code>. Build the page with <code>trunk build --release</code> at \
         the repository root (or start everything with <code>scripts/run</code>), or \
         point <code>PIXELATOR_WEB_DIR</code> at a built copy, then reload.</p>\
         <p>The API works already: <a href=\"/api/health\">/api/health</a>, \
         <a href=\"/api/images\">/api/images</a>.</p></body></html>"
    )
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Serving {
    /// The address of the API and web page.
    pub fn http_address(&self) -> SocketAddr {
        self.http_address
    }

    /// The URL of the web page, such as `http://127.0.0.1:8080/`.
    pub fn web_url(&self) -> String {
        format!("http://{}/", self.http_address)
    }

    /// The embedded store's endpoint, such as `http://127.0.0.1:9000`.
    pub fn s3_endpoint(&self) -> String {
        self.store.endpoint()
    }

    /// The keys the embedded store accepts.
    pub fn keys(&self) -> &StaticKeys {
        &self.keys
    }

    /// The region the embedded store reports.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The configuration in effect (with the page's own origin added).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What `pixelator serve` prints once everything listens.
    pub fn summary(&self) -> String {
        let config = &self.config;
        let data_dir = absolute(&config.data_dir);
        let web_dir = absolute(&config.web_dir);
        let web_state = if self.web_built {
            String::new()
        } else {
            "  (not built: run `trunk build --release` at the repository root)".to_owned()
        };
        format!(
            "Pixelator is running.\n\
             \x20 web page and API  {web}\n\
             \x20 S3 store          {s3}  (region {region}, access key {access})\n\
             \x20 source bucket     {source}  (uploads under {prefix})\n\
             \x20 processed bucket  {processed}\n\
             \x20 data folder       {data}\n\
             \x20 web app files     {webdir}{web_state}\n\
             \x20 grid sizes        {sizes} ({mode})\n\
             Press Ctrl-C to stop.",
            web = self.web_url(),
            s3 = self.s3_endpoint(),
            region = self.region,
            access = self.keys.access_key,
            source = config.buckets.source,
            prefix = config.source_prefix,
            processed = config.buckets.processed,
            data = data_dir.display(),
            webdir = web_dir.display(),
            sizes = config
                .grid_sizes
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            mode = config.grid_mode.as_str(),
        )
    }

    /// Stops taking requests, stops the store, and waits (a while) for the events
    /// being processed. Whatever is left is queued again at the next start.
    pub async fn shutdown(self) {
        let _ = self.stop_http.send(true);
        if let Err(error) = self.http.await {
            tracing::error!(error = %error, "the HTTP server task failed");
        }
        self.reconciliation.abort();
        // Stopping the store drops its queue sender; once the reconciliation's is
        // gone too, delivery finishes what it holds and ends.
        self.store.shutdown().await;
        let _ = self.reconciliation.await;
        match tokio::time::timeout(DRAIN_TIMEOUT, self.delivery).await {
            Ok(Ok(())) => tracing::info!("event delivery finished"),
            Ok(Err(error)) => tracing::error!(error = %error, "event delivery task failed"),
            Err(_) => tracing::warn!(
                "stopped with events still in flight; they are redone at the next start"
            ),
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Runs the local pipeline until Ctrl-C or SIGTERM, printing the summary.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let serving = start(config).await?;
    println!("{}", serving.summary());
    shutdown_signal().await;
    tracing::info!("stopping");
    serving.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
