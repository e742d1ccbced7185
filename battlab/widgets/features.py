"""``FeatureExplorer``: browse a feature table by descriptor family — distributions, relation to the
target, and which features are redundant (correlation blocks).

Give it a feature set (:class:`battlab.steps.FeatureSet`, e.g. ``FeatureSet.load`` of step 02's folder), a
feature table and its info, or a curated table through the ``curated`` traitlet: it then runs the featurize
step (:func:`battlab.steps.featurize`, the same as notebook 02 and ``battlab featurize``).

Example
-------
>>> from traitlets import dlink
>>> from battlab.widgets.data import DataUploader
>>> from battlab.widgets.features import FeatureExplorer
>>> up, fx = DataUploader(), FeatureExplorer(preset="magpie")
>>> for name in ("target", "log_target", "curated"):
...     _ = dlink((up, name), (fx, name))
>>> up.load_example(); up.run_curation() is not None
True
>>> fx.state, len(fx.table), len(fx.info), fx.model_target
('SUCCESS', 10, 132, 'capacity (mAh/g)')
>>> fx.family_dropdown.value = "element property"
>>> fx.feature_dropdown.value = "MagpieData mean Electronegativity"
>>> len(fx.distribution.value) > 0  # PNG: histogram and feature vs target
True
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets as tl

from battlab.errors import BattlabError
from battlab.widgets.data import ACTIVE, INIT, READY, SUCCESS, MessagesMixin, figure_png, frame_html

__all__ = ["FeatureExplorer"]

ALL = "(all families)"


class FeatureExplorer(MessagesMixin, w.VBox):
    """Choose a descriptor family and a feature: its histogram, its scatter against the target, the
    family's correlation heatmap and the features most related to the target.

    Parameters
    ----------
    table, info : DataFrame, optional
        A feature table and its info (``feature``, ``family``, optionally ``kept``/``drop_reason``).
    target : str, optional
        Target column of the table (plots against it when set).
    preset : str
        Composition preset used when featurizing a ``curated`` table (``battery``: 162 features;
        ``magpie``: 132, faster).
    prune_threshold : float
        Features correlated above this with an earlier one get ``kept=False`` in ``info`` (as step 02).
    max_corr_features : int
        Features in the correlation heatmap (the family's first ones).

    Attributes (traitlets)
    ----------------------
    curated : DataFrame or None
        Input: a curated table (``formula`` column); setting it featurizes it (``dlink`` from
        ``DataUploader.curated``).
    target : Unicode or None, log_target : Bool
        Input: the target column and whether to model it in log10 (``DataUploader.log_target``).
    feature_set : FeatureSet or None
        The featurize step's artefact (``dlink`` to ``TuningMonitor.feature_set``).
    table, info : DataFrame or None
        The feature table (with the model target column) and the feature info, for ``TuningMonitor``.
    model_target : Unicode or None
        The column a model should learn: ``target``, or ``"log10 <target>"`` when ``log_target``.
    feature : Unicode or None
        The feature shown.
    state, message : Unicode
        ``INIT``, ``ACTIVE`` (featurizing), ``SUCCESS`` or ``FAIL``; the last message.

    CSS classes: ``battlab-feature-summary``, ``battlab-feature-distribution``,
    ``battlab-feature-correlation``, ``battlab-feature-ranking``, ``battlab-message``.
    """

    curated = tl.Instance(pd.DataFrame, allow_none=True)
    feature_set = tl.Instance("battlab.steps.FeatureSet", allow_none=True)
    table = tl.Instance(pd.DataFrame, allow_none=True)
    info = tl.Instance(pd.DataFrame, allow_none=True)
    target = tl.Unicode(None, allow_none=True)
    log_target = tl.Bool(False)
    model_target = tl.Unicode(None, allow_none=True)
    feature = tl.Unicode(None, allow_none=True)
    preset = tl.Unicode("battery")
    state = tl.Unicode(INIT)
    message = tl.Unicode("")

    def __init__(self, table: pd.DataFrame | None = None, info: pd.DataFrame | None = None, *,
                 target: str | None = None, preset: str = "battery", prune_threshold: float = 0.95,
                 max_corr_features: int = 40, **kwargs: Any) -> None:
        self.prune_threshold = prune_threshold
        self.max_corr_features = max_corr_features
        self._busy = False
        style = {"description_width": "70px"}
        self.family_dropdown = w.Dropdown(description="Family", options=[], style=style,
                                          layout=w.Layout(width="360px"))
        self.feature_dropdown = w.Dropdown(description="Feature", options=[], style=style,
                                           layout=w.Layout(width="520px"))
        self.family_dropdown.observe(self._on_family, names="value")
        self.feature_dropdown.observe(self._on_feature, names="value")
        self.status = w.HTML().add_class("battlab-message")
        self.summary = w.HTML().add_class("battlab-feature-summary")
        self.feature_note = w.HTML()
        self.distribution = w.Image(format="png", layout=w.Layout(max_width="820px"))
        self.distribution.add_class("battlab-feature-distribution")
        self.correlation = w.Image(format="png", layout=w.Layout(max_width="640px"))
        self.correlation.add_class("battlab-feature-correlation")
        self.ranking = w.HTML().add_class("battlab-feature-ranking")
        self.tabs = w.Tab([w.VBox([self.feature_note, self.distribution]), self.correlation, self.ranking])
        for i, title in enumerate(("Distribution", "Correlations", "Top features")):
            self.tabs.set_title(i, title)
        self._corr_drawn_for: tuple | None = None  # the heatmap is drawn when its tab is shown (~1 s)
        self._feature_drawn_for: tuple | None = None
        self.tabs.observe(lambda _: self._draw_correlation(), names="selected_index")
        super().__init__([w.HTML("<b>Features</b>"), self.status, self.summary,
                          w.HBox([self.family_dropdown, self.feature_dropdown]), self.tabs], **kwargs)
        self.add_class("battlab-feature-explorer")
        self.preset = preset
        self.target = target
        if info is not None:
            self.info = info
        if table is not None:
            self.table = table

    # ------------------------------------------------------------------ featurizing a curated table
    @tl.observe("curated")
    def _on_curated(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.featurize(change["new"])

    def featurize(self, curated: pd.DataFrame) -> None:
        """Run the featurize step (:func:`battlab.steps.featurize`) on a curated table: composition features
        with a formula column, its numeric columns without; redundant features pruned. Errors are shown."""
        self.state = ACTIVE
        self._say(f"featurizing {len(curated)} rows (preset {self.preset!r})…", "info")
        try:
            from battlab.steps import featurize

            target = self.target if self.target in curated else None
            fs = featurize(curated, target=target, log_target=self.log_target, preset=self.preset,
                           prune_threshold=self.prune_threshold)
            table, info = fs.table, fs.info
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._busy = True
            try:  # no stale table downstream
                self.feature_set, self.info, self.table = None, None, None
            finally:
                self._busy = False
            self._refresh()
            self._fail(str(exc) if isinstance(exc, BattlabError)
                       else f"featurization failed ({type(exc).__name__}: {exc})")
            return
        self._busy = True
        try:  # all before any redraw
            self.feature_set, self.info, self.table = fs, info, table
        finally:
            self._busy = False
        self.state = SUCCESS
        self._sync_target()
        self._refresh()
        n_bad = int((table["featurize_error"] != "").sum())
        self._say(f"{len(table)} rows featurized, {len(info)} features ({int(info['kept'].sum())} kept after "
                  f"pruning)" + (f"; {n_bad} rows failed (formula not understood)" if n_bad else ""), "success")

    # ------------------------------------------------------------------ table / target
    @tl.observe("target", "log_target")
    def _on_target(self, change: dict[str, Any]) -> None:
        self._sync_target()
        self._refresh()

    @tl.observe("table", "info")
    def _on_table(self, change: dict[str, Any]) -> None:
        if self._busy:
            return
        self._sync_target()
        self._refresh()

    def _sync_target(self) -> None:
        """Set ``model_target`` (the feature set's :meth:`~battlab.steps.FeatureSet.with_target`: the same
        log10 target as the featurize step), adding its column to the table when needed."""
        from battlab.steps import FeatureSet

        t, table = self.target, self.table
        if not t or table is None or t not in table:
            self.model_target = None
            return
        fs = self.feature_set
        if fs is None or fs.table is not table:
            kept = self.features(kept_only=True) or self.features()
            fs = FeatureSet.from_columns(table, kept, info=self.info) if kept else None
        if fs is None:
            self.model_target = t
            return
        new = fs.with_target(t, log=self.log_target)
        self._busy = True
        try:
            self.feature_set, self.table = new, new.table
        finally:
            self._busy = False
        self.model_target = new.model_target

    def features(self, family: str | None = None, kept_only: bool = False) -> list[str]:
        """Feature names (of one family; ``kept`` ones only) present in the table."""
        info, table = self.info, self.table
        if info is None or table is None or "feature" not in info:
            return []
        sel = info
        if family and family != ALL and "family" in info:
            sel = sel[sel["family"] == family]
        if kept_only and "kept" in sel:
            sel = sel[sel["kept"].astype(bool)]
        return [f for f in sel["feature"] if f in table.columns]

    def _refresh(self) -> None:
        info, table = self.info, self.table
        if table is None or info is None:
            self.summary.value = ""
            self.family_dropdown.options, self.feature_dropdown.options = [], []
            return
        missing = [f for f in info.get("feature", pd.Series(dtype=str)) if f not in table.columns]
        families = list(dict.fromkeys(info["family"])) if "family" in info else []
        n_kept = int(info["kept"].sum()) if "kept" in info else len(info)
        n_bad = int((table["featurize_error"].fillna("") != "").sum()) if "featurize_error" in table else 0
        self.summary.value = (
            f"<p>{len(table)} rows, {len(info)} features in {len(families)} families"
            f" ({n_kept} kept after pruning); target: <b>{html.escape(str(self.model_target or '—'))}</b>"
            + (f"; {n_bad} rows not featurized" if n_bad else "")
            + (f"; <span style='color:#b00020'>{len(missing)} info features not in the table</span>"
               if missing else "") + "</p>")
        if self.state != ACTIVE:
            self.state = SUCCESS if self.features() else READY
        old = self.family_dropdown.value
        self.family_dropdown.options = [ALL, *families]
        if old in self.family_dropdown.options:
            self.family_dropdown.value = old
        self._on_family()
        self._draw_ranking()

    def _on_family(self, change: dict[str, Any] | None = None) -> None:
        family = self.family_dropdown.value
        feats = self.features(family)
        old = self.feature_dropdown.value
        self.feature_dropdown.options = feats
        if old in feats:
            self.feature_dropdown.value = old
        elif feats:
            self.feature_dropdown.value = feats[0]
        self._draw_feature()
        self._draw_correlation()

    def _on_feature(self, change: dict[str, Any]) -> None:
        self.feature = change["new"]
        self._draw_feature()

    @tl.observe("feature")
    def _on_feature_trait(self, change: dict[str, Any]) -> None:
        if change["new"] and change["new"] != self.feature_dropdown.value:
            info = self.info
            if info is not None and "family" in info and change["new"] in set(info["feature"]):
                fam = info.loc[info["feature"] == change["new"], "family"].iloc[0]
                if self.family_dropdown.value not in (ALL, fam):
                    self.family_dropdown.value = fam
            if change["new"] in self.feature_dropdown.options:
                self.feature_dropdown.value = change["new"]

    # ------------------------------------------------------------------ plots
    def _draw_feature(self) -> None:
        name, table = self.feature_dropdown.value, self.table
        if not name or table is None or name not in table:
            self.distribution.value, self.feature_note.value = b"", ""
            self._feature_drawn_for = None
            return
        key = (id(table), name, self.model_target)
        if key == self._feature_drawn_for:  # dropdown events repeat: draw once
            return
        self._feature_drawn_for = key
        try:
            self.distribution.value = figure_png(self._feature_figure(table, name))
        except Exception as exc:
            self.distribution.value = b""
            self._say(f"cannot plot {name!r}: {exc}", "error")
        row = self.info.loc[self.info["feature"] == name] if self.info is not None else pd.DataFrame()
        note = ""
        if len(row):
            r = row.iloc[0]
            unit = f" [{r['unit']}]" if "unit" in r and isinstance(r["unit"], str) and r["unit"] else ""
            kept = ("" if "kept" not in r or bool(r["kept"])
                    else f" — <i>pruned: {html.escape(str(r.get('drop_reason', '')))}</i>")
            note = f"<p>{html.escape(str(r.get('family', '')))}{html.escape(unit)}{kept}</p>"
        self.feature_note.value = note

    def _feature_figure(self, table: pd.DataFrame, name: str):
        from matplotlib.figure import Figure

        x = pd.to_numeric(table[name], errors="coerce")
        target = self.model_target if self.model_target in table else None
        fig = Figure(figsize=(9 if target else 4.8, 3.2))
        axes = fig.subplots(1, 2 if target else 1, squeeze=False)[0]
        finite = x[np.isfinite(x)]
        axes[0].hist(finite, bins=min(40, max(5, int(np.sqrt(max(len(finite), 1))) * 2)), color="tab:blue",
                     alpha=0.85)
        axes[0].set(xlabel=_short(name), ylabel="rows", title=f"{len(finite)} values, {x.isna().sum()} missing")
        if target:
            y = pd.to_numeric(table[target], errors="coerce")
            axes[1].scatter(x, y, s=12, alpha=0.6, color="tab:orange")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rho = x.corr(y, method="spearman") if x.nunique() > 1 and y.nunique() > 1 else float("nan")
            axes[1].set(xlabel=_short(name), ylabel=_short(target), title=f"Spearman ρ = {rho:.2f}")
        fig.tight_layout()
        return fig

    def _draw_correlation(self) -> None:
        if self.tabs.selected_index != 1:
            return
        table = self.table
        feats = self.features(self.family_dropdown.value)
        key = (id(self.info), tuple(feats))  # the heatmap does not depend on the target column
        if key == self._corr_drawn_for:
            return
        self._corr_drawn_for = key
        feats = [f for f in feats if table[f].nunique(dropna=True) > 1][: self.max_corr_features]
        if len(feats) < 2:
            self.correlation.value = b""
            return
        try:
            from battlab.plots import plot_feature_correlations

            self.correlation.value = figure_png(plot_feature_correlations(table, feats))
        except Exception as exc:
            self.correlation.value = b""
            self._say(f"no correlation plot: {exc}", "error")

    def _draw_ranking(self, n: int = 15) -> None:
        table, target = self.table, self.model_target
        if table is None or not target or target not in table:
            self.ranking.value = "<p>Set a target to rank features by their relation to it.</p>"
            return
        feats = self.features(kept_only=True) or self.features()
        X = table[feats].apply(pd.to_numeric, errors="coerce")
        X = X.loc[:, X.nunique() > 1]  # constant columns have no correlation
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = X.corrwith(pd.to_numeric(table[target], errors="coerce"), method="spearman")
        top = rho.dropna().reindex(rho.dropna().abs().sort_values(ascending=False).index).head(n)
        df = pd.DataFrame({"feature": top.index, "Spearman ρ": top.to_numpy()})
        if self.info is not None and "family" in self.info:
            df.insert(1, "family", df["feature"].map(dict(zip(self.info["feature"], self.info["family"],
                                                              strict=False))))
        self.ranking.value = (f"<p>Features most related to <b>{html.escape(target)}</b> (|Spearman ρ|, "
                              f"kept features; a ranking, not a model):</p>" + frame_html(df, n))

    # ------------------------------------------------------------------ messages


def _short(name: str, n: int = 40) -> str:
    return name if len(name) <= n else name[: n - 3] + "..."
