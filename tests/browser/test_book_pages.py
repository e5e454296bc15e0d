"""Every page of the built book, as a reader sees it, served offline in Chromium.

For each page in _toc.yml: no raw TeX outside rendered math, no raw pipe tables, no
bare ``True``/``False`` outputs, every image loaded, no console errors or failed
requests, no live-looking ipywidgets control in a page where no kernel runs, and every
slider and button in a cell's output changes what it shows. Screenshots of the pages
readers look at most are saved for CI's artifacts.

Run after ``make book`` (the full build, which CI makes); ``COURSE_BOOK_HTML`` names
another build.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_PAGES = {"day01", "day09", "day17", "day20", "day21"}
RAW_TEX = ("$$", "\\frac", "\\mathbf", "\\sum", "\\begin{", "\\left", "\\mathrm")
PIPE_ROW = re.compile(r"^\s*\|.*\|.*\|\s*$", re.M)  # a line of at least two cells: | a | b |


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


# The text a reader sees as prose and rendered outputs: rendered math, code and
# plain-text outputs (<pre>) and scripts are taken out first.
VISIBLE_TEXT_JS = """() => {
  const main = document.querySelector('main') || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll('mjx-container, pre, code, script, style, .MathJax, mjx-assistive-mml')
      .forEach(e => e.remove());
  document.body.appendChild(copy);  // innerText needs the element in the page
  copy.style.position = 'absolute'; copy.style.left = '-99999px';
  const text = copy.innerText;
  copy.remove();
  return text;
}"""

BARE_BOOL_JS = """() => Array.from(document.querySelectorAll('.cell_output .output'))
  .map(e => e.innerText.trim()).filter(t => t === 'True' || t === 'False').length"""

IMAGES_JS = """() => Array.from(document.querySelectorAll('main img'))
  .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"""

# ipywidgets controls rendered by the static widget manager: nothing runs them here.
LIVE_WIDGETS_JS = """() => Array.from(document.querySelectorAll(
    '.widget-slider, .widget-hslider, .widget-vslider, .widget-play, .widget-button, .widget-toggle-button, '
    + '.widget-dropdown, .widget-text, .widget-textarea, .widget-checkbox, .widget-radio, .widget-toggle-buttons'))
  .filter(e => !e.querySelector(':disabled') && !(e.matches('button') && e.disabled)
               && !e.classList.contains('mod-disabled') && e.offsetParent !== null)
  .map(e => e.className + ': ' + (e.innerText || '').trim().slice(0, 40))"""

# Native controls inside cell outputs (the kernel-free stand-ins), with the output they sit in.
CONTROLS_JS = """() => {
  const found = [];
  document.querySelectorAll('.cell_output input[type=range], .cell_output button, .cell_output select')
    .forEach((e, i) => { if (!e.disabled && e.offsetParent !== null) { e.setAttribute('data-test-control', i);
      found.push([String(i), e.tagName.toLowerCase(), e.getAttribute('data-role') || e.innerText || '']); } });
  return found;
}"""


def _output_of(page, ref: str) -> str:
    return page.evaluate(
        "ref => { const e = document.querySelector(`[data-test-control='${ref}']`);"
        " return (e.closest('.cell_output') || e.parentElement).innerHTML; }",
        ref,
    )


def _operate(page, ref: str, tag: str) -> None:
    control = page.locator(f"[data-test-control='{ref}']")
    control.scroll_into_view_if_needed()
    if tag == "input":
        at_max = page.evaluate(
            "ref => { const e = document.querySelector(`[data-test-control='${ref}']`);"
            " return Number(e.value) >= Number(e.max); }",
            ref,
        )
        control.focus()
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")  # fires 'input' like a drag
    elif tag == "select":
        options = control.locator("option").all_inner_texts()
        current = control.input_value()
        values = control.locator("option").evaluate_all("os => os.map(o => o.value)")
        other = next((v for v in values if v != current), None)
        assert other is not None, f"a drop-down with one option: {options}"
        control.select_option(other)
    else:
        control.click()
    page.wait_for_timeout(150)


@pytest.mark.parametrize("source", toc_pages())
def test_page_reads_right(source, new_page, serve, book_dir, screenshots):
    book = book_dir
    html_path = book / f"{source}.html"
    assert html_path.is_file(), f"{source} is in _toc.yml but {html_path} was not built"
    base = serve(book)
    page = new_page(base)
    p = page.page
    p.goto(f"{base}/{source}.html", wait_until="networkidle")
    p.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
    p.wait_for_timeout(500)  # the static widget manager renders after load
    problems: list[str] = []

    text = p.evaluate(VISIBLE_TEXT_JS)
    for tex in RAW_TEX:
        if tex in text:
            at = text.index(tex)
            problems.append(f"raw TeX {tex!r} in the text: ...{text[max(0, at - 60) : at + 60]!r}...")
    rows = PIPE_ROW.findall(text)
    if rows:
        problems.append(f"{len(rows)} raw pipe-table line(s), e.g. {rows[0].strip()[:100]!r}")
    if n := p.evaluate(BARE_BOOL_JS):
        problems.append(f"{n} bare True/False output(s)")
    if broken := p.evaluate(IMAGES_JS):
        problems.append(f"images not loaded: {broken}")
    if live := p.evaluate(LIVE_WIDGETS_JS):
        problems.append(f"ipywidgets controls that need a kernel: {live}")

    for ref, tag, label in p.evaluate(CONTROLS_JS):
        before = _output_of(p, ref)
        _operate(p, ref, tag)
        if _output_of(p, ref) == before:
            problems.append(f"the {tag} {label.strip()[:30]!r} changes nothing it shows")

    name = Path(source).name[:5]
    if name in SCREENSHOT_PAGES:
        p.screenshot(path=str(screenshots / f"page_{Path(source).name}.png"), full_page=True)
    if page.blocked:
        problems.append(f"the page tried to reach the network: {page.blocked}")
    if page.errors:
        problems.append(f"console errors: {page.errors}")
    assert not problems, f"{source}:\n- " + "\n- ".join(problems)
