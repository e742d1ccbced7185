"""A matplotlib figure shown in an ``ipywidgets.Output`` by setting its state, not by capturing messages.

``with out: display(fig)`` after ``out.clear_output(wait=True)`` routes the figure through the kernel's output
capture: it works in a live front end, but a notebook executed by papermill/nbclient (``battlab run``) can then wait
forever for a message of that capture (seen with the inline backend). Setting :attr:`Output.outputs` to the rendered
PNG sends the same picture as widget state: the same in JupyterLab, Voilà, papermill and plain-Python tests, with
any matplotlib backend.

Example
-------
>>> import ipywidgets as w, matplotlib
>>> matplotlib.use("Agg")
>>> import matplotlib.pyplot as plt
>>> out = w.Output()
>>> fig, ax = plt.subplots()
>>> show_figure(out, fig)
>>> [sorted(o["data"]) for o in out.outputs]
[['image/png', 'text/plain']]
"""

from __future__ import annotations

import base64
import io
from typing import Any

__all__ = ["show_figure"]


def show_figure(out: Any, fig: Any, *, close: bool = True) -> None:
    """Replace what ``out`` (an ``ipywidgets.Output``) shows with ``fig`` as a PNG; close the figure unless told not
    to."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    out.outputs = ({"output_type": "display_data",
                    "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                             "text/plain": repr(fig)},
                    "metadata": {}},)
    if close:
        plt.close(fig)
