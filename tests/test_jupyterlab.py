"""JupyterLab, used as a person would: the real UI in the system's Chromium (Playwright drives it; no browser is
downloaded). The tour and one page of each chapter are opened with the smoke defaults of their parameters cell, run
from the Run menu, and then: no error output, every figure rendered, an ipywidgets progress bar shown during a long
step, and the "Python (dscore)" kernel offered. A screenshot of every notebook is kept in the test's tmp folder.

JupyterLab starts on 127.0.0.1 with a random port and token, with its own settings (autosave off, every cell in the
DOM) and workspace folders, and is stopped by its process id at the end, also on failure. The notebooks' sources are
unchanged afterwards (``git status notebooks/``). Skipped, saying so, without Chromium or Playwright.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dscore.book.doctor import find_chromium
from dscore.paths import repo_root

ROOT = repo_root()
CHROMIUM = find_chromium()
NOTEBOOKS = ["tour", "adq_texture", "dream_images"]
RUN_TIMEOUT = float(os.environ.get("DSCORE_LAB_TIMEOUT", "900"))

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (chromium) installed")]

# JupyterLab settings for the test: autosave off (the run must not write outputs into the sources), every cell kept
# in the DOM (so that prompts and outputs can be counted), no news or update checks (the machine may be offline)
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}

# the state of the open notebook: prompts still running, code cells, executed cells, error outputs, images
NOTEBOOK_STATE = r"""() => {
  const panel = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)");
  if (!panel) return null;
  const prompts = Array.from(panel.querySelectorAll(".jp-CodeCell .jp-InputPrompt")).map(p => p.textContent.trim());
  const imgs = Array.from(panel.querySelectorAll(".jp-OutputArea-output img"));
  return {
    code_cells: panel.querySelectorAll(".jp-CodeCell").length,
    running: prompts.filter(p => p.includes("*")).length,
    executed: prompts.filter(p => /\[\d+\]/.test(p)).length,
    errors: panel.querySelectorAll(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").length,
    error_text: Array.from(panel.querySelectorAll(
      ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")).map(e => e.textContent.slice(0, 300)),
    images: imgs.length,
    broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length,
    bars: panel.querySelectorAll(".jp-OutputArea-output .widget-hprogress, .jp-OutputArea-output .widget-progress, " +
                                 ".jp-OutputArea-output progress").length,
    kernel_status: (document.querySelector(".jp-Notebook-ExecutionIndicator") || {}).dataset?.status || "",
    raw_roles: panel.textContent.includes("{download}"),
  };
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git_status(path: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", str(path)], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def _shut_down_kernels(url: str, token: str) -> None:
    """End every session of the server (its kernel with it), without saving anything."""
    with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=30) as r:
        sessions = json.load(r)
    for sess in sessions:
        req = urllib.request.Request(f"{url}/api/sessions/{sess['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=60).close()


# the dialogs JupyterLab may open by itself: the one it asks a person to choose a kernel with, answered as a person
# would (its default, the notebook's own kernel); any other one (a kernel that died, a lost server) fails the test
DIALOG_STATE = r"""() => Array.from(document.querySelectorAll(".jp-Dialog")).map(d => ({
  title: (d.querySelector(".jp-Dialog-header") || {}).textContent || "",
  body: ((d.querySelector(".jp-Dialog-body") || {}).textContent || "").slice(0, 300),
}))"""
KERNEL_DIALOG_TITLES = ("Select Kernel", "Kernel Selection")


def _answer_dialogs(page, shot: Path) -> None:
    """Accept a kernel-selection dialog; fail, naming it, on any other dialog JupyterLab shows."""
    for dialog in page.evaluate(DIALOG_STATE):
        title = dialog["title"].strip()
        if not any(t in title for t in KERNEL_DIALOG_TITLES):
            page.screenshot(path=str(shot), full_page=True)
            pytest.fail(f"JupyterLab showed the dialog {title!r}: {dialog['body'].strip()!r}; screenshot {shot}")
        page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").first.click()
        page.wait_for_selector(".jp-Dialog", state="detached", timeout=30_000)


def _wait_for_kernel(page, url: str, token: str, path: str, shot: Path, timeout: float = 180.0) -> None:
    """Wait until the server has a session for ``path`` whose kernel is idle and the page shows it idle: a Run All
    sent to a kernel still starting is dropped, or opens JupyterLab's kernel dialog."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _answer_dialogs(page, shot)
        with urllib.request.urlopen(f"{url}/api/sessions?token={token}", timeout=30) as r:
            sessions = [s for s in json.load(r) if s.get("path", "").endswith(path)]
        shown = page.evaluate("() => (document.querySelector('.jp-Notebook-ExecutionIndicator') || {})"
                              ".dataset?.status || ''")
        if sessions and (sessions[0].get("kernel") or {}).get("execution_state") == "idle" and shown == "idle":
            return
        time.sleep(0.5)
    page.screenshot(path=str(shot), full_page=True)
    pytest.fail(f"no idle kernel for {path} after {timeout:.0f} s; screenshot {shot}")


def _shown_figures(name: str) -> bool:
    """Whether the notebook shows a figure (it calls plt.show or the library's image grid)."""
    source = (ROOT / "notebooks" / f"{name}.ipynb").read_text()
    return "plt.show()" in source or "image_grid" in source or "show_" in source


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on notebooks/ (its own settings, workspaces and artefact cache); yields (url, token)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    base = tmp_path_factory.mktemp("lab")
    settings = base / "settings"
    for rel, values in SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(base / "ws"),
           "DSCORE_CACHE": str(base / "cache"), "PYTHONUNBUFFERED": "1"}
    env.pop("DSCORE_PAGE_FILES", None)               # pages write <page>_files/ next to the notebook, as for a person
    env.pop("DSCORE_PROGRESS", None)                 # widget bars, as a person gets them
    log = open(base / "lab.log", "w")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT / 'notebooks'}",
           "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=ROOT / "notebooks", env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start (exit {proc.returncode}); log: {base / 'lab.log'}")
                time.sleep(0.5)
        yield url, token, base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def test_the_launcher_offers_the_dscore_kernel(lab, browser):
    url, token, base = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/lab?token={token}")
        page.wait_for_selector(".jp-LauncherCard", timeout=120_000)
        labels = page.locator(".jp-LauncherCard-label").all_text_contents()
        page.screenshot(path=str(base / "launcher.png"))
        assert any("Python (dscore)" in label for label in labels), \
            f"launcher offers {labels}; screenshot {base / 'launcher.png'}"
    finally:
        page.close()


def test_a_kernel_dialog_is_answered_and_any_other_fails(lab, browser):
    """The dialog helper itself: JupyterLab's kernel chooser (here opened from Kernel > Change Kernel…, as it opens
    by itself when Run All meets a notebook whose kernel is not there yet) is accepted; a restart question fails."""
    url, token, base = lab
    shot = base / "dialog.png"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{url}/lab/workspaces/dialog/tree/tour.ipynb?reset&token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=120_000)
        _wait_for_kernel(page, url, token, "tour.ipynb", shot)
        page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Kernel$")).first.click()
        page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(r"^Change Kernel")).first.click()
        page.wait_for_selector(".jp-Dialog", timeout=30_000)
        _answer_dialogs(page, shot)
        assert page.locator(".jp-Dialog").count() == 0
        page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Kernel$")).first.click()
        page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(r"^Restart Kernel…$")).first.click()
        page.wait_for_selector(".jp-Dialog", timeout=30_000)
        with pytest.raises(pytest.fail.Exception, match="Restart Kernel"):
            _answer_dialogs(page, shot)
    finally:
        page.close()
        _shut_down_kernels(url, token)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_run_all_cells_from_the_menu(lab, browser, name):
    url, token, base = lab
    before = _git_status(ROOT / "notebooks")
    files = ROOT / "notebooks" / f"{name}_files"          # what the page writes beside itself (git-ignored)
    files_existed = files.exists()
    shot = base / f"{name}.png"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        # a workspace of its own, reset: only this notebook is open (no tab restored from an earlier test)
        page.goto(f"{url}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=120_000)
        _wait_for_kernel(page, url, token, f"{name}.ipynb", shot)

        def run_all():
            _answer_dialogs(page, shot)
            page.locator(".lm-MenuBar-itemLabel").filter(has_text=re.compile(r"^Run$")).first.click()
            page.locator(".lm-Menu-itemLabel").filter(has_text=re.compile(r"^Run All Cells$")).first.click()

        run_all()
        bars_seen, state, settled, deadline = 0, None, False, time.monotonic() + RUN_TIMEOUT
        retry_at, retries = time.monotonic() + 20, 0
        time.sleep(1.0)
        while time.monotonic() < deadline:
            _answer_dialogs(page, shot)
            state = page.evaluate(NOTEBOOK_STATE)
            stalled = (state["running"] == 0 and state["errors"] == 0 and state["executed"] < state["code_cells"]
                       and state["kernel_status"] == "idle")
            if not stalled:
                retry_at = time.monotonic() + 20
            elif time.monotonic() > retry_at and retries < 3:
                # a kernel that was still starting dropped the queued cells: run them all again, as a person would
                run_all()
                retry_at, retries = time.monotonic() + 20, retries + 1
            bars_seen = max(bars_seen, state["bars"])
            done = state["running"] == 0 and state["kernel_status"] == "idle" and (
                state["executed"] == state["code_cells"] or state["errors"] > 0)
            if done and settled:                       # the same twice in a row: not a pause between two cells
                break
            settled = done
            time.sleep(0.5)
        page.screenshot(path=str(shot), full_page=True)
        assert state is not None and state["running"] == 0, f"{name} did not finish; screenshot {shot}"
        assert state["errors"] == 0, f"{name}: error outputs {state['error_text']}; screenshot {shot}"
        assert state["executed"] == state["code_cells"], f"{name}: {state}; screenshot {shot}"
        assert not state["raw_roles"], f"{name}: MyST roles shown raw (book-only markup); screenshot {shot}"
        assert state["broken_images"] == 0, f"{name}: {state['broken_images']} figures did not render; {shot}"
        if _shown_figures(name):
            assert state["images"] > 0, f"{name}: no figure rendered; screenshot {shot}"
        if name == "tour":
            assert bars_seen > 0, f"no ipywidgets progress bar rendered while the tour trained; screenshot {shot}"
            assert state["bars"] > 0, f"the tour's progress bars did not stay after the run; screenshot {shot}"
    finally:
        page.close()
        _shut_down_kernels(url, token)
        if not files_existed:
            shutil.rmtree(files, ignore_errors=True)
    assert _git_status(ROOT / "notebooks") == before, f"running {name} in JupyterLab changed notebooks/"
