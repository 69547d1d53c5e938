//! The `pixelator` command.
//!
//! One binary, one subcommand per way of running the pipeline. `main` parses the
//! command line, installs logging (to stderr, filtered by `RUST_LOG`: warnings and
//! errors by default for `pixelate`, one line per record and more for the services,
//! as JSON lines with `PIXELATOR_LOG_FORMAT=json`) and hands over to the
//! subcommand; each subcommand lives in a module of its own and returns whether it
//! fully succeeded.

mod cli;
mod services;

use std::io::IsTerminal;
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
    /// Run the whole pipeline on this machine: an embedded S3 store, the
    /// pixelator on its events, the API and the web page. Configured by
    /// PIXELATOR_* variables.
    Serve,
    /// Run the pixelator as a service receiving S3 event JSON by webhook
    /// (POST /events with a bearer token), for MinIO, Ceph, Garage and other
    /// S3-compatible stores named by the standard AWS variables.
    Worker(services::WorkerArgs),
}

fn main() -> ExitCode {
    let command = Command::parse();
    let default_level = match command.action {
        Action::Pixelate(_) => "warn",
        // s3s logs every refused request as an error, with its internals; the
        // embedded store logs refusals itself, one line each.
        Action::Serve => "info,s3s=off",
        Action::Worker(_) => "info",
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logging = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match pixelator::telemetry::LogFormat::from_env() {
        pixelator::telemetry::LogFormat::Json => logging.json().flatten_event(true).init(),
        pixelator::telemetry::LogFormat::Text => logging.init(),
    }

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
        Action::Serve => finish(services::serve()),
        Action::Worker(args) => finish(services::worker(args)),
    }
}

/// The exit status of a service, with its error on stderr.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
