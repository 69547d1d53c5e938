//! The `pixelator` command.
//!
//! One binary, one subcommand per way of running the pipeline. `main` installs
//! logging (to stderr, filtered by `RUST_LOG`, warnings and errors by default),
//! parses the command line and hands over to the subcommand; each subcommand lives
//! in a module of its own and returns whether it fully succeeded.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Pixelator: turns images into pixelated variants.
#[derive(Debug, Parser)]
#[command(name = "pixelator", version, about)]
struct Command {
    #[command(subcommand)]
    action: Action,
}

/// What to run.
#[derive(Debug, Subcommand)]
enum Action {
    /// Pixelate image files into a folder: `pixelated-<n>x<n>-<file name>` per size.
    Pixelate(cli::PixelateArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();

    let command = Command::parse();
    match command.action {
        Action::Pixelate(args) => match cli::run(args) {
            Ok(summary) if summary.failed == 0 => ExitCode::SUCCESS,
            Ok(summary) => {
                eprintln!(
                    "{} of {} inputs failed",
                    summary.failed,
                    summary.failed + summary.done
                );
                ExitCode::FAILURE
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
    }
}
