"""Small fixes to the built pages of the course book.

sphinx-thebe registers its inline configuration script once per read of the sources,
so a page could declare ``THEBE_JS_URL`` twice and the browser logs an error. Each
page's scripts are made unique here, keeping their order. The theme also logs an error
on a reader's first visit when no colour mode is set; the default is "auto".
"""

from __future__ import annotations

from typing import Any


def _tidy_page(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if not context.get("default_mode"):
        context["default_mode"] = "auto"  # light or dark, following the reader's system
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (str(getattr(script, "filename", script) or ""), str(attributes.get("body", "")))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: later handlers add page-specific scripts to this list


def setup(app: Any) -> dict[str, Any]:
    # Late, after the theme and extensions have added their page scripts.
    app.connect("html-page-context", _tidy_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
