//! The pipeline's configuration, read from `PIXELATOR_*` environment variables.
//!
//! Every setting has a default that works on one machine, so `pixelator serve` runs
//! with no variable set at all. The S3 endpoint, region and credentials are not read
//! here: they come from the AWS SDK's own variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, the credential chain), see [`crate::s3`].
//!
//! Reading is strict: a variable that is set but cannot be understood is an error
//! naming the variable and its value, never silently replaced by the default. The
//! configuration is also checked as a whole: one in which the pixelator's own output
//! would land where it listens for uploads (the same bucket for sources and output)
//! is refused, so one upload can never start a loop.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use pixelator_shared::layout::{is_output_key, manifest_key, variant_key};
use pixelator_shared::wire::ImageFormat;
use pixelator_shared::{DEFAULT_GRID_SIZES, GridMode, GridShape};

/// The largest grid size accepted; larger grids stop looking pixelated.
pub const MAX_GRID_SIZE: u32 = 1024;

/// Why a configuration was refused. Retrying never helps: the environment has to
/// change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is set to something that cannot be used.
    #[error("{name}={value:?} is not valid: {problem}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// Its value as set.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The pixelator's output would be written where it listens for uploads.
    #[error(
        "the pixelator would trigger itself: its output ({output_example:?}) would be \
         written to bucket {bucket:?} under the source prefix {source_prefix:?}; use \
         another bucket for PIXELATOR_PROCESSED_BUCKET"
    )]
    OutputTriggersPixelator {
        /// The bucket named both as source and as output.
        bucket: String,
        /// The prefix uploads are taken from.
        source_prefix: String,
        /// An output key that would fall under the source prefix.
        output_example: String,
    },
}

/// The two buckets of the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buckets {
    /// Where the browser uploads originals (`PIXELATOR_SOURCE_BUCKET`).
    pub source: String,
    /// Where the pixelator writes variants and manifests
    /// (`PIXELATOR_PROCESSED_BUCKET`).
    pub processed: String,
}

/// How the local pipeline delivers bucket events to the pixelator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Events handled at the same time (`PIXELATOR_CONCURRENCY`).
    pub concurrency: usize,
    /// Events waiting for delivery before the store's uploads wait too
    /// (`PIXELATOR_QUEUE_CAPACITY`).
    pub queue_capacity: usize,
    /// Attempts per event before it is given up until the next start
    /// (`PIXELATOR_DELIVERY_ATTEMPTS`).
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles with each further attempt
    /// (`PIXELATOR_RETRY_BASE_MS`).
    pub retry_base: Duration,
}

/// Everything the pipeline's parts read from the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The source and processed buckets.
    pub buckets: Buckets,
    /// The key prefix uploads are written under and the pixelator listens to
    /// (`PIXELATOR_SOURCE_PREFIX`, ends with `/`).
    pub source_prefix: String,
    /// The grid sizes written for each source (`PIXELATOR_GRID_SIZES`, comma
    /// separated), smallest first.
    pub grid_sizes: Vec<u32>,
    /// How grid sizes map onto images (`PIXELATOR_GRID_MODE`: classic or square).
    pub grid_mode: GridMode,
    /// The largest upload accepted, in bytes (`PIXELATOR_MAX_UPLOAD_BYTES`).
    pub max_upload_bytes: u64,
    /// The most pixels a source may have (`PIXELATOR_MAX_PIXELS`).
    pub max_pixels: u64,
    /// The longest side a source may have (`PIXELATOR_MAX_DIMENSION`).
    pub max_dimension: u32,
    /// How long a presigned upload URL stays valid (`PIXELATOR_UPLOAD_URL_SECONDS`).
    pub upload_url_lifetime: Duration,
    /// How long a presigned download URL stays valid
    /// (`PIXELATOR_DOWNLOAD_URL_SECONDS`).
    pub download_url_lifetime: Duration,
    /// The web page origins allowed to call the API and upload
    /// (`PIXELATOR_WEB_ORIGINS`, comma separated).
    pub web_origins: Vec<String>,
    /// Where the local store keeps its data (`PIXELATOR_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The address the local servers listen on (`PIXELATOR_BIND`).
    pub bind_address: IpAddr,
    /// The port of the API and web page in local mode (`PIXELATOR_PORT`).
    pub http_port: u16,
    /// The port of the local S3 store (`PIXELATOR_S3_PORT`).
    pub s3_port: u16,
    /// The port of the webhook worker (`PIXELATOR_WORKER_PORT`).
    pub worker_port: u16,
    /// The built web app served in local mode (`PIXELATOR_WEB_DIR`).
    pub web_dir: PathBuf,
    /// Event delivery in local mode.
    pub delivery: DeliveryConfig,
    /// The bearer token webhook senders must present to the worker
    /// (`PIXELATOR_WORKER_TOKEN`); when unset the worker makes one up at start.
    pub worker_token: Option<String>,
    /// Whether S3 requests use path-style addressing (`PIXELATOR_S3_PATH_STYLE`);
    /// by default only when a custom endpoint is configured (`AWS_ENDPOINT_URL`).
    pub s3_path_style: bool,
    /// The access key of the local store (`PIXELATOR_LOCAL_ACCESS_KEY`).
    pub local_access_key: String,
    /// The secret key of the local store (`PIXELATOR_LOCAL_SECRET_KEY`); the
    /// default is fine on loopback only.
    pub local_secret_key: String,
}

/// The local store's access key when none is configured.
pub const DEFAULT_LOCAL_ACCESS_KEY: &str = "pixelator";
/// The local store's secret key when none is configured: public, so only fit for
/// a store on loopback.
pub const DEFAULT_LOCAL_SECRET_KEY: &str = "pixelator-local-secret";

/// The port the API and web page listen on by default.
pub const DEFAULT_HTTP_PORT: u16 = 8080;
/// The port the local S3 store listens on by default.
pub const DEFAULT_S3_PORT: u16 = 9000;
/// The port the webhook worker listens on by default.
pub const DEFAULT_WORKER_PORT: u16 = 8090;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from `lookup`, which answers a variable's value.
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let vars = Vars { lookup: &lookup };

        let buckets = Buckets {
            source: vars.bucket("PIXELATOR_SOURCE_BUCKET", "pixelator-source")?,
            processed: vars.bucket("PIXELATOR_PROCESSED_BUCKET", "pixelator-processed")?,
        };
        let source_prefix = vars.prefix("PIXELATOR_SOURCE_PREFIX", "uploads/")?;
        let grid_sizes = vars.grid_sizes("PIXELATOR_GRID_SIZES")?;
        let grid_mode = vars.parsed("PIXELATOR_GRID_MODE", GridMode::Classic)?;
        let max_upload_bytes = vars.positive("PIXELATOR_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)?;
        let max_pixels = vars.positive("PIXELATOR_MAX_PIXELS", 50_000_000)?;
        let max_dimension = vars.positive("PIXELATOR_MAX_DIMENSION", 30_000)?;
        let upload_url_lifetime = vars.seconds("PIXELATOR_UPLOAD_URL_SECONDS", 300)?;
        let download_url_lifetime = vars.seconds("PIXELATOR_DOWNLOAD_URL_SECONDS", 3600)?;

        let bind_address = vars.parsed("PIXELATOR_BIND", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let http_port = vars.parsed("PIXELATOR_PORT", DEFAULT_HTTP_PORT)?;
        let s3_port = vars.parsed("PIXELATOR_S3_PORT", DEFAULT_S3_PORT)?;
        let worker_port = vars.parsed("PIXELATOR_WORKER_PORT", DEFAULT_WORKER_PORT)?;
        let web_origins = vars.origins("PIXELATOR_WEB_ORIGINS", http_port)?;
        let data_dir = vars.path("PIXELATOR_DATA_DIR", "pixelator-data");
        let web_dir = vars.path("PIXELATOR_WEB_DIR", "dist");

        let delivery = DeliveryConfig {
            concurrency: vars.positive("PIXELATOR_CONCURRENCY", 2)?,
            queue_capacity: vars.positive("PIXELATOR_QUEUE_CAPACITY", 256)?,
            max_attempts: vars.positive("PIXELATOR_DELIVERY_ATTEMPTS", 6)?,
            retry_base: Duration::from_millis(vars.positive("PIXELATOR_RETRY_BASE_MS", 200)?),
        };
        let worker_token = vars.token("PIXELATOR_WORKER_TOKEN")?;
        let custom_endpoint =
            vars.get("AWS_ENDPOINT_URL_S3").is_some() || vars.get("AWS_ENDPOINT_URL").is_some();
        let s3_path_style = vars.parsed("PIXELATOR_S3_PATH_STYLE", custom_endpoint)?;
        let local_access_key = vars
            .get("PIXELATOR_LOCAL_ACCESS_KEY")
            .unwrap_or_else(|| DEFAULT_LOCAL_ACCESS_KEY.to_owned());
        let local_secret_key = vars
            .get("PIXELATOR_LOCAL_SECRET_KEY")
            .unwrap_or_else(|| DEFAULT_LOCAL_SECRET_KEY.to_owned());

        let config = Config {
            buckets,
            source_prefix,
            grid_sizes,
            grid_mode,
            max_upload_bytes,
            max_pixels,
            max_dimension,
            upload_url_lifetime,
            download_url_lifetime,
            web_origins,
            data_dir,
            bind_address,
            http_port,
            s3_port,
            worker_port,
            web_dir,
            delivery,
            worker_token,
            s3_path_style,
            local_access_key,
            local_secret_key,
        };
        config.check_no_self_trigger()?;
        Ok(config)
    }

    /// Refuses a configuration in which something the pixelator writes could land
    /// in the source bucket under the source prefix.
    ///
    /// Variants sit in their source's folder, so with one bucket for both every
    /// variant would be written under the source prefix. The check derives the
    /// output names from the layout rather than assuming it, so a later layout
    /// with its own output prefix is judged on its merits.
    pub fn check_no_self_trigger(&self) -> Result<(), ConfigError> {
        if self.buckets.source != self.buckets.processed {
            return Ok(());
        }
        let source = format!("{}example/photo.jpg", self.source_prefix);
        let shape = GridShape::new(8, 8);
        let outputs = [
            variant_key(&source, shape, ImageFormat::Jpeg),
            manifest_key(&source),
        ];
        for output in outputs {
            if output.starts_with(&self.source_prefix) || !is_output_key(&output) {
                return Err(ConfigError::OutputTriggersPixelator {
                    bucket: self.buckets.source.clone(),
                    source_prefix: self.source_prefix.clone(),
                    output_example: output,
                });
            }
        }
        Ok(())
    }

    /// The media types an upload may declare: the formats the pixelator reads.
    pub fn accepted_types(&self) -> Vec<String> {
        ImageFormat::ALL
            .iter()
            .map(|format| format.mime_type().to_owned())
            .collect()
    }
}

impl Default for Config {
    /// The configuration with no variable set.
    fn default() -> Self {
        Config::from_lookup(|_| None).expect("the defaults form a valid configuration")
    }
}

/// Typed access to the variables, each read with its default.
struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    fn invalid(name: &'static str, value: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            name,
            value: value.to_owned(),
            problem: problem.into(),
        }
    }

    fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|error: T::Err| Self::invalid(name, &value, error.to_string())),
        }
    }

    fn positive<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + Default,
        T::Err: std::fmt::Display,
    {
        let value = self.parsed(name, default)?;
        if value <= T::default() {
            let text = self.get(name).unwrap_or_default();
            return Err(Self::invalid(name, &text, "must be greater than zero"));
        }
        Ok(value)
    }

    fn seconds(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        let seconds: u64 = self.positive(name, default)?;
        // A presigned URL cannot outlive a week (SigV4's limit).
        if seconds > 7 * 24 * 3600 {
            let text = self.get(name).unwrap_or_default();
            return Err(Self::invalid(
                name,
                &text,
                "must be at most 604800 (a week)",
            ));
        }
        Ok(Duration::from_secs(seconds))
    }

    fn path(&self, name: &'static str, default: &str) -> PathBuf {
        PathBuf::from(self.get(name).unwrap_or_else(|| default.to_owned()))
    }

    /// A bucket name as S3 allows it: 3 to 63 lowercase letters, digits, dots and
    /// hyphens, starting and ending with a letter or digit.
    fn bucket(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        let bucket = value.trim();
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
        let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !(3..=63).contains(&bucket.len())
            || !bucket.chars().all(allowed)
            || !ends_ok(bucket.chars().next())
            || !ends_ok(bucket.chars().last())
        {
            return Err(Self::invalid(
                name,
                &value,
                "a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens",
            ));
        }
        Ok(bucket.to_owned())
    }

    /// A key prefix: a folder ending with `/`, without a leading `/`.
    fn prefix(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        let trimmed = value.trim().trim_start_matches('/');
        if trimmed.is_empty() || trimmed.chars().any(char::is_control) || trimmed.len() > 256 {
            return Err(Self::invalid(
                name,
                &value,
                "a prefix is a folder name such as uploads/",
            ));
        }
        let prefix = if trimmed.ends_with('/') {
            trimmed.to_owned()
        } else {
            format!("{trimmed}/")
        };
        if is_output_key(&format!("{prefix}x")) {
            return Err(Self::invalid(
                name,
                &value,
                "the prefix is where the pixelator writes its own output",
            ));
        }
        Ok(prefix)
    }

    fn grid_sizes(&self, name: &'static str) -> Result<Vec<u32>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(DEFAULT_GRID_SIZES.to_vec());
        };
        let mut sizes = Vec::new();
        for part in value.split(',') {
            let size: u32 = part.trim().parse().map_err(|_| {
                Self::invalid(
                    name,
                    &value,
                    format!("{:?} is not a whole number", part.trim()),
                )
            })?;
            if size == 0 || size > MAX_GRID_SIZE {
                return Err(Self::invalid(
                    name,
                    &value,
                    format!("grid sizes are 1 to {MAX_GRID_SIZE}"),
                ));
            }
            if sizes.contains(&size) {
                return Err(Self::invalid(
                    name,
                    &value,
                    format!("{size} is listed twice"),
                ));
            }
            sizes.push(size);
        }
        sizes.sort_unstable();
        Ok(sizes)
    }

    /// Web origins: `scheme://host[:port]`, no path. The default allows the local
    /// page on both loopback names.
    fn origins(&self, name: &'static str, http_port: u16) -> Result<Vec<String>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(vec![
                format!("http://127.0.0.1:{http_port}"),
                format!("http://localhost:{http_port}"),
            ]);
        };
        let mut origins = Vec::new();
        for part in value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let origin = part.trim_end_matches('/');
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid = rest.is_some_and(|host| {
                !host.is_empty()
                    && !host.contains('/')
                    && host.chars().all(|c| c.is_ascii_graphic() && c != '*')
            });
            if !valid {
                return Err(Self::invalid(
                    name,
                    &value,
                    format!("{part:?} is not an origin such as https://pixelator.example.com"),
                ));
            }
            origins.push(origin.to_owned());
        }
        if origins.is_empty() {
            return Err(Self::invalid(name, &value, "no origin given"));
        }
        Ok(origins)
    }

    fn token(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        let token = value.trim();
        if token.len() < 16 || !token.chars().all(|c| c.is_ascii_graphic()) {
            // The value is a secret: the error does not repeat it.
            return Err(Self::invalid(
                name,
                "(hidden)",
                "a token is at least 16 printable ASCII characters",
            ));
        }
        Ok(Some(token.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config_with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_work_on_one_machine() {
        let config = Config::default();
        assert_eq!(config.buckets.source, "pixelator-source");
        assert_eq!(config.buckets.processed, "pixelator-processed");
        assert_eq!(config.source_prefix, "uploads/");
        assert_eq!(config.grid_sizes, vec![8, 16, 32, 48, 64]);
        assert_eq!(config.grid_mode, GridMode::Classic);
        assert_eq!(config.upload_url_lifetime, Duration::from_secs(300));
        assert!(config.bind_address.is_loopback());
        assert_eq!(
            config.web_origins,
            vec!["http://127.0.0.1:8080", "http://localhost:8080"]
        );
        assert!(!config.s3_path_style);
        assert_eq!(config.worker_token, None);
    }

    #[test]
    fn variables_override_the_defaults() {
        let config = config_with(&[
            ("PIXELATOR_SOURCE_BUCKET", "my-in"),
            ("PIXELATOR_PROCESSED_BUCKET", "my-out"),
            ("PIXELATOR_SOURCE_PREFIX", "/incoming"),
            ("PIXELATOR_GRID_SIZES", "32, 4,12"),
            ("PIXELATOR_GRID_MODE", "square"),
            ("PIXELATOR_MAX_UPLOAD_BYTES", "1000"),
            ("PIXELATOR_PORT", "3000"),
            (
                "PIXELATOR_WEB_ORIGINS",
                "https://a.example.com/, http://localhost:5173",
            ),
            ("PIXELATOR_CONCURRENCY", "8"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ])
        .unwrap();
        assert_eq!(config.buckets.source, "my-in");
        assert_eq!(config.source_prefix, "incoming/");
        assert_eq!(config.grid_sizes, vec![4, 12, 32]);
        assert_eq!(config.grid_mode, GridMode::Square);
        assert_eq!(config.max_upload_bytes, 1000);
        assert_eq!(config.http_port, 3000);
        assert_eq!(
            config.web_origins,
            vec!["https://a.example.com", "http://localhost:5173"]
        );
        assert_eq!(config.delivery.concurrency, 8);
        assert!(config.s3_path_style, "a custom endpoint implies path style");
    }

    #[test]
    fn unreadable_values_name_the_variable() {
        let error = config_with(&[("PIXELATOR_MAX_PIXELS", "lots")]).unwrap_err();
        assert!(
            error.to_string().contains("PIXELATOR_MAX_PIXELS=\"lots\""),
            "{error}"
        );

        for (name, value) in [
            ("PIXELATOR_GRID_SIZES", "8,0"),
            ("PIXELATOR_GRID_SIZES", "8,8"),
            ("PIXELATOR_GRID_SIZES", "8,x"),
            ("PIXELATOR_GRID_MODE", "wavy"),
            ("PIXELATOR_SOURCE_BUCKET", "Upper_Case"),
            ("PIXELATOR_SOURCE_BUCKET", "ab"),
            ("PIXELATOR_CONCURRENCY", "0"),
            ("PIXELATOR_UPLOAD_URL_SECONDS", "9999999"),
            ("PIXELATOR_WEB_ORIGINS", "*"),
            ("PIXELATOR_WEB_ORIGINS", "https://a.example.com/path"),
            ("PIXELATOR_SOURCE_PREFIX", "manifests/"),
            ("PIXELATOR_PORT", "70000"),
        ] {
            match config_with(&[(name, value)]) {
                Err(ConfigError::Invalid { name: named, .. }) => assert_eq!(named, name),
                other => panic!("{name}={value} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_short_worker_token_is_refused_without_repeating_it() {
        let error = config_with(&[("PIXELATOR_WORKER_TOKEN", "secret")]).unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        let config = config_with(&[("PIXELATOR_WORKER_TOKEN", "0123456789abcdef")]).unwrap();
        assert_eq!(config.worker_token.as_deref(), Some("0123456789abcdef"));
    }

    #[test]
    fn one_bucket_for_sources_and_output_is_refused() {
        let error = config_with(&[
            ("PIXELATOR_SOURCE_BUCKET", "photos"),
            ("PIXELATOR_PROCESSED_BUCKET", "photos"),
        ])
        .unwrap_err();
        match error {
            ConfigError::OutputTriggersPixelator {
                bucket,
                output_example,
                ..
            } => {
                assert_eq!(bucket, "photos");
                assert!(output_example.starts_with("uploads/"), "{output_example}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
