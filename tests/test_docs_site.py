"""The docs site in a real headless browser: Debian's Chromium driven by Playwright.

The site is built from this repository's skill (``fenceproof docs build``) and served on 127.0.0.1; every
request to anywhere else is aborted and recorded, and a test fails if the page tried one. The statuses shown
are those of the engine's last report (build/fenceproof/report.json), or "Not verified" when there is none.
A screenshot of a rule page is written to build/screenshots/rule-page.png for review.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import require_tool
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from fenceproof.corpus import load_corpus
from fenceproof.docs import build
from fenceproof.models import Document

ROOT = Path(__file__).resolve().parents[1]
SKILL = "skills/python-backend/"
CHROMIUM_HINT = "apt-get install -y chromium (Debian; never `playwright install`)"
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATUS_PREFIXES = ("Passed", "Proved", "Lint-only", "Skipped", "Checked", "Failed", "Not verified")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    site = build(ROOT)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_tool("chromium", CHROMIUM_HINT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, site_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    outside: list[str] = []

    def loopback_only(route: Route) -> None:
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", loopback_only)
    page = context.new_page()
    yield page
    context.close()
    assert not outside, f"the site requested addresses outside 127.0.0.1: {outside}"


@pytest.fixture(scope="module")
def rules() -> list[Document]:
    return load_corpus(ROOT).rules()


def url_of(doc: Document) -> str:
    return "/" + doc.rel.removeprefix(SKILL).removesuffix(".md") + "/"


def test_home_page_loads(page: Page, site_url: str) -> None:
    response = page.goto(site_url + "/", wait_until="networkidle")
    assert response is not None and response.ok
    assert urlparse(page.url).path == "/SKILL/"  # the site root opens the skill's index
    skill = (ROOT / SKILL / "SKILL.md").read_text("utf-8")
    heading = next(line[2:] for line in skill.splitlines() if line.startswith("# "))
    expect(page.locator("article h1")).to_have_text(re.compile("^" + re.escape(heading)))  # then a permalink


def test_navigation_lists_every_category_and_rule(page: Page, site_url: str, rules: list[Document]) -> None:
    page.goto(site_url + "/SKILL/", wait_until="networkidle")
    nav = page.locator("nav.md-nav--primary")
    labels = [
        " ".join(t.split())
        for t in nav.locator("label.md-nav__link[for^='__nav_']").all_inner_texts()  # section titles
    ]
    sections = load_corpus(ROOT).sections
    used = [s for s in sections if any(r.frontmatter["category"] == s.id for r in rules)]
    assert used, "the skill has no rules"
    positions = [labels.index(s.title) for s in used]  # ValueError names a missing category
    assert positions == sorted(positions), f"categories not in the order of _sections.md: {labels}"
    hrefs = {
        urlparse(h).path for h in nav.locator("a.md-nav__link").evaluate_all("els => els.map(e => e.href)")
    }
    missing = [r.rel for r in rules if url_of(r) not in hrefs]
    assert not missing, f"rules missing from the navigation: {missing}"


def test_search_for_an_error_finds_the_rule_that_explains_it(
    page: Page, site_url: str, rules: list[Document]
) -> None:
    explains = {url_of(r) for r in rules if any("MissingGreenlet" in str(e) for e in r.frontmatter["errors"])}
    assert "/rules/sqlalchemy-relationships/" in explains
    page.goto(site_url + "/SKILL/", wait_until="networkidle")
    page.locator("button.md-search__button").click()
    page.get_by_role("combobox", name="Search").press_sequentially("MissingGreenlet", delay=20)
    results = page.get_by_role("option")
    expect(results.first).to_be_visible()
    found = {urlparse(h).path for h in results.evaluate_all("els => els.map(e => e.href)")}
    assert explains <= found, f"search for MissingGreenlet found {sorted(found)}"


def test_rule_page_shows_badges_and_block_statuses(page: Page, site_url: str, rules: list[Document]) -> None:
    rule = next(r for r in rules if r.rel.endswith("/sqlalchemy-relationships.md"))
    page.goto(site_url + url_of(rule), wait_until="networkidle")
    fm = rule.frontmatter
    badges = page.locator("article .fp-badges")
    expect(badges.locator(".fp-impact")).to_have_text(f"Impact: {fm['impact']}")
    expect(badges.locator(".fp-impact")).to_be_visible()
    category = next(s.title for s in load_corpus(ROOT).sections if s.id == fm["category"])
    expect(badges.locator(".fp-category")).to_have_text(f"Category: {category}")
    expect(badges.locator(".fp-tag")).to_have_text([f"#{tag}" for tag in fm["tags"]])
    expect(badges.locator(".fp-status")).to_have_text(re.compile(r"^(Verified|Failing|Not verified)"))
    blocks = page.locator("article .fp-block > .filename")
    expect(blocks).to_have_count(len(rule.blocks))
    for label in blocks.all_inner_texts():
        assert label.startswith(STATUS_PREFIXES), f"a code block without a status: {label!r}"
    expect(page.locator('article .fp-block button[data-md-type="copy"]')).to_have_count(len(rule.blocks))
    shots = ROOT / "build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1800})  # badges and the first few blocks with statuses
    page.screenshot(path=str(shots / "rule-page.png"))
