#!/usr/bin/env python3
"""Compare the throughput of `pixelator serve` with `pixelator pixelate` on the same files.

usage: bench/serve.py [--rounds N] [--count N] [--image NAME] [--put-concurrency N]
                      [--poll-ms N] [--no-build] [--keep-logs DIR]

Each round does two things, one after the other, on one machine:

1. the command line: `pixelator pixelate` on a folder of COUNT copies of the image
   (default: the 2.2 MP bench photo), one process; images per second is COUNT over
   its wall time, start-up included. Its peak RSS comes from wait4.
2. the pipeline: `pixelator serve` on loopback with a fresh data folder and free
   ports (PIXELATOR_PORT=0, PIXELATOR_S3_PORT=0; the addresses are read from the
   summary it prints). The script asks POST /api/uploads for COUNT presigned PUTs
   (not timed), then PUTs the copies' bytes with PUT_CONCURRENCY connections at once
   and polls GET /api/images/{key} until every image is `done`, oldest upload
   first, so the server answers about one poll per POLL_MS while it works. Images
   per second is COUNT over the time from the first PUT to the moment the last
   image was seen done. The server's peak RSS is VmHWM of /proc/<pid>/status, read
   before it is stopped with SIGTERM.

The order of the two alternates from round to round. Prints a line per round and
the medians: both rates, the ratio of the pipeline's rate to the command line's
(median of the per-round ratios), the CPU time each spent per image (user plus
system; on a shared machine the steadier figure) and the largest peak RSS of each.
Bench images are read from PIXELATOR_BENCH_IMAGES (default ../shared/bench-images
relative to the repository root). The release binary is built first unless
--no-build; CARGO_TARGET_DIR is honoured. Python 3 standard library only.
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_IMAGE = "jpeg-medium-portrait-1800x1200-orient6.jpg"
START_TIMEOUT_S = 60
FINISH_TIMEOUT_S = 600


def images_dir():
    return os.environ.get(
        "PIXELATOR_BENCH_IMAGES", os.path.join(ROOT, "..", "shared", "bench-images")
    )


def binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "pixelator")


def build():
    subprocess.run(
        ["cargo", "build", "--release", "-p", "pixelator", "--bin", "pixelator"],
        cwd=ROOT,
        check=True,
    )


def make_copies(image, count, folder):
    """COUNT byte-for-byte copies of IMAGE in FOLDER; returns their paths."""
    os.makedirs(folder)
    stem, extension = os.path.splitext(os.path.basename(image))
    paths = []
    for index in range(count):
        path = os.path.join(folder, f"{stem}-{index:03d}{extension}")
        shutil.copyfile(image, path)
        paths.append(path)
    return paths


def run_command_line(copies_dir, out_dir, count):
    """Returns (images per second, CPU ms per image, peak RSS in MB) of one
    `pixelator pixelate` run."""
    os.makedirs(out_dir)
    command = [binary(), "pixelate", copies_dir, "--out", out_dir]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"pixelator pixelate failed: {stderr.strip()}")
    written = len(os.listdir(out_dir))
    if written != count * 5:
        raise RuntimeError(f"pixelator pixelate wrote {written} files, expected {count * 5}")
    cpu = usage.ru_utime + usage.ru_stime
    return count / wall, cpu * 1000 / count, usage.ru_maxrss / 1024


class Server:
    """A `pixelator serve` process on loopback with its own data folder."""

    def __init__(self, scratch, log_path):
        env = dict(os.environ)
        env.update(
            {
                "PIXELATOR_BIND": "127.0.0.1",
                "PIXELATOR_PORT": "0",
                "PIXELATOR_S3_PORT": "0",
                "PIXELATOR_DATA_DIR": os.path.join(scratch, "data"),
                "PIXELATOR_WEB_DIR": os.path.join(scratch, "no-web-app"),
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [binary(), "serve"], stdout=subprocess.PIPE, stderr=self.log, env=env
        )
        self.api = self._read_api_address()

    def _read_api_address(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode(errors="replace")
            if not line:
                break
            lines.append(line)
            if "web page and API" in line:
                url = urllib.parse.urlsplit(line.split()[-1])
                return url.hostname, url.port
        self.stop()
        raise RuntimeError("pixelator serve did not start: " + "".join(lines))

    def request(self, method, path, body=None, headers=None):
        """One API request on a new connection; returns (status, parsed JSON or None)."""
        connection = http.client.HTTPConnection(*self.api, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
            return response.status, json.loads(data) if data else None
        finally:
            connection.close()

    def peak_rss_mb(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self):
        """User plus system time of the server so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.log.close()


def put(ticket, body):
    url = urllib.parse.urlsplit(ticket["url"])
    path = url.path + ("?" + url.query if url.query else "")
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        headers = dict(ticket.get("headers") or {})
        connection.request(ticket.get("method", "PUT"), path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status // 100 != 2:
            raise RuntimeError(f"PUT {ticket['key']} answered {response.status}")
    finally:
        connection.close()


def wait_until_done(server, keys, poll_s, deadline):
    """Polls the oldest unfinished upload until every one is done; returns the time
    (perf_counter) the last was seen done."""
    pending = list(keys)
    last_done = None
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} uploads still unfinished after the timeout")
        key = pending[0]
        status, view = server.request("GET", "/api/images/" + urllib.parse.quote(key, safe=""))
        state = view.get("status") if status == 200 and view else None
        if state == "done":
            if len(view.get("variants") or []) != 5:
                raise RuntimeError(f"{key} is done with {len(view.get('variants') or [])} variants")
            last_done = time.perf_counter()
            pending.pop(0)
            continue
        if state == "failed":
            raise RuntimeError(f"{key} failed: {view.get('reason')}")
        time.sleep(poll_s)
    return last_done


def run_pipeline(paths, scratch, put_concurrency, poll_s, log_path):
    """Returns (images per second, CPU ms per image, peak RSS in MB) of one pipeline
    run; the CPU time is the server's from the first PUT to the last image done."""
    server = Server(scratch, log_path)
    try:
        bodies = []
        tickets = []
        for path in paths:
            with open(path, "rb") as file:
                body = file.read()
            request = {
                "file_name": os.path.basename(path),
                "content_type": "image/jpeg",
                "size": len(body),
            }
            status, ticket = server.request(
                "POST",
                "/api/uploads",
                body=json.dumps(request).encode(),
                headers={"Content-Type": "application/json"},
            )
            if status != 201:
                raise RuntimeError(f"POST /api/uploads answered {status}: {ticket}")
            bodies.append(body)
            tickets.append(ticket)

        deadline = time.monotonic() + FINISH_TIMEOUT_S
        cpu_before = server.cpu_seconds()
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(put_concurrency) as pool:
            puts = [pool.submit(put, ticket, body) for ticket, body in zip(tickets, bodies)]
            keys = [ticket["key"] for ticket in tickets]
            # The upload ids sort newest first: the oldest upload is the last key.
            keys.sort(reverse=True)
            finished = wait_until_done(server, keys, poll_s, deadline)
            for future in puts:
                future.result()
        rate = len(paths) / (finished - start)
        cpu = (server.cpu_seconds() - cpu_before) * 1000 / len(paths)
        return rate, cpu, server.peak_rss_mb()
    finally:
        server.stop()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="a file in the bench images")
    parser.add_argument("--put-concurrency", type=int, default=6)
    parser.add_argument("--poll-ms", type=int, default=50)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--keep-logs", help="copy each round's server log into this folder")
    args = parser.parse_args(argv[1:])

    if not args.no_build:
        build()
    image = os.path.join(images_dir(), args.image)
    if not os.path.isfile(image):
        raise SystemExit(f"no bench image {image} (set PIXELATOR_BENCH_IMAGES)")

    scratch = tempfile.mkdtemp(prefix="pixelator-serve-bench-")
    rounds = []
    try:
        copies = os.path.join(scratch, "copies")
        paths = make_copies(image, args.count, copies)
        print(f"{args.count} copies of {args.image}; {args.rounds} rounds", file=sys.stderr)
        print(
            "| round | pixelate img/s | serve img/s | ratio | pixelate CPU ms/img "
            "| serve CPU ms/img | pixelate RSS MB | serve RSS MB |"
        )
        print("|--:|--:|--:|--:|--:|--:|--:|--:|")
        for index in range(args.rounds):
            round_dir = os.path.join(scratch, f"round-{index + 1}")
            os.makedirs(round_dir)
            log_path = os.path.join(round_dir, "serve.log")

            def command_line():
                return run_command_line(copies, os.path.join(round_dir, "out"), args.count)

            def pipeline():
                return run_pipeline(
                    paths, round_dir, args.put_concurrency, args.poll_ms / 1000, log_path
                )

            # Which goes first alternates, so a load that drifts favours neither.
            if index % 2 == 0:
                cli, serve = command_line(), pipeline()
            else:
                serve, cli = pipeline(), command_line()
            if args.keep_logs:
                os.makedirs(args.keep_logs, exist_ok=True)
                shutil.copy(log_path, os.path.join(args.keep_logs, f"serve-round-{index + 1}.log"))
            row = (cli[0], serve[0], serve[0] / cli[0], cli[1], serve[1], cli[2], serve[2])
            rounds.append(row)
            print(
                f"| {index + 1} | {row[0]:.2f} | {row[1]:.2f} | {row[2]:.3f} | {row[3]:.1f} "
                f"| {row[4]:.1f} | {row[5]:.0f} | {row[6]:.0f} |",
                flush=True,
            )
            shutil.rmtree(round_dir, ignore_errors=True)
        medians = [statistics.median(row[column] for row in rounds) for column in range(5)]
        print(
            f"| median | {medians[0]:.2f} | {medians[1]:.2f} | {medians[2]:.3f} "
            f"| {medians[3]:.1f} | {medians[4]:.1f} | {max(r[5] for r in rounds):.0f} (max) "
            f"| {max(r[6] for r in rounds):.0f} (max) |"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
