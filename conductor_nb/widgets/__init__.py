"""The graph view in Jupyter: BlueprintView (anywidget), ``run.view()``, ``%%blueprint``.

Needs the jupyter extra (``pip install 'conductor-nb[jupyter]'``); the static
picture (:func:`conductor_nb.model.svg.render_svg`) does not.
"""

from __future__ import annotations

from conductor_nb._extras import require

require("anywidget", "jupyter", "the graph view")

from conductor_nb.widgets.edits import ConnectionRefused, HistoryError  # noqa: E402
from conductor_nb.widgets.view import (  # noqa: E402
    BlueprintView,
    view_run,
    widget_mimebundle,
)

__all__ = ["BlueprintView", "ConnectionRefused", "HistoryError", "view_run", "widget_mimebundle"]
