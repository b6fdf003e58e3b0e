"""Screenshots of TensorBoard's first screens for a run, taken with headless Chromium.

    python benchmarks/tensorboard_screenshots.py --logdir runs/logic --out benchmarks/results

Starts ``tensorboard`` on 127.0.0.1 (a free port), waits until it answers, takes one PNG per
dashboard (``default``: the plain address, what a user sees first, TIME SERIES; custom
scalars, scalars, histograms, hparams, text, timeseries) and always stops TensorBoard,
also on errors or Ctrl-C. Needs ``chromium`` (Debian: ``apt-get install chromium``).
A short run to look at (about a minute on 2 idle cores):

    rlad-pl fit --config configs/logic.yaml --trainer.max_steps 6 --trainer.val_check_interval 3 \\
        --data.init_args.val_size_per_subset 10 --model.init_args.sampling.max_new_tokens 64
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

#: ``default`` is the address without a dashboard (TensorBoard picks TIME SERIES)
DASHBOARDS = ("default", "custom_scalars", "scalars", "histograms", "hparams", "text",
              "timeseries")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tensorboard exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "data/environment", timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"tensorboard did not answer at {url} within {timeout:.0f} s")


def wait_for_runs(url: str, timeout: float = 180.0) -> None:
    """Until TensorBoard has loaded at least one run (it reads the logs in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "data/runs", timeout=10) as answer:
            if json.loads(answer.read() or b"[]"):
                return
        time.sleep(1)
    raise TimeoutError(f"tensorboard found no run under the logdir within {timeout:.0f} s")


def screenshot(browser: str, url: str, out: Path, size: str, wait_ms: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--user-data-dir={profile}",
                        f"--virtual-time-budget={wait_ms}", f"--window-size={size}",
                        f"--screenshot={out}", url],
                       check=True, capture_output=True, timeout=300)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--prefix", default="tensorboard")
    parser.add_argument("--dashboards", nargs="+", default=list(DASHBOARDS), choices=DASHBOARDS)
    parser.add_argument("--window-size", default="1400,1000")
    parser.add_argument("--wait-ms", type=int, default=15000, help="page render budget")
    args = parser.parse_args(argv)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")
    if browser is None:
        sys.exit("no chromium found (Debian: apt-get install chromium)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", args.logdir, "--host",
         "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_up(url, process)
        wait_for_runs(url)
        for board in args.dashboards:
            path = out / f"{args.prefix}_{board}.png"
            page = url if board == "default" else f"{url}#{board}"
            screenshot(browser, page, path, args.window_size, args.wait_ms)
            print(f"wrote {path}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
