"""The console's page weight: each main page with the CSS and scripts it loads, uncompressed and gzip-compressed,
within the budget that docs/console.md states (read from there, so the guide and the test cannot disagree).

Weighed as a signed-in officer's first visit (nothing cached), on the synthetic data the browser tests made; the
queue as a full page of hits (its rows measured, the page filled up to its page size with the largest of them).
"""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from services.console.pages.hits import PAGE_SIZE
from tests.browser.consolekit import sign_in

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "console.md"
# The console's main pages, as a member admin sees them ({hit}: a hit of the member's queue).
MAIN_PAGES = ["/sign-in", "/hits", "/hits/{hit}", "/lists", "/rules", "/oversight", "/officers"]


def budget() -> tuple[int, int]:
    """(uncompressed, gzip) bytes of the heaviest page, from the guide's line "Page-weight budget: N KB ... M KB"."""
    found = re.search(r"Page-weight budget: \*\*(\d+) KB\*\* uncompressed, \*\*(\d+) KB\*\* gzip", GUIDE.read_text())
    assert found, f"{GUIDE} states no page-weight budget"
    return int(found.group(1)) * 1024, int(found.group(2)) * 1024


class Assets(HTMLParser):
    """The scripts and style sheets a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "link" and "stylesheet" in (a.get("rel") or "").split() and a.get("href"):
            self.urls.append(a["href"])


def full_queue(html: bytes) -> bytes:
    """The queue page as if it held a full page of hits: its largest row repeated up to PAGE_SIZE rows."""
    rows = re.findall(rb'<tr id="hit-.*?</tr>', html, flags=re.S)
    assert rows, "the queue shows no hit to measure"
    largest = max(rows, key=len)
    end = html.index(rows[-1]) + len(rows[-1])
    return html[:end] + b"\n" + b"\n".join([largest] * (PAGE_SIZE - len(rows))) + html[end:]


def weigh(request, path: str) -> tuple[int, int, list[str]]:
    """(bytes, gzip bytes, assets) of a page and everything it loads, each part compressed on its own as a server
    compressing its answers would send it."""
    answer = request.get(path, max_redirects=0)
    assert answer.status == 200, f"{path}: {answer.status}"
    parts = [full_queue(answer.body()) if path == "/hits" else answer.body()]
    parser = Assets()
    parser.feed(parts[0].decode())
    for url in parser.urls:
        assert url.startswith("/static/"), f"{path} loads {url}: not from the console itself"
        asset = request.get(url)
        assert asset.status == 200, f"{url}: {asset.status}"
        parts.append(asset.body())
    return sum(map(len, parts)), sum(len(gzip.compress(p, compresslevel=6)) for p in parts), parser.urls


def test_every_main_page_is_within_the_page_weight_budget(open_page, fiji_hits):
    limit, limit_gzip = budget()
    anonymous = open_page()
    weights = {"/sign-in": weigh(anonymous.request, "/sign-in")}
    page = open_page()
    sign_in(page, "FJI", "litia", next_path="/officers")
    for path in MAIN_PAGES[1:]:
        weights[path] = weigh(page.request, path.format(hit=fiji_hits[0]))
    report = ", ".join(f"{p} {w // 1024} KB ({z // 1024} KB gzip)" for p, (w, z, _) in weights.items())
    print(f"page weights: {report}")  # shown with pytest -s or -rP
    heaviest = max(w for w, _, _ in weights.values())
    heaviest_gzip = max(z for _, z, _ in weights.values())
    assert heaviest <= limit, f"over {limit // 1024} KB: {report}"
    assert heaviest_gzip <= limit_gzip, f"over {limit_gzip // 1024} KB gzip: {report}"
    # Every page loads the console's own few files, and nothing else.
    assert all(len(assets) <= 4 for _, _, assets in weights.values()), weights
