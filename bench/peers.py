#!/usr/bin/env python3
"""Time `pixelator pixelate` against the classic Pillow program and the sharp program.

usage: bench/peers.py [--rounds N] [--only SUBSTRING ...] [--tools LIST]
                      [--setup] [--no-build] [--fidelity] [--keep DIR]

For every bench image (PIXELATOR_BENCH_IMAGES, default ../shared/bench-images
relative to the repository root) and every round, runs each tool once, in an order
that rotates from round to round so that no tool always runs first, and records
per run: wall time (start-up included), CPU time (user + system) and peak resident
memory of the process (getrusage of the child, through wait4), and the bytes of the
five variants it wrote. Then prints per image and tool the median wall and CPU
time, the largest peak RSS, the output sizes, and per image the median of the
per-round ratios of pixelator's wall time to each peer's.

The machine may be shared, so only medians are printed; decisions about code are
better made with instruction counts (valgrind --tool=callgrind).

--setup installs what the peers need into the tools cache (PIXELATOR_TOOLS,
default ~/.cache/pixelator-tools): a Python venv with Pillow and numpy from PyPI
(bench/pillow-venv) and sharp from npm (`npm ci` in a copy of the peers folder,
bench/sharp), skipping what is there.

--fidelity also checks pixelator's outputs of the last round: the grids against
the classic reference grids (the peers' compare_grids.py: max and mean difference
at block centres), and each lossy variant's PSNR against the exact render of its
grid, through the `fidelity` example of the backend.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (8, 16, 32, 48, 64)


def tools_dir():
    return os.environ.get(
        "PIXELATOR_TOOLS", os.path.join(os.path.expanduser("~"), ".cache", "pixelator-tools")
    )


def images_dir():
    return os.environ.get(
        "PIXELATOR_BENCH_IMAGES", os.path.join(ROOT, "..", "shared", "bench-images")
    )


def peers_dir():
    return os.path.join(os.path.dirname(images_dir().rstrip("/")), "peers")


def pillow_python():
    return os.path.join(tools_dir(), "bench", "pillow-venv", "bin", "python")


def sharp_dir():
    return os.path.join(tools_dir(), "bench", "sharp")


def setup():
    bench = os.path.join(tools_dir(), "bench")
    os.makedirs(bench, exist_ok=True)
    if not os.path.exists(pillow_python()):
        subprocess.run([sys.executable, "-m", "venv", os.path.dirname(os.path.dirname(pillow_python()))], check=True)
        subprocess.run([pillow_python(), "-m", "pip", "install", "-q", "pillow", "numpy"], check=True)
    if not os.path.isdir(os.path.join(sharp_dir(), "node_modules", "sharp")):
        os.makedirs(sharp_dir(), exist_ok=True)
        for name in ("package.json", "package-lock.json", "sharp_pixelate.js"):
            shutil.copy(os.path.join(peers_dir(), name), sharp_dir())
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=sharp_dir(), check=True)


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def build():
    subprocess.run(
        ["cargo", "build", "--release", "-p", "pixelator", "--bin", "pixelator"],
        cwd=ROOT,
        check=True,
    )


def commands(tool, image, outdir):
    if tool == "pixelator":
        binary = os.path.join(target_dir(), "release", "pixelator")
        return [binary, "pixelate", image, "--out", outdir]
    if tool == "pillow":
        return [pillow_python(), os.path.join(peers_dir(), "classic_pillow.py"), image, outdir]
    if tool == "sharp":
        return ["node", os.path.join(sharp_dir(), "sharp_pixelate.js"), image, outdir]
    raise ValueError(tool)


def run_once(tool, image, outdir):
    """Runs one tool on one image; returns (wall s, cpu s, peak RSS KB, bytes per size)."""
    command = commands(tool, image, outdir)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{tool} failed on {image}: {stderr.strip()}")
    sizes = {}
    for name in os.listdir(outdir):
        for n in SIZES:
            if name.startswith(f"pixelated-{n}x{n}-"):
                sizes[n] = os.path.getsize(os.path.join(outdir, name))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, sizes


def fidelity(outdir):
    print("\n## Fidelity of pixelator's last outputs\n")
    subprocess.run(
        [pillow_python(), os.path.join(peers_dir(), "compare_grids.py"), outdir], check=False
    )
    print()
    subprocess.run(
        [
            "cargo",
            "run",
            "--quiet",
            "--release",
            "-p",
            "pixelator",
            "--example",
            "fidelity",
            "--",
            images_dir(),
        ],
        cwd=ROOT,
        check=False,
    )


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=[], help="image name substrings")
    parser.add_argument("--tools", default="pixelator,pillow,sharp")
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--fidelity", action="store_true")
    parser.add_argument("--keep", help="keep pixelator's last outputs in this folder")
    args = parser.parse_args(argv[1:])

    if args.setup:
        setup()
    tools = args.tools.split(",")
    if "pixelator" in tools and not args.no_build:
        build()
    images = sorted(
        os.path.join(images_dir(), name)
        for name in os.listdir(images_dir())
        if not name.endswith(".md") and (not args.only or any(s in name for s in args.only))
    )

    scratch = tempfile.mkdtemp(prefix="pixelator-bench-")
    results = {}  # (image, tool) -> list of (wall, cpu, rss, sizes)
    try:
        for round_index in range(args.rounds):
            for image in images:
                order = tools[round_index % len(tools):] + tools[: round_index % len(tools)]
                for tool in order:
                    outdir = os.path.join(scratch, tool, os.path.basename(image))
                    shutil.rmtree(outdir, ignore_errors=True)
                    os.makedirs(outdir)
                    result = run_once(tool, image, outdir)
                    results.setdefault((image, tool), []).append(result)
            print(f"round {round_index + 1}/{args.rounds} done", file=sys.stderr)

        report(images, tools, results)
        if args.keep:
            for image in images:
                source = os.path.join(scratch, "pixelator", os.path.basename(image))
                if os.path.isdir(source):
                    shutil.copytree(source, args.keep, dirs_exist_ok=True)
        if args.fidelity and "pixelator" in tools:
            combined = os.path.join(scratch, "all-pixelator")
            for image in images:
                shutil.copytree(
                    os.path.join(scratch, "pixelator", os.path.basename(image)),
                    combined,
                    dirs_exist_ok=True,
                )
            fidelity(combined)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def report(images, tools, results):
    print("\n## Per tool (medians over rounds; RSS is the largest seen)\n")
    print(f"| image | tool | wall s | cpu s | peak RSS MB | output KB ({'/'.join(map(str, SIZES))}) | total KB |")
    print("|---|---|--:|--:|--:|---|--:|")
    for image in images:
        for tool in tools:
            runs = results.get((image, tool))
            if not runs:
                continue
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs) / 1024
            sizes = runs[-1][3]
            per_size = "/".join(f"{sizes.get(n, 0) / 1024:.0f}" for n in SIZES)
            total = sum(sizes.values()) / 1024
            print(
                f"| {os.path.basename(image)} | {tool} | {wall:.3f} | {cpu:.3f} | {rss:.0f} "
                f"| {per_size} | {total:.0f} |"
            )
    if "pixelator" not in tools:
        return
    peers = [tool for tool in tools if tool != "pixelator"]
    print("\n## pixelator's wall time over each peer's (median of per-round ratios)\n")
    print("| image | " + " | ".join(f"vs {peer}" for peer in peers) + " | output bytes vs " + " / ".join(peers) + " |")
    print("|---|" + "--:|" * len(peers) + "--:|")
    for image in images:
        ours = results[(image, "pixelator")]
        cells = []
        size_cells = []
        for peer in peers:
            theirs = results[(image, peer)]
            ratios = [a[0] / b[0] for a, b in zip(ours, theirs)]
            cells.append(f"{statistics.median(ratios):.3f}")
            size_cells.append(f"{sum(ours[-1][3].values()) / max(1, sum(theirs[-1][3].values())):.2f}")
        print(f"| {os.path.basename(image)} | " + " | ".join(cells) + " | " + " / ".join(size_cells) + " |")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
