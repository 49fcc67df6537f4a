"""The built site in a real browser: headless Chromium opens the catalogue and a method page.

Chromium is driven from the command line (``--dump-dom`` prints the DOM after the page's scripts ran,
``--screenshot`` saves a PNG, ``--window-size`` sets the viewport), so no Python browser driver is needed. The site is served by
``http.server`` on a free port of 127.0.0.1 and stopped in ``finally``. Screenshots go to
``test-output/`` (git-ignored). Debian: ``apt-get install -y chromium chromium-driver``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from specplug.registry import build_registry

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


pytestmark = pytest.mark.browser

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if chromium_binary() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium chromium-driver)")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def base_url(site):
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest output clean
        pass


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=5000", *extra, url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed on {url}:\n{proc.stderr[-2000:]}"
    return proc


class CatalogueRows(HTMLParser):
    """Rows of the catalogue table body: (hidden, text) for each."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[bool, str]] = []
        self.filter_bar = False
        self.count_text = ""
        self.layout: dict[str, str | None] = {}
        self._in_catalogue = 0
        self._depth = 0
        self._in_body = False
        self._row: list[str] | None = None
        self._hidden = False
        self._in_count = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "div" and "specplug-catalogue" in classes:
            self._in_catalogue = True
            self.layout = {k: attrs.get(f"data-{k}") for k in ("fits", "layout", "table-right", "view-right")}
        if "specplug-filter-bar" in classes:
            self.filter_bar = True
        if "specplug-filter-count" in classes:
            self._in_count = True
        if self._in_catalogue and tag == "tbody":
            self._in_body = True
        if self._in_body and tag == "tr":
            self._row, self._hidden = [], "hidden" in attrs

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        if tag == "tr" and self._row is not None:
            self.rows.append((self._hidden, " ".join(self._row)))
            self._row = None
        if tag == "span":
            self._in_count = False

    def handle_data(self, data):
        if self._row is not None:
            self._row.append(data.strip())
        if self._in_count:
            self.count_text += data


def parse_catalogue(html: str) -> CatalogueRows:
    parser = CatalogueRows()
    parser.feed(html)
    return parser


def test_catalogue_lists_every_card(base_url, tmp_path):
    cards = build_registry(load_entry_points=False).cards
    OUTPUT.mkdir(exist_ok=True)
    url = f"{base_url}/generated/catalogue/"
    dom = chromium(url, tmp_path, "--dump-dom").stdout
    page = parse_catalogue(dom)
    assert len(page.rows) == len(cards), f"{len(page.rows)} rows for {len(cards)} cards"
    for card_id in cards:
        assert any(f" {card_id} " in f" {text} " for _, text in page.rows), f"no row for {card_id}"
    # the filter script ran: it added its bar and counted the rows
    assert page.filter_bar, "the catalogue filter bar is missing: docs/javascripts/catalogue-filter.js did not run"
    assert page.count_text.strip() == f"{len(cards)} of {len(cards)} methods"


#: Viewports the catalogue must fit without sideways scrolling: a laptop screen and a phone.
VIEWPORTS = {"laptop": ("1400,900", "table"), "phone": ("390,844", "cards")}


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
def test_catalogue_shows_every_column_on_a_laptop_and_a_phone(base_url, tmp_path, device):
    """The filter script measures the laid-out table (data-fits, data-layout); the screenshot shows it."""
    size, layout = VIEWPORTS[device]
    url = f"{base_url}/generated/catalogue/"
    page = parse_catalogue(chromium(url, tmp_path, f"--window-size={size}", "--dump-dom").stdout)
    measured = page.layout
    assert measured.get("layout") == layout, f"{device}: layout {measured}"
    assert measured.get("fits") == "yes", (
        f"{device} ({size}): the table ends at x={measured.get('table-right')} but the visible area at "
        f"x={measured.get('view-right')}: a column is cut off"
    )
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / f"catalogue-{device}.png"
    chromium(url, tmp_path, f"--window-size={size}", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_catalogue_text_filter_hides_other_rows(base_url, tmp_path):
    dom = chromium(f"{base_url}/generated/catalogue/?q=eagle", tmp_path, "--dump-dom").stdout
    page = parse_catalogue(dom)
    shown = [text for hidden, text in page.rows if not hidden]
    assert 0 < len(shown) < len(page.rows)
    assert all("eagle" in text.lower() for text in shown)
    assert all("eagle" not in text.lower() for hidden, text in page.rows if hidden)


def test_method_page_renders_its_facets(base_url, tmp_path):
    registry = build_registry(load_entry_points=False)
    card = registry.cards["pld"] if "pld" in registry.cards else next(iter(registry.cards.values()))
    url = f"{base_url}/generated/catalogue/{card.id}/"
    dom = chromium(url, tmp_path, "--dump-dom").stdout
    assert re.search(rf"<h1[^>]*>{re.escape(card.name)}", dom), f"no heading {card.name!r}"
    facets = dom[dom.index("specplug-facets"):]
    facets = facets[: facets.index("</table>")]
    for facet in ("generation", "refinement", "acceptance", "training", "lossless"):
        assert f"<td>{facet}</td>" in facets, f"facet {facet} not rendered"
    assert card.refinement.value.replace("_", "-") in facets  # the link to the taxonomy node
    assert "How to run" in dom
    shot = OUTPUT / f"method-{card.id}.png"
    chromium(url, tmp_path, "--window-size=1400,1200", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
