"""Day 17: a static stand-in beside each live widget, for pages where no kernel runs.

A widget's output carries a live view that needs a running Python kernel; in the built
book there is none, so its sliders would move and change nothing. A class that mixes in
:class:`StaticFallback` adds a second view to the same output::

    application/vnd.jupyter.widget-view+json   the live widget (JupyterLab, a kernel runs)
    text/html                                  static_html(): self-contained HTML (the book)

JupyterLab ranks its widget renderer above text/html and shows the widget. The book's
``_config.yml`` (``nb_mime_priority_overrides: [["html", "text/html", 5]]``) ranks
text/html above the widget view (priority 10), so the page shows the stand-in.
"""

from __future__ import annotations

from typing import Any

FULL_LABEL = {"description_width": "initial"}  # ipywidgets style: the label gets the width it needs


class StaticFallback:
    """Mixin for an ipywidgets class: its display bundle also holds ``static_html()`` as text/html.

    Put it first among the bases (``class MyWidget(StaticFallback, widgets.VBox)``) so
    that its ``_repr_mimebundle_`` wraps the widget's own.
    """

    def static_html(self) -> str:
        """What a page without a kernel shows instead of the live widget."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        """The widget's bundle (text/plain and the widget view) plus text/html.

        IPython calls this with ``include`` and ``exclude`` (sets of mime types, or None);
        the HTML is only built when text/html is wanted.
        """
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, None)
        include, exclude = kwargs.get("include"), kwargs.get("exclude")
        if (not include or "text/html" in include) and not (exclude and "text/html" in exclude):
            data = {**data, "text/html": self.static_html()}
        return data if metadata is None else (data, metadata)
