//! `pixelator serve` as a real child process: started on free ports over a data
//! folder, its addresses read from the summary it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `pixelator serve`; killed when dropped.
pub struct ServeProcess {
    pub child: Child,
    /// The web page and API, such as `http://127.0.0.1:40000/`.
    pub web: String,
    /// The embedded store's endpoint.
    pub s3: String,
}

impl ServeProcess {
    /// Starts `binary serve` over `data` with `extra` variables, and waits for its
    /// summary.
    pub async fn start(binary: &Path, data: &Path, extra: &[(&str, &str)]) -> ServeProcess {
        let keys = super::keys();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PIXELATOR_PORT", "0")
            .env("PIXELATOR_S3_PORT", "0")
            .env("PIXELATOR_DATA_DIR", data)
            .env("PIXELATOR_WEB_DIR", data.join("no-web-app"))
            .env("PIXELATOR_LOCAL_ACCESS_KEY", &keys.access_key)
            .env("PIXELATOR_LOCAL_SECRET_KEY", &keys.secret_key)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("pixelator serve starts");

        let stdout = child.stdout.take().expect("piped stdout");
        let (found, summary) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            let (mut web, mut s3) = (None, None);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let url = || {
                    line.split_whitespace()
                        .find(|word| word.starts_with("http://"))
                        .map(str::to_owned)
                };
                if line.contains("web page and API") {
                    web = url();
                } else if line.contains("S3 store") {
                    s3 = url();
                }
                if let (Some(web), Some(s3)) = (&web, &s3)
                    && let Some(found) = found.take()
                {
                    let _ = found.send((web.clone(), s3.clone()));
                }
            }
        });
        let (web, s3) = tokio::time::timeout(Duration::from_secs(60), summary)
            .await
            .expect("the summary within a minute")
            .expect("the summary before the process ended");
        ServeProcess { child, web, s3 }
    }

    /// A client for its store.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        pixelator::s3::client_for_endpoint(&self.s3, super::REGION, &super::keys())
    }

    /// The process's peak resident memory so far, in KiB (Linux).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Kills it with SIGKILL: no shutdown, nothing flushed.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
