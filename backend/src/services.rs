//! `pixelator serve` and `pixelator worker`: the long-running ways of running the
//! pipeline. Both read their configuration from the environment (`PIXELATOR_*`,
//! and the standard AWS variables for the worker's store) and run until Ctrl-C or
//! SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use pixelator::config::Config;
use pixelator::pixelator::{Pixelator, PixelatorSettings};
use pixelator::worker::{self, WorkerState};
use pixelator::{delivery, serve};
use tokio::sync::mpsc;

/// Arguments of `pixelator worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// At start, also queue every source in the bucket that has no manifest for
    /// its current ETag (events the webhook never delivered).
    #[arg(long)]
    reconcile: bool,
}

/// The most malloc arenas a service process keeps.
///
/// glibc gives each thread that allocates under contention an arena of its own,
/// up to eight per core, and keeps the memory freed into an arena for later. A
/// service decodes and encodes on whichever of the runtime's blocking threads is
/// free, so over a batch every image's buffers end up in some arena: 130 to 145 MB
/// resident after 100 uploads of a 2 MP photo, against 50 MB with two arenas at
/// the same speed (`bench/serve.py`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`], unless `MALLOC_ARENA_MAX` is
/// set, which glibc reads itself.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it is called before the
        // runtime starts any thread, and a refusal (return value 0) leaves glibc's
        // default in place, which is harmless.
        #[allow(unsafe_code)]
        let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
        if accepted == 0 {
            tracing::debug!("glibc refused to cap its malloc arenas");
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs the whole pipeline on this machine.
pub(crate) fn serve() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    runtime()?.block_on(serve::run(config))?;
    Ok(())
}

/// Runs the pixelator behind a webhook endpoint.
pub(crate) fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    let token = match &config.worker_token {
        Some(token) => token.clone(),
        None => {
            let token = worker::new_token().context("no randomness for a worker token")?;
            eprintln!(
                "PIXELATOR_WORKER_TOKEN is not set; this run accepts the bearer token {token}"
            );
            token
        }
    };
    let address = SocketAddr::new(config.bind_address, config.worker_port);

    runtime()?.block_on(async move {
        let s3 = pixelator::s3::client_from_env(config.s3_path_style).await;
        let pixelator = Pixelator::new(s3, PixelatorSettings::from_config(&config));
        if args.reconcile {
            let (queue, queued) = mpsc::channel(config.delivery.queue_capacity);
            tokio::spawn(delivery::run(
                pixelator.clone(),
                queued,
                config.delivery.clone(),
            ));
            let reconciling = pixelator.clone();
            tokio::spawn(async move {
                if let Err(error) = delivery::reconcile(&reconciling, &queue).await {
                    tracing::error!(error = %error, "reconciliation failed");
                }
            });
        }
        let state = WorkerState::new(pixelator, &token, config.delivery.concurrency);
        worker::run(state, address)
            .await
            .with_context(|| format!("the worker on {address} stopped"))
    })
}
