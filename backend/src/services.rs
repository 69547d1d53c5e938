//! `pixelator serve`: the long-running way of running the pipeline. It reads its
//! configuration from the environment (`PIXELATOR_*`) and runs until Ctrl-C or
//! SIGTERM.

use anyhow::Context;
use pixelator::config::Config;
use pixelator::serve;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
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
