"""The built book in a real browser, with the network cut off: math renders, figures load,
the kernel-free attention explorer switches head, and the console stays clean."""

from __future__ import annotations

from pathlib import Path

import pytest



def _open(new_page, serve, book_dir: Path, page_path: str):
    base = serve(book_dir)
    page = new_page(base)
    page.page.goto(f"{base}/{page_path}", wait_until="networkidle")
    page.page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=30_000)
    return page


def test_day01_page_renders_offline(new_page, serve, book_dir, screenshots):
    page = _open(new_page, serve, book_dir, "notebooks/day01_tensors_and_neurons.html")
    images = page.page.evaluate(
        "Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.src])"
    )
    assert images and all(ok for ok, _ in images), images
    page.page.screenshot(path=str(screenshots / "book_day01.png"))
    assert page.blocked == [], f"the page tried to reach the network: {page.blocked}"
    assert page.errors == [], page.errors


def test_day20_kernel_free_explorer_switches_head(new_page, serve, book_dir, screenshots):
    page = _open(new_page, serve, book_dir, "notebooks/day20_attention.html")
    p = page.page
    explorer = p.locator(".attn-explorer").first
    explorer.scroll_into_view_if_needed()
    cells = explorer.locator("[data-w]")
    before = cells.evaluate_all("els => els.map(e => e.getAttribute('data-w'))")
    assert before, "the explorer shows no heatmap cells"
    p.screenshot(path=str(screenshots / "book_day20_head0.png"))
    head = explorer.locator("input[data-role='head']")
    assert int(head.get_attribute("max")) >= 1, "the model needs at least two heads"
    head.focus()
    p.keyboard.press("ArrowRight")  # a real key press moves the range input and fires 'input'
    p.wait_for_timeout(300)
    after = cells.evaluate_all("els => els.map(e => e.getAttribute('data-w'))")
    assert head.input_value() == "1"
    assert after != before, "moving the head slider did not change the heatmap"
    explorer.screenshot(path=str(screenshots / "book_day20_head1.png"))
    assert page.blocked == [], f"the page tried to reach the network: {page.blocked}"
    assert page.errors == [], page.errors
