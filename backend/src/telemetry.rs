//! Logging set-up for the binaries: `tracing` with the level from `RUST_LOG`
//! (default `info`), as JSON lines where a machine reads them (Lambda, or
//! `PIXELATOR_LOG_FORMAT=json`) and as plain text for a person otherwise.

use tracing_subscriber::EnvFilter;

/// Where the log lines are read, which decides their format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

impl LogFormat {
    /// `Json` when `PIXELATOR_LOG_FORMAT=json`, `Text` otherwise.
    pub fn from_env() -> LogFormat {
        match std::env::var("PIXELATOR_LOG_FORMAT") {
            Ok(format) if format.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// Installs the global subscriber; logs go to standard error. Does nothing when
/// one is installed already.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A subscriber installed earlier (by a test harness, say) stays in place.
    drop(installed);
}
