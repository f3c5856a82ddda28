"""Screenshots of a run's TensorBoard pages, for looking at what users see.

Starts a real TensorBoard server on 127.0.0.1 (a free port) over ``LOGDIR``, waits until it
answers, and renders each dashboard with headless Chromium (Debian's ``chromium``) into
``OUT/<page>.png``. Line charts need ``?forceSVG=true`` in headless mode, and the pages need a
long virtual-time budget to load their data.

Usage::

    python scripts/dashboard_screenshots.py LOGDIR OUT [--pages timeseries custom_scalars ...]

Example (the demo's run)::

    ./run demo --out demo-run
    .venv/bin/python scripts/dashboard_screenshots.py demo-run demo-run/screenshots
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PAGES = {
    "timeseries": "#timeseries",
    "custom_scalars": "#custom_scalars",
    "images": "#images",
    "text": "#text",
    "hparams": "#hparams",
}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tensorboard_command() -> list[str]:
    beside = Path(sys.executable).with_name("tensorboard")
    found = str(beside) if beside.exists() else shutil.which("tensorboard")
    if found is None:
        raise SystemExit("tensorboard is not installed in this environment")
    return [found]


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "data/runs", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"TensorBoard did not answer at {url} within {timeout:.0f} s")


def screenshot(url: str, path: Path, size: str, budget_ms: int) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                f"--virtual-time-budget={budget_ms}",
                f"--screenshot={path}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", type=Path, help="TensorBoard log directory (e.g. the demo's --out)")
    parser.add_argument("out", type=Path, help="directory for the PNG screenshots (created)")
    parser.add_argument("--pages", nargs="+", choices=sorted(PAGES), default=list(PAGES))
    parser.add_argument("--size", default="1400,1000", help="window size WIDTH,HEIGHT (default 1400,1000)")
    parser.add_argument("--budget-ms", type=int, default=25000, help="virtual time budget per page")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = subprocess.Popen(
        [*tensorboard_command(), "--logdir", str(args.logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_until_up(base)
        for page in args.pages:
            path = args.out / f"{page}.png"
            screenshot(f"{base}?forceSVG=true{PAGES[page]}", path, args.size, args.budget_ms)
            print(path)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
