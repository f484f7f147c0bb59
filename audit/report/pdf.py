"""The report's PDF: the HTML printed by headless Chromium (Debian's /usr/bin/chromium,
installed by scripts/install-browser.sh), so the PDF is exactly what a browser shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ExportError

__all__ = ["find_browser", "print_pdf"]

BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
TIMEOUT = 300  # seconds: a report of a long period is a long page


def find_browser() -> Path | None:
    """The headless browser to print with: ``CLEARANCE_CHROMIUM`` or the first one found."""
    for name in (os.environ.get("CLEARANCE_CHROMIUM"), *BROWSERS):
        if name and (found := shutil.which(name)):
            return Path(found)
    return None


def print_pdf(html: Path, pdf: Path, *, browser: Path | None = None) -> None:
    """Print ``html`` to ``pdf`` (A4, no header or footer); :class:`ExportError` if it fails."""
    browser = browser or find_browser()
    if browser is None:
        raise ExportError("no headless Chromium to print the PDF with: run scripts/install-browser.sh "
                          "(or set CLEARANCE_CHROMIUM), or pass --no-pdf")
    with tempfile.TemporaryDirectory(prefix="clearance-chromium-") as profile:
        # A throw-away profile, no network: the HTML is self-contained.
        args = [str(browser), "--headless", "--disable-gpu", "--no-first-run", "--disable-sync",
                "--disable-background-networking", "--disable-component-update", "--disable-extensions",
                f"--user-data-dir={profile}", "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
                f"--print-to-pdf={pdf.resolve()}", html.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to start its sandbox as root
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExportError(f"printing the PDF with {browser} failed: {exc}") from exc
    if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise ExportError(f"printing the PDF with {browser} failed (exit {done.returncode}): {' '.join(tail)}")
