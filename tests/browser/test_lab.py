"""Day 20 in a real JupyterLab: run every cell in headless Chromium, move the attention
explorer's head slider, and check that the rendered attention map changes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TOKEN = "course-browser-test"
NOTEBOOK = "day20_attention.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 with a fixed token, serving a copy of the day-20 notebook."""
    source = ROOT / "notebooks" / NOTEBOOK
    if not source.exists():
        pytest.skip(f"{NOTEBOOK} is not in this checkout")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(source, work / NOTEBOOK)  # JupyterLab saves as it goes; keep the repo's copy clean
    settings = tmp_path / "settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "apputils-extension").mkdir(parents=True)
    # Render every cell (no windowing), so the test can find outputs without scrolling,
    # and ask nothing about news (the test machine has no network).
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = _free_port()
    env = dict(os.environ, COURSE_FAST="1", OMP_NUM_THREADS="1")
    if env.get("COURSE_DATA_MIRROR"):
        env["COURSE_DATA_MIRROR"] = str(Path(env["COURSE_DATA_MIRROR"]).resolve())
    log = open(tmp_path / "lab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}",
         f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'ws'}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.allow_root=True"],  # fmt: skip
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


NOTEBOOK_PANEL = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
ERRORS_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const out = [];
  for (const cell of panel.content.widgets) {
    if (cell.model.type !== 'code') continue;
    for (const o of cell.model.outputs.toJSON()) if (o.output_type === 'error') out.push(o.ename + ': ' + o.evalue);
  }
  return out;
}"""
DONE_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  const code = panel.content.widgets.filter(c => c.model.type === 'code');
  return code.length > 0 && code.every(c => c.model.executionCount !== null);
}"""


def test_day20_head_slider_changes_the_attention_map(lab, new_page, screenshots):
    page = new_page(lab)
    p = page.page
    p.goto(f"{lab}/lab/tree/{NOTEBOOK}?token={TOKEN}", wait_until="domcontentloaded")
    p.wait_for_function(
        f"{NOTEBOOK_PANEL} && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.isReady",
        timeout=120_000,
    )
    p.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    p.wait_for_function(DONE_JS, timeout=300_000, polling=1000)
    assert p.evaluate(ERRORS_JS) == [], "a cell raised in JupyterLab"

    explorer = p.locator(".cl-attn").first
    explorer.scroll_into_view_if_needed()
    cells = explorer.locator("[data-w]")
    before = cells.evaluate_all("els => els.map(e => e.getAttribute('data-w'))")
    assert before, "the attention explorer rendered no heatmap"
    explorer.screenshot(path=str(screenshots / "lab_day20_head0.png"))

    head = explorer.locator(".widget-slider", has=p.locator("label", has_text="head")).first
    handle = head.locator(".noUi-handle").first
    handle.focus()
    p.keyboard.press("ArrowRight")  # move the head slider one step, as a person would
    p.wait_for_function(
        "([sel, old]) => { const els = document.querySelectorAll(sel);"
        " return els.length && Array.from(els).map(e => e.getAttribute('data-w')).join() !== old; }",
        arg=[".cl-attn [data-w]", ",".join(before)],
        timeout=60_000,
    )
    after = cells.evaluate_all("els => els.map(e => e.getAttribute('data-w'))")
    assert after != before
    explorer.screenshot(path=str(screenshots / "lab_day20_head1.png"))
