//! A small W3C WebDriver client for the end-to-end tests: it starts chromedriver on
//! a free loopback port, opens one headless Chromium session with a fresh profile,
//! and offers the few commands the tests need (navigate, run a script, find an
//! element, type a file path into a file input, resize the window, screenshot).
//! Chromium and chromedriver are the ones installed on the machine (`CHROMIUM`,
//! `CHROMEDRIVER`, by default `/usr/bin/chromium` and `chromedriver` on PATH);
//! nothing is downloaded.
//!
//! chromedriver runs in a process group of its own, with the Chromium it starts.
//! However a test ends, a failed assertion's early return included, dropping the
//! [`Browser`] ends the session (which quits Chromium) and then kills the whole
//! group, so no headless browser outlives its test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The key WebDriver uses for an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session, closed (and its driver's process group stopped) when
/// dropped.
pub(crate) struct Browser {
    http: reqwest::Client,
    session: String,
    driver_url: String,
    driver: Child,
    /// Whether chromedriver was reaped: its process group id may then be reused.
    driver_reaped: bool,
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub(crate) struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of `width x height`.
    pub(crate) async fn start(width: u32, height: u32) -> Result<Browser> {
        let port = free_port()?;
        let driver_path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {driver_path}"))?;
        let profile = tempfile::tempdir()?;
        let mut browser = Browser {
            http: reqwest::Client::new(),
            session: String::new(),
            driver_url: format!("http://127.0.0.1:{port}"),
            driver,
            driver_reaped: false,
            _profile: profile,
        };
        browser.wait_for_driver().await?;

        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": binary, "args": args }
                }
            }
        });
        let answer = browser
            .command(reqwest::Method::POST, "/session", capabilities)
            .await
            .context("opening a Chromium session")?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no session id in {answer}"))?
            .to_owned();
        Ok(browser)
    }

    async fn wait_for_driver(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .http
                .get(format!("{}/status", self.driver_url))
                .send()
                .await
                .ok()
                .map(|response| response.status().is_success())
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not start within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{}", self.driver_url, path);
        let request = self.http.request(method.clone(), &url);
        let request = if method == reqwest::Method::GET {
            request
        } else {
            request.json(&body)
        };
        let answer: Value = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?
            .json()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            let message = value.get("message").and_then(Value::as_str).unwrap_or("");
            bail!("{method} {path}: {error}: {message}");
        }
        Ok(value)
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) -> Result<()> {
        self.command(
            reqwest::Method::POST,
            &self.session_path("/url"),
            json!({ "url": url }),
        )
        .await?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub(crate) async fn run<T: DeserializeOwned>(
        &self,
        script: &str,
        args: Vec<Value>,
    ) -> Result<T> {
        let value = self
            .command(
                reqwest::Method::POST,
                &self.session_path("/execute/sync"),
                json!({ "script": script, "args": args }),
            )
            .await?;
        serde_json::from_value(value.clone()).with_context(|| format!("script answered {value}"))
    }

    /// Waits until `script` returns true, checking every 100 ms, for at most `limit`.
    pub(crate) async fn wait_until(&self, what: &str, script: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.run::<bool>(script, vec![]).await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out after {limit:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching a CSS selector.
    pub(crate) async fn find(&self, selector: &str) -> Result<Element> {
        let value = self
            .command(
                reqwest::Method::POST,
                &self.session_path("/element"),
                json!({ "using": "css selector", "value": selector }),
            )
            .await
            .with_context(|| format!("finding {selector}"))?;
        let id = value[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| anyhow!("no element for {selector}: {value}"))?;
        Ok(Element(id.to_owned()))
    }

    /// Types `text` into an element; for a file input, newline-separated paths
    /// choose those files.
    pub(crate) async fn send_keys(&self, element: &Element, text: &str) -> Result<()> {
        self.command(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{}/value", element.0)),
            json!({ "text": text }),
        )
        .await?;
        Ok(())
    }

    /// Clicks an element.
    pub(crate) async fn click(&self, element: &Element) -> Result<()> {
        self.command(
            reqwest::Method::POST,
            &self.session_path(&format!("/element/{}/click", element.0)),
            json!({}),
        )
        .await?;
        Ok(())
    }

    /// Resizes the window.
    pub(crate) async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.command(
            reqwest::Method::POST,
            &self.session_path("/window/rect"),
            json!({ "width": width, "height": height }),
        )
        .await?;
        Ok(())
    }

    /// Emulates network conditions (chromedriver's extension): `conditions` holds
    /// `offline`, `latency` (ms), `download_throughput` and `upload_throughput`
    /// (bytes per second).
    pub(crate) async fn network_conditions(&self, conditions: Value) -> Result<()> {
        self.command(
            reqwest::Method::POST,
            &self.session_path("/chromium/network_conditions"),
            json!({ "network_conditions": conditions }),
        )
        .await?;
        Ok(())
    }

    /// Ends the emulation of [`Browser::network_conditions`].
    pub(crate) async fn clear_network_conditions(&self) -> Result<()> {
        self.command(
            reqwest::Method::DELETE,
            &self.session_path("/chromium/network_conditions"),
            json!({}),
        )
        .await?;
        Ok(())
    }

    /// Makes the page see `prefers-color-scheme: <scheme>` (through the DevTools
    /// protocol, which chromedriver relays).
    pub(crate) async fn color_scheme(&self, scheme: &str) -> Result<()> {
        let params = json!({
            "features": [{ "name": "prefers-color-scheme", "value": scheme }]
        });
        self.command(
            reqwest::Method::POST,
            &self.session_path("/goog/cdp/execute"),
            json!({ "cmd": "Emulation.setEmulatedMedia", "params": params }),
        )
        .await?;
        Ok(())
    }

    /// A PNG of the visible part of the page.
    pub(crate) async fn screenshot(&self) -> Result<Vec<u8>> {
        let value = self
            .command(
                reqwest::Method::GET,
                &self.session_path("/screenshot"),
                Value::Null,
            )
            .await?;
        let encoded = value
            .as_str()
            .ok_or_else(|| anyhow!("no screenshot data"))?;
        decode_base64(encoded)
    }

    /// Ends the session and stops the driver.
    pub(crate) async fn quit(mut self) -> Result<()> {
        let path = self.session_path("");
        let ended = self
            .command(reqwest::Method::DELETE, &path, json!({}))
            .await;
        self.session.clear();
        self.stop_driver();
        ended.map(|_| ())
    }

    /// Ends the session, if still open, with a plain blocking request: `Drop` cannot
    /// await, and ending the session is what makes chromedriver quit Chromium.
    fn end_session_blocking(&mut self) {
        if self.session.is_empty() {
            return;
        }
        let path = self.session_path("");
        self.session.clear();
        let Some(address) = self.driver_url.strip_prefix("http://") else {
            return;
        };
        let Ok(mut stream) = TcpStream::connect(address) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let request = format!(
            "DELETE {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // The answer comes once Chromium is gone.
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }

    /// Kills chromedriver's process group (anything of Chromium's still in it too),
    /// then reaps chromedriver.
    fn stop_driver(&mut self) {
        if self.driver_reaped {
            return;
        }
        // Until chromedriver is reaped its id stays taken, so the group is still ours.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        self.driver_reaped = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that returned early leaves its session open: end it, so Chromium
        // quits, then stop the driver's group; the profile folder is removed after.
        self.end_session_blocking();
        self.stop_driver();
    }
}

/// A free TCP port on loopback.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Decodes standard base64 (as WebDriver sends screenshots).
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let value = |byte: u8| -> Result<u32> {
        Ok(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            other => bail!("not base64: {:?}", other as char),
        } as u32)
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let digits: Vec<u8> = chunk.iter().copied().filter(|&byte| byte != b'=').collect();
        let mut bits = 0u32;
        for &digit in &digits {
            bits = bits << 6 | value(digit)?;
        }
        bits <<= 6 * (4 - digits.len() as u32);
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..digits.len().max(1)]);
    }
    Ok(out)
}
