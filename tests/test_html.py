"""The published HTML, seen in a browser: every page of the smoke book (the build of tests/test_book_smoke.py)
is loaded in headless Chromium, which renders it; then per page: no error output and no "Traceback", every
image has loaded and decoded (in the browser, and its file with PIL), every glued value is filled in, no
script raised an exception; and the navigation of the index page lists every page of ``_toc.yml``.

Skipped, saying so, when no Chromium binary is installed (``.ci/run`` installs Debian's ``chromium`` as
root). The browser is offline (every host name resolves to nothing), as a reader's copy of the book may be.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest
import yaml
from PIL import Image

from dscore.book.doctor import CHROMIUM_NAMES, find_chromium

CHROMIUM = find_chromium()

pytestmark = [pytest.mark.book, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary on the PATH (tried "
                                 f"{', '.join(CHROMIUM_NAMES)}; `apt-get install chromium` or set DSCORE_CHROMIUM)")]

# What a page looks like to a reader, read from the rendered DOM.
PAGE_STATE = r"""(() => {
  const img = Array.from(document.images).map(i => ({src: i.currentSrc || i.src, complete: i.complete,
                                                     width: i.naturalWidth, height: i.naturalHeight,
                                                     shown: i.getBoundingClientRect().width}));
  const cut = Array.from(document.querySelectorAll("td, th")).map(c => c.textContent.trim())
                   .filter(t => t.endsWith("...") || t.endsWith("…"));
  const nav = Array.from(document.querySelectorAll("nav.bd-docs-nav a[href]")).map(a => a.href);
  const errors = document.querySelectorAll(".cell_output .output.traceback, .cell_output .output.error, " +
                                           ".cell_output .output.stderr, div.output_error").length;
  return {href: location.href, ready: document.readyState, title: document.title,
          text: document.body ? document.body.textContent : "", images: img, nav: nav, error_outputs: errors,
          pasted: document.querySelectorAll("[class^='pasted-'], [class*=' pasted-']").length, cut: cut,
          page_width: document.documentElement ? document.documentElement.scrollWidth : 0};
})()"""

# after MathJax has finished (its startup promise): formulas on the page, formulas MathJax typeset, and whether any
# TeX delimiter is left in the visible text
MATH_STATE = r"""(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const text = document.body ? document.body.innerText : "";
  return {formulas: document.querySelectorAll(".math").length,
          typeset: document.querySelectorAll(".math mjx-container").length,
          raw: ["\\(", "\\[", "$$"].filter(d => text.includes(d))};
})()"""


class Chromium:
    """Headless Chromium driven over the DevTools protocol (one browser for all pages)."""

    def __init__(self, binary: str, profile_dir: Path, timeout: float = 180.0):
        import websocket       # websocket-client, a dependency of the Jupyter stack

        self.timeout = timeout
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--window-size=1280,1000", "--hide-scrollbars",
             "--disable-extensions", "--remote-debugging-port=0", "--remote-allow-origins=*",
             f"--user-data-dir={profile_dir}", "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{binary} did not start its DevTools endpoint (exit {self.proc.returncode})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.call(method)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        seen = len(self.events)
        while time.monotonic() < deadline:
            for msg in self.events[seen:]:
                if msg.get("method") == event:
                    return msg
            seen = len(self.events)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(f"no {event} within {self.timeout} s")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating the page state failed: {result['exceptionDetails']}")
        return result["result"]["value"]

    def load(self, url: str) -> dict:
        """Open ``url``, wait for its load event (and any redirect), return the page state and what went wrong."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                state = self.evaluate(PAGE_STATE)
            except RuntimeError as exc:    # an evaluation that meets index.html's redirect: ask again
                if "navigated or closed" not in str(exc):
                    raise
                state = None
            if state is not None and state["ready"] == "complete" and not state["href"].endswith("/index.html"):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            time.sleep(0.1)
        math = self.call("Runtime.evaluate", expression=MATH_STATE, awaitPromise=True, returnByValue=True)
        state["math"] = math.get("result", {}).get("value")
        state["requests"] = sorted({m["params"]["request"]["url"] for m in self.events
                                    if m.get("method") == "Network.requestWillBeSent"})
        state["exceptions"] = [m["params"]["exceptionDetails"] for m in self.events
                               if m.get("method") == "Runtime.exceptionThrown"]
        state["console_errors"] = [m["params"]["entry"] for m in self.events if m.get("method") == "Log.entryAdded"
                                   and m["params"]["entry"].get("level") == "error"]
        return state

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=60)


def toc_pages(root: Path) -> list[str]:
    """The documents of ``_toc.yml`` (root first), as paths without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                pages.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return pages


KNOWN_UPSTREAM = "Identifier 'THEBE_JS_URL' has already been declared"
GLUE_REF = re.compile(r"\{glue(?::\w+)?\}`|```\{glue(?::\w+)?\}|:::\{glue(?::\w+)?\}")


def glue_references(root: Path, page: str) -> int:
    """How many glue roles/directives the page's source holds (Markdown files and notebook Markdown cells)."""
    md = root / f"{page}.md"
    if md.exists():
        return len(GLUE_REF.findall(md.read_text()))
    nb = nbformat.read(root / f"{page}.ipynb", as_version=4)
    return sum(len(GLUE_REF.findall(c.source)) for c in nb.cells if c.cell_type == "markdown")


def shown_figures(root: Path, page: str) -> int:
    """Figures a notebook page shows: image outputs of cells whose output is not removed by a tag."""
    path = root / f"{page}.ipynb"
    if not path.exists():
        return 0
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code"
               and not {"remove-cell", "remove-output"} & set(c.metadata.get("tags", []))
               for o in c.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {})))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every page of the smoke book as Chromium rendered it: ``(root, {page: state}, index state)``."""
    from test_book_smoke import smoke_book

    built = smoke_book(tmp_path_factory)
    root = built["root"]
    html = root / "_build" / "html"
    browser = Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium"))
    try:
        index = browser.load((html / "index.html").as_uri())
        states = {page: browser.load((html / f"{page}.html").as_uri()) for page in toc_pages(root)}
    finally:
        browser.close()
    return root, states, index


def test_every_page_renders_without_errors_or_tracebacks(rendered):
    root, states, _ = rendered
    for page, state in states.items():
        assert state["href"].endswith(f"{page}.html"), (page, state["href"])
        assert state["text"].strip() and state["title"], page
        assert state["error_outputs"] == 0, f"{page}: {state['error_outputs']} error outputs"
        assert "Traceback" not in state["text"], page
        # scripts of the book itself raised nothing (resources from other hosts are offline here), but for
        # one known defect of the pinned Sphinx extensions: sphinx-thebe's inline configuration script is
        # emitted twice into every page, and the second `const THEBE_JS_URL` is a SyntaxError (harmless:
        # the first one ran, and the book has no live-code button)
        local = [e for e in state["exceptions"] if not str(e.get("url", "file:")).startswith("http")
                 and KNOWN_UPSTREAM not in json.dumps(e)]
        assert local == [], f"{page}: {local}"
        console = [e for e in state["console_errors"] if e.get("source") != "network"
                   and not str(e.get("url", "")).startswith("http")]
        assert console == [], f"{page}: {console}"


def test_pages_a_reader_can_take_in(rendered):
    """At 1280 px: a figure made wider than 900 px (a multi-panel figure) is shown at 900 px or more, no table cell is
    cut short, the page does not overflow sideways, and every executed page states what it ran (its banner)."""
    root, states, _ = rendered
    for page, state in states.items():
        for img in state["images"]:
            if img["src"].startswith("file:") and img["width"] >= 900:
                assert img["shown"] >= 899, f"{page}: a {img['width']} px figure is shown at {img['shown']:.0f} px"
        assert state["cut"] == [], f"{page}: table cells cut short: {state['cut'][:3]}"
        assert state["page_width"] <= 1280, f"{page} is {state['page_width']} px wide"
        if page.startswith("book/nb/") and (root / f"{page}.ipynb").exists():
            assert "Run: profile" in state["text"], f"{page} has no run banner"


def test_every_formula_is_typeset_offline(rendered):
    """MathJax comes with the book: with every host unreachable, each formula is typeset and no TeX is left raw."""
    _, states, _ = rendered
    total = 0
    for page, state in states.items():
        math = state["math"]
        assert math["raw"] == [], f"{page}: raw TeX delimiters {math['raw']} in the text"
        assert math["typeset"] == math["formulas"], f"{page}: {math['typeset']} of {math['formulas']} formulas typeset"
        total += math["formulas"]
    assert total > 0


def test_no_page_requests_anything_outside_the_book(rendered):
    root, states, _ = rendered
    html = (root / "_build" / "html").resolve()
    for page, state in states.items():
        outside = [u for u in state["requests"] if not u.startswith(("data:", "blob:", "about:"))
                   and not (u.startswith("file:") and html in Path(unquote(urlparse(u).path)).resolve().parents)]
        assert outside == [], f"{page} requests {outside}"


def test_every_image_decodes_with_a_non_zero_size(rendered):
    root, states, _ = rendered
    html = root / "_build" / "html"
    total = 0
    for page, state in states.items():
        local = [i for i in state["images"] if i["src"].startswith("file:")]
        for img in local:
            assert img["complete"] and img["width"] > 0 and img["height"] > 0, f"{page}: {img}"
            path = Path(unquote(urlparse(img["src"]).path))
            assert path.is_file() and html in path.parents, f"{page}: {img['src']}"
            with Image.open(path) as im:
                im.load()
                assert im.width > 0 and im.height > 0, f"{page}: {path}"
        # every figure of the executed notebook is on the page
        assert len(local) >= shown_figures(root, page), page
        total += len(local)
    assert total > 0


def test_every_glued_value_resolves(rendered):
    root, states, _ = rendered
    for page, state in states.items():
        assert not GLUE_REF.search(state["text"]) and "glue:" not in state["text"], page
        assert state["pasted"] >= glue_references(root, page), f"{page}: {state['pasted']} values pasted"
    assert sum(state["pasted"] for state in states.values()) > 0


def test_the_navigation_lists_every_page_of_the_toc(rendered):
    root, _, index = rendered
    html = root / "_build" / "html"
    assert index["href"].endswith("/" + toc_pages(root)[0] + ".html")     # index.html leads to the root page
    linked = {Path(unquote(urlparse(href).path)).resolve() for href in index["nav"] if href.startswith("file:")}
    missing = [page for page in toc_pages(root)[1:] if (html / f"{page}.html").resolve() not in linked]
    assert missing == []
