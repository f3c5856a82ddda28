"""Screenshots of a run's TensorBoard pages and of its Interactions page, for looking at what users see.

Starts a real TensorBoard server on 127.0.0.1 (a free port) over ``LOGDIR``, waits until it
answers, and renders each dashboard with headless Chromium (Debian's ``chromium``) into
``OUT/<prefix><page>.png``. Line charts need ``?forceSVG=true`` in headless mode, and the pages
need a long virtual-time budget to load their data. The page ``interactions`` is the package's
own TensorBoard tab; ``interactions_page`` is the same dashboard as one self-contained HTML file
(:func:`lightning_interactions.dashboard.write_page`), opened from disk.

Without ``LOGDIR`` (or ``--logdir``) the demo is run into a temporary folder (about 40 s); without
``OUT`` the two Interactions pages are saved as ``docs/images/dashboard_interactions.png`` and
``docs/images/dashboard_interactions_page.png``.

Usage::

    python scripts/dashboard_screenshots.py [LOGDIR OUT] [--logdir LOGDIR] [--pages timeseries ...]

Example (the demo's run)::

    ./run demo --out demo-run
    .venv/bin/python scripts/dashboard_screenshots.py demo-run demo-run/screenshots
    .venv/bin/python scripts/dashboard_screenshots.py  # the demo, into docs/images
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
    "interactions": "#interactions",
}
# Not a TensorBoard page: the dashboard written as one HTML file and opened from disk.
PAGE_FILE = "interactions_page"
ROOT = Path(__file__).resolve().parent.parent
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


def run_demo(folder: Path) -> Path:
    """Run the demo into ``folder``; its TensorBoard logs are under it."""
    command = [sys.executable, "-m", "lightning_interactions", "demo", "--out", str(folder)]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return folder


def page_file(logdir: Path, out: Path, size: str) -> Path:
    """Screenshot of the self-contained Interactions page of ``logdir``."""
    from lightning_interactions.dashboard import write_page

    with tempfile.TemporaryDirectory() as scratch:
        page = write_page(logdir, Path(scratch) / "report.html")
        screenshot(page.as_uri(), out, size, 8000)
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The arguments; without OUT, the Interactions pages go to docs/images as ``dashboard_<page>.png``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", type=Path, nargs="?", help="TensorBoard log dir (default: the demo's)")
    parser.add_argument("out", type=Path, nargs="?", help="folder for the PNGs (default: docs/images)")
    parser.add_argument("--logdir", type=Path, dest="logdir_option", help="the same as LOGDIR")
    choices = [*PAGES, PAGE_FILE]
    help_pages = "default: all, or without OUT the two Interactions pages"
    parser.add_argument("--pages", nargs="+", choices=sorted(choices), help=help_pages)
    parser.add_argument("--prefix", help='prefix of the PNG names (default "", without OUT "dashboard_")')
    parser.add_argument("--size", help="window size WIDTH,HEIGHT (default 1400,1000; without OUT 1400,1800)")
    parser.add_argument("--budget-ms", type=int, default=25000, help="virtual time budget per page")
    args = parser.parse_args(argv)
    args.logdir = args.logdir or args.logdir_option
    docs = args.out is None
    args.out = ROOT / "docs" / "images" if docs else args.out
    args.pages = args.pages or ([PAGE_FILE, "interactions"] if docs else choices)
    args.prefix = ("dashboard_" if docs else "") if args.prefix is None else args.prefix
    args.size = args.size or ("1400,1800" if docs else "1400,1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.logdir is None:
        with tempfile.TemporaryDirectory() as scratch:
            args.logdir = run_demo(Path(scratch) / "demo")
            return shoot(args)
    return shoot(args)


def shoot(args: argparse.Namespace) -> int:
    """Save the screenshots ``args`` asks for."""
    if PAGE_FILE in args.pages:
        print(page_file(args.logdir, args.out / f"{args.prefix}{PAGE_FILE}.png", args.size))
    pages = [page for page in args.pages if page in PAGES]
    if not pages:
        return 0
    port = free_port()
    server = subprocess.Popen(
        [*tensorboard_command(), "--logdir", str(args.logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/"
        wait_until_up(base)
        for page in pages:
            path = args.out / f"{args.prefix}{page}.png"
            screenshot(f"{base}?forceSVG=true{PAGES[page]}", path, args.size, args.budget_ms)
            print(path)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
