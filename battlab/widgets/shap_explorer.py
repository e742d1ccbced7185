"""``ShapExplorer``: pick a feature or descriptor family to see its dependence plot, a sample to see its waterfall.

Built from an :class:`~battlab.explain.Explanation` or from the folder one was saved in, so an app shows
saved SHAP values without the model or any recomputation.

Example
-------
>>> from battlab.widgets.shap_explorer import ShapExplorer
>>> app = ShapExplorer("runs/latest/04_explain")  # doctest: +SKIP
>>> app.group_dropdown.value = "family"; app.item_dropdown.value = "stoichiometry"  # doctest: +SKIP
>>> app.selected, app.state  # doctest: +SKIP
('stoichiometry', 'READY')
>>> app.sample_dropdown.value = 3; app.prediction  # doctest: +SKIP
-1.27
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w
import traitlets as tl

from battlab.explain import GROUPINGS, Explanation, plot_dependence, plot_waterfall

__all__ = ["ShapExplorer"]


class ShapExplorer(w.VBox):
    """Interactive view of an explanation: dependence plot of a feature/group, waterfall of a sample.

    Parameters
    ----------
    explanation : Explanation, str or Path
        An explanation, or a folder written by :meth:`Explanation.save`.
    max_display : int
        Bars in the waterfall.

    Attributes (traitlets)
    ----------------------
    group_by : Unicode
        ``feature``, ``family`` or ``property`` (linked to ``group_dropdown``).
    selected : Unicode
        Feature or group whose dependence plot is shown (linked to ``item_dropdown``).
    sample : Int
        Position of the sample whose waterfall is shown (linked to ``sample_dropdown``).
    prediction : Float
        That sample's prediction (base value + its SHAP values).
    state : Unicode
        ``INIT``, ``READY``, or ``FAIL`` when a plot could not be drawn (message in ``status``).
    """

    group_by = tl.Unicode("feature")
    selected = tl.Unicode()
    sample = tl.Int(0)
    prediction = tl.Float()
    state = tl.Unicode("INIT")

    def __init__(self, explanation: Explanation | str | Path, *, max_display: int = 12, **kwargs: Any) -> None:
        self.explanation = explanation if isinstance(explanation, Explanation) else Explanation.load(explanation)
        self.max_display = max_display
        self.figures: dict[str, Any] = {}  # last figure drawn per view: tests and apps can inspect them
        ex = self.explanation
        self.group_dropdown = w.Dropdown(options=list(GROUPINGS), value="feature", description="group by")
        self.item_dropdown = w.Dropdown(options=self._items("feature"), description="show",
                                        layout=w.Layout(width="480px"))
        labels = ex.labels or [str(i) for i in ex.values.index]
        preds = ex.predictions.to_numpy()
        self.sample_dropdown = w.Dropdown(options=[(f"{lab}  ({p:.3g})", i) for i, (lab, p) in
                                                   enumerate(zip(labels, preds, strict=True))],
                                          description="sample", layout=w.Layout(width="480px"))
        self.status = w.HTML()
        self.dependence_out, self.waterfall_out = w.Output(), w.Output()
        for widget, css in ((self.group_dropdown, "battlab-shap-group"), (self.item_dropdown, "battlab-shap-item"),
                            (self.sample_dropdown, "battlab-shap-sample"), (self.status, "battlab-message"),
                            (self.dependence_out, "battlab-shap-dependence"),
                            (self.waterfall_out, "battlab-shap-waterfall")):
            widget.add_class(css)
        # widgets and traitlets stay in step both ways: set either and the other follows
        tl.link((self.group_dropdown, "value"), (self, "group_by"))
        tl.link((self.item_dropdown, "value"), (self, "selected"))
        tl.link((self.sample_dropdown, "value"), (self, "sample"))
        self.observe(self._on_group_by, names="group_by")
        self.observe(lambda _: self._draw_dependence(), names="selected")
        self.observe(lambda _: self._draw_waterfall(), names="sample")
        header = (f"<b>SHAP explorer</b> — {ex.target or 'prediction'}, {ex.model_name}; {ex.explainer}; "
                  f"{len(ex.values)} of {ex.n_rows_total or len(ex.values)} rows; base value {ex.base_value:.4g}")
        super().__init__([w.HTML(header), w.HBox([self.group_dropdown, self.item_dropdown]), self.dependence_out,
                          self.sample_dropdown, self.waterfall_out, self.status], **kwargs)
        self.selected = self.item_dropdown.value
        self._draw_dependence()
        self._draw_waterfall()
        if self.state == "INIT":
            self.state = "READY"

    def _items(self, by: str) -> list[str]:
        return self.explanation.importance(by).index.astype(str).tolist()  # most important first

    def _on_group_by(self, change: dict[str, Any]) -> None:
        items = self._items(change["new"])
        with self.hold_trait_notifications():
            self.item_dropdown.options = items
        self.item_dropdown.value = items[0]
        self._draw_dependence()  # the item may be unchanged (feature view) but its meaning changed
        self._draw_waterfall()

    def _show(self, key: str, out: w.Output, draw: Any) -> None:
        from battlab.widgets.figures import show_figure

        out.outputs = ()
        try:
            fig = draw()
        except Exception as exc:  # shown in the app rather than lost in a log
            self.state = "FAIL"
            self.status.value = f"<span style='color:red'>{key} plot failed: {exc}</span>"
            return
        self.figures[key] = fig
        self.state, self.status.value = "READY", ""
        show_figure(out, fig)  # widget state, not captured output: safe under papermill, any backend

    def _draw_dependence(self) -> None:
        if self.selected:
            self._show("dependence", self.dependence_out,
                       lambda: plot_dependence(self.explanation, self.selected, by=self.group_by))

    def _draw_waterfall(self) -> None:
        self.prediction = float(self.explanation.predictions.iloc[self.sample])
        self._show("waterfall", self.waterfall_out,
                   lambda: plot_waterfall(self.explanation, self.sample, by=self.group_by,
                                          max_display=self.max_display))
