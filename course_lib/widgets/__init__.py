"""Day 17: interactive widgets for the notebooks (ipywidgets), and a kernel-free attention view.

- :func:`bpe_merge_stepper` (day 17): a text tokenized with the first k BPE merges.
- :func:`attention_explorer` (day 20): attention maps by layer, head and query token.
- :func:`attention_explorer_html` (day 20): the same maps as self-contained HTML + JavaScript,
  which keeps working in the built book, where no kernel runs.
- :func:`sampling_playground` (day 21): temperature, top-k and top-p on the next-token bars.
- :class:`TrainingMonitor` (day 21): a live loss chart and a stop button for ``Trainer.fit()``.

The stepper, the explorer and the playground need a kernel. Each also carries a static
stand-in (:class:`StaticFallback`: ``text/html`` beside the widget view in the output),
which the built book shows: the stepper and the explorer precomputed so that their
sliders work in the page, the playground as it opens.

Nothing else in course_lib imports this package, so course_lib works without ipywidgets.
"""

try:
    import ipywidgets  # noqa: F401
except ImportError as err:
    raise ImportError(
        "course_lib.widgets needs ipywidgets: run `pip install ipywidgets` (then restart the kernel)"
    ) from err

from course_lib.widgets.attention import AttentionExplorer, attention_explorer
from course_lib.widgets.attention_html import AttentionHTML, attention_explorer_html, attention_maps
from course_lib.widgets.bpe import (
    BPEMergeStepper,
    bpe_merge_stepper,
    encode_with_merges,
    merge_ranks,
    merge_states,
    stepper_html,
)
from course_lib.widgets.monitor import TrainingMonitor, loss_chart_svg
from course_lib.widgets.sampling import SamplingPlayground, sampling_playground
from course_lib.widgets.static import StaticFallback

__all__ = [
    "AttentionExplorer", "AttentionHTML", "BPEMergeStepper", "SamplingPlayground", "StaticFallback",
    "TrainingMonitor", "attention_explorer", "attention_explorer_html", "attention_maps", "bpe_merge_stepper",
    "encode_with_merges", "loss_chart_svg", "merge_ranks", "merge_states", "sampling_playground", "stepper_html",
]  # fmt: skip
