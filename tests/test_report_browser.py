"""The HTML report in a real browser (headless Chromium): it renders, every image decodes, the
page fits a phone's width (only table boxes scroll), and nothing outside the file is requested.

Requests are caught two ways: Chromium runs behind a recording proxy with every host name
unresolvable, and a control page with an external image and stylesheet proves the proxy sees
what a page asks for. The page is rendered alone in an empty folder, so a relative link to a
local file would leave an image undecoded. The report has no script; to learn whether its
images decoded, a copy gets a small probe script (allowed by its hash, the CSP otherwise
unchanged) and Chromium prints the DOM after the load event.

No browser: skipped, or failed when LNEXP_REQUIRE_BROWSER=1 (.ci/run sets it and installs
Debian's chromium-headless-shell).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lnexp import report
from lnexp.report.html import png_size

pytestmark = pytest.mark.slow

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome",
            "chrome-headless-shell")
PROBE = """
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  const top = (el) => el ? el.getBoundingClientRect().top + window.scrollY : null;
  out.id = "lnexp-probe";
  out.textContent = JSON.stringify({
    images: Array.from(document.images, (img) => ({alt: img.alt, complete: img.complete,
      width: img.naturalWidth, height: img.naturalHeight,
      shown: img.getBoundingClientRect().width})),
    viewport: window.innerWidth, page: document.documentElement.scrollWidth,
    lead: top(document.querySelector(".lead")),
    headline: top(document.querySelector(".headline")),
    section: top(document.querySelector("section")),
    details: Array.from(document.querySelectorAll("details"), (d) => ({open: d.open,
      summary: d.querySelector("summary").textContent,
      table: d.querySelector("table") ? d.querySelector("table").checkVisibility() : null})),
    links: Array.from(document.querySelectorAll("a[href]"), (a) => a.getAttribute("href"))
      .filter((h) => !h.startsWith("#"))});
  document.body.appendChild(out);
});
""".strip()


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("LNEXP_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LNEXP_REQUIRE_BROWSER=1 but none of {', '.join(BROWSERS)} is on PATH "
                    f"(apt-get install chromium-headless-shell)")
    pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)")


class _Recorder(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(4096).decode("latin-1").strip()
        if line:
            self.server.requests.append(line)  # type: ignore[attr-defined]
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")


@pytest.fixture
def proxy() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def chromium(browser: str, proxy: _Recorder, url: Path, width: int, *args: str,
             fragment: str = "") -> str:
    """Run headless Chromium on a file (at `#fragment` if given) behind the recording proxy;
    returns stdout. Its whole process group is killed if it hangs."""
    port = proxy.server_address[1]
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-background-networking", "--disable-extensions",
           "--disable-component-update", "--disable-sync", "--metrics-recording-only",
           f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
           f"--window-size={width},2000",
           f"--user-data-dir={url.parent / 'profile'}", *args,
           url.as_uri() + (f"#{fragment}" if fragment else "")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # helpers (zygote, gpu) left behind, if any
    assert proc.returncode == 0, err[-2000:]
    return out


def with_probe(html: str) -> str:
    """The same page plus the probe script, allowed by its hash (the CSP is otherwise kept)."""
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    html = html.replace("default-src 'none';", f"default-src 'none'; script-src 'sha256-{digest}';")
    return html.replace("</body>", f"<script>{PROBE}</script>\n</body>")


def screenshot_stats(path: Path) -> tuple[float, int, float]:
    """(share of non-white pixels, distinct colours, share of strongly coloured pixels)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)
    non_white = float((rgb.min(axis=1) < 245).mean())
    coloured = float((rgb.max(axis=1) - rgb.min(axis=1) > 60).mean())
    colours = len(np.unique(rgb[:, 0] * 65536 + rgb[:, 1] * 256 + rgb[:, 2]))
    return non_white, colours, coloured


def test_control_page_requests_are_seen(proxy: _Recorder, tmp_path: Path) -> None:
    browser = _browser()
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><img src="http://lnexp-report-test.invalid/x.png">'
                    '<link rel="stylesheet" href="https://lnexp-report-test.invalid/y.css">')
    chromium(browser, proxy, page, 400, "--dump-dom", "--virtual-time-budget=2000")
    seen = " ".join(proxy.requests)
    assert "GET http://lnexp-report-test.invalid/x.png" in seen, proxy.requests
    assert "CONNECT lnexp-report-test.invalid:443" in seen, proxy.requests


def run_probe(browser: str, proxy: _Recorder, page: Path, width: int,
              fragment: str = "") -> dict[str, Any]:
    """The probe's JSON for a page carrying it (with_probe), after the load event."""
    dom = chromium(browser, proxy, page, width, "--dump-dom", "--virtual-time-budget=5000",
                   fragment=fragment)
    found = re.search(r'<pre id="lnexp-probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


@pytest.mark.parametrize("kind", ["run", "compare", "sweep", "inspect"])
def test_report_renders_offline_and_every_image_decodes(
        kind: str, folders: dict[str, Path], proxy: _Recorder,
        tmp_path: Path) -> None:
    browser = _browser()
    folder = folders[kind]
    html = report.to_html(report.read_folder(folder))
    # Alone in an empty folder: a relative link to the run folder's files would not load.
    page = tmp_path / "page" / "report.html"
    page.parent.mkdir()
    page.write_text(html, encoding="utf-8")

    shots = {}
    for width in (390, 1280):
        shot = tmp_path / f"{kind}-{width}.png"
        t0 = time.perf_counter()
        chromium(browser, proxy, page, width, f"--screenshot={shot}")
        shots[width] = time.perf_counter() - t0
        non_white, colours, coloured = screenshot_stats(shot)
        assert non_white > 0.05 and colours > 50, (width, non_white, colours)
        if kind == "run":  # the figures fill most of the first screens at 390 px
            assert coloured > 0.002, coloured

    probed = tmp_path / "page" / "probed.html"
    probed.write_text(with_probe(html), encoding="utf-8")
    for width in (390, 1280):
        probe = run_probe(browser, proxy, probed, width)
        expected = [png_size(f.path.read_bytes()) for f in report.read_folder(folder).figures()]
        assert all(i["complete"] for i in probe["images"]), probe
        assert [(i["width"], i["height"]) for i in probe["images"]] == expected, probe
        # Only table boxes scroll sideways; the page itself fits the window.
        assert probe["page"] <= probe["viewport"], (width, probe)
    assert proxy.requests == []
    print(f"{kind}: {len(html) / 1024:.0f} KiB, screenshot 390 px {shots[390]:.2f} s, "
          f"1280 px {shots[1280]:.2f} s")


@pytest.mark.parametrize("kind", ["run", "compare", "sweep", "inspect"])
def test_report_reads_as_a_story_in_the_browser(kind: str, folders: dict[str, Path],
                                                 proxy: _Recorder, tmp_path: Path) -> None:
    """Issue 24, in Chromium at 390 and 1280 px: the narrative (the config's claim, then the
    verdict) comes before any section; the links to the child pages (compare, sweep) resolve
    to pages of those folders; completed trials are folded, failed ones open; each figure,
    opened through its own anchor, shows at its natural size in a box that scrolls, while
    the page keeps the window's width."""
    browser = _browser()
    folder = tmp_path / kind
    shutil.copytree(folders[kind], folder)
    from lnexp.cli.report import write_pages

    page = write_pages(report.read_folder(folder), folder / "report.html")
    probed = folder / "probed.html"
    probed.write_text(with_probe(page.read_text(encoding="utf-8")), encoding="utf-8")
    figures = report.read_folder(folder).figures()
    for width in (390, 1280):
        shot = tmp_path / f"story-{kind}-{width}.png"
        chromium(browser, proxy, page, width, f"--screenshot={shot}")
        probe = run_probe(browser, proxy, probed, width)
        assert probe["lead"] < probe["headline"] < probe["section"], probe
        assert probe["page"] <= probe["viewport"], probe
        for img in probe["images"]:  # fitted to the width
            assert img["shown"] <= min(img["width"], probe["viewport"]), img
        links = probe["links"]
        assert len(links) == {"compare": 3, "sweep": 8}.get(kind, 0), links
        for link in links:
            child = (folder / link).resolve()
            assert child.is_file() and child.parent.parent == folder.resolve(), link
        details = {d["summary"].split(" (")[0]: d for d in probe["details"]}
        if kind == "sweep":
            assert details["2 failed"]["open"] and details["2 failed"]["table"]
            assert not details["6 completed"]["open"]
            assert details["6 completed"]["table"] is False  # folded: not shown
        if figures:
            anchor = "fig-" + figures[0].path.stem
            full = run_probe(browser, proxy, probed, width, fragment=anchor)
            first = full["images"][0]
            assert first["shown"] == first["width"], first  # full size
            assert full["page"] <= full["viewport"], full  # its box scrolls, not the page
    if links:  # a child page itself renders in the browser, offline
        shot = tmp_path / f"child-{kind}.png"
        chromium(browser, proxy, (folder / links[0]).resolve(), 390, f"--screenshot={shot}")
        assert screenshot_stats(shot)[0] > 0.05
    assert proxy.requests == []
