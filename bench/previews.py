#!/usr/bin/env python3
"""Time the web page's previews of a photo in headless Chromium, and weigh the page.

usage: bench/previews.py [--runs N] [--photo FILE] [--dist DIR]

Serves the built page (DIST, default dist/; build it first with
`trunk build --release`) from a static server on loopback, starts chromedriver
(CHROMEDRIVER, default `chromedriver` on PATH) and a headless Chromium (CHROMIUM,
default /usr/bin/chromium) with a fresh profile, and N times (default 10): opens
the page anew, chooses the photo in the page's file picker, waits for its five
previews and reads the timings the page records on them:

  decode   the decode of the file: on the browser path createImageBitmap, turned
           upright (straight to the shrunken copy when the page shrinks on load);
           on the jpeg-block-means path (a large JPEG) reading the file and the
           pipeline's DC-only JPEG decoder, in the page's wasm
  ready    from the decoded picture to the five grids: the shrunken copy (unless
           made by the decode), reading its pixels back and the grid code, pauses
           for the page included
  read     of which the copy and reading its pixels back
  grid     of which the grid code alone
  total    decode and ready together: from the file to the five grids

and prints each run and the median of each. The photo defaults to the 12.2 MP
phone JPEG of the bench images (PIXELATOR_BENCH_IMAGES, default
../shared/bench-images relative to the repository root).

No API runs behind the page here: it works from its default limits, as it does
when the API cannot be reached, and nothing is uploaded.

It also prints the raw and gzip (level 9) sizes of the page's wasm, JS and CSS,
and of wasm plus JS together.
"""
import argparse
import functools
import gzip
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PHOTO = "jpeg-phone-samsung-s7edge-4032x3024.jpg"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1440,900",
]
COLUMNS = ("decode", "ready", "read", "grid", "total")
READ_TIMINGS = """
    const previews = document.querySelector('[data-testid=previews]');
    if (!previews || previews.querySelectorAll('canvas').length < 5) return null;
    return {
      decode: Number(previews.dataset.decodeMs),
      ready: Number(previews.dataset.readyMs),
      read: Number(previews.dataset.readMs),
      grid: Number(previews.dataset.gridMs),
      shrunk: previews.dataset.shrunkOnLoad === "true",
      path: previews.dataset.path,
    };
"""


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Driver:
    """The few WebDriver commands the benchmark needs, over plain HTTP."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}"
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                value = json.load(answer).get("value")
        except urllib.error.HTTPError as error:
            value = json.load(error).get("value")
        if isinstance(value, dict) and "error" in value:
            raise RuntimeError(f"{method} {path}: {value['error']}: {value.get('message')}")
        return value

    def wait_ready(self, limit=20.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/status").get("ready"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("chromedriver did not start")

    def open_session(self, binary, profile):
        capabilities = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": CHROMIUM_ARGS + [f"--user-data-dir={profile}"],
            },
        }}}
        self.session = self.call("POST", "/session", capabilities)["sessionId"]

    def at(self, rest):
        return f"/session/{self.session}{rest}"

    def goto(self, url):
        self.call("POST", self.at("/url"), {"url": url})

    def run(self, script):
        return self.call("POST", self.at("/execute/sync"), {"script": script, "args": []})

    def wait_for(self, script, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            value = self.run(script)
            if value:
                return value
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for: {script.strip()[:80]}")

    def choose_file(self, selector, path):
        found = self.call("POST", self.at("/element"),
                          {"using": "css selector", "value": selector})
        element = next(iter(found.values()))
        self.call("POST", self.at(f"/element/{element}/value"), {"text": path})

    def close(self):
        if self.session:
            self.call("DELETE", self.at(""))


def page_sizes(dist):
    """Raw and gzip sizes of the page's wasm, JS and CSS files."""
    rows = []
    for name in sorted(os.listdir(dist)):
        if name.endswith((".wasm", ".js", ".css")):
            with open(os.path.join(dist, name), "rb") as file:
                data = file.read()
            rows.append((name, len(data), len(gzip.compress(data, compresslevel=9))))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--photo")
    parser.add_argument("--dist", default=os.path.join(ROOT, "dist"))
    options = parser.parse_args()

    bench = os.path.join(ROOT, os.environ.get("PIXELATOR_BENCH_IMAGES", "../shared/bench-images"))
    photo = os.path.abspath(options.photo or os.path.join(bench, DEFAULT_PHOTO))
    if not os.path.isfile(os.path.join(options.dist, "index.html")):
        sys.exit(f"no built page in {options.dist}: run `trunk build --release` first")
    if not os.path.isfile(photo):
        sys.exit(f"no photo at {photo}")

    rows = page_sizes(options.dist)
    print("page files (bytes): raw, gzip -9")
    for name, raw, packed in rows:
        print(f"  {name:<48} {raw:>9} {packed:>9}")
    code = [(raw, packed) for name, raw, packed in rows if not name.endswith(".css")]
    print(f"  {'wasm + JS':<48} {sum(r for r, _ in code):>9} {sum(p for _, p in code):>9}")

    handler = functools.partial(QuietHandler, directory=options.dist)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = f"http://127.0.0.1:{server.server_address[1]}/"

    port = free_port()
    driver_binary = os.environ.get("CHROMEDRIVER", "chromedriver")
    chromedriver = subprocess.Popen([driver_binary, f"--port={port}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = Driver(port)
    runs = []
    try:
        with tempfile.TemporaryDirectory() as profile:
            driver.wait_ready()
            driver.open_session(os.environ.get("CHROMIUM", "/usr/bin/chromium"), profile)
            try:
                print(f"\n{os.path.basename(photo)}, {options.runs} runs (ms):")
                print(f"  {'run':>3} " + " ".join(f"{key:>8}" for key in COLUMNS))
                for run in range(1, options.runs + 1):
                    driver.goto(page)
                    driver.wait_for("return !!document.querySelector('input[type=file]');", 30)
                    driver.choose_file("input[type=file]", photo)
                    timings = driver.wait_for(READ_TIMINGS, 60)
                    timings["total"] = timings["decode"] + timings["ready"]
                    runs.append(timings)
                    print(f"  {run:>3} " + " ".join(f"{timings[key]:>8.1f}" for key in COLUMNS)
                          + f"  {timings['path']}"
                          + ("  (shrunk on load)" if timings["shrunk"] else ""))
            finally:
                # Ending the session quits Chromium, also when a run failed:
                # stopping chromedriver alone would leave the browser running.
                try:
                    driver.close()
                except (OSError, RuntimeError) as error:
                    print(f"closing the browser: {error}", file=sys.stderr)
    finally:
        chromedriver.terminate()
        chromedriver.wait()
        server.shutdown()

    median = {key: statistics.median(run[key] for run in runs) for key in COLUMNS}
    print("  med " + " ".join(f"{median[key]:>8.1f}" for key in COLUMNS))
    print(f"\nmedian of {len(runs)}: five grids {median['ready']:.1f} ms after decode "
          f"(read-back {median['read']:.1f} ms, grid code {median['grid']:.1f} ms), "
          f"decode {median['decode']:.1f} ms, {median['total']:.1f} ms from the file")


if __name__ == "__main__":
    main()
