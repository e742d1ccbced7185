"""``Predictor``: type formulas (or upload a list), or fill in a form of process parameters, and get the
predicted property with its conformal interval from a saved model, a short reason (the features that
pushed the prediction most), and a CSV export.

The model is a folder written by the tune step (:meth:`battlab.steps.TunedModel.save`: ``battlab tune``,
notebook 03). **Loading a joblib file runs code**: a Predictor only loads the folder its caller passes
(``model_dir``, a trusted path: your own tuning run), never an uploaded file.

The Predictor never featurizes on its own: :meth:`battlab.steps.TunedModel.predict_interval` featurizes the
rows with the model's recipe, as its training table was. A composition model takes formulas (features the
formula cannot give, such as structure or process columns, are left to the model's imputer, which fills
the training median, and the widget says so); any other model gets a form with one field per input column.

Example
-------
>>> from battlab.widgets.predictor import Predictor
>>> p = Predictor("runs/latest/03_tune")  # doctest: +SKIP
>>> p.predict(["LiCoO2", "LiFePO4", "Xx2O"])[["formula", "prediction", "low", "high", "error"]]  # doctest: +SKIP
>>> p.text.value = "LiMn2O4"; p.predict_button.click()  # doctest: +SKIP
>>> p.export_csv("predictions.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets as tl

from battlab.errors import BattlabError
from battlab.explain import explain, explainer_kind
from battlab.units import error_unit, quantity_label
from battlab.widgets.data import (
    ACTIVE,
    INIT,
    READY,
    SUCCESS,
    TABLE_SUFFIXES,
    MessagesMixin,
    csv_download_html,
    frame_html,
    on_upload,
    read_upload,
)

__all__ = ["Predictor", "local_contributions"]

OUTPUT_COLUMNS = ["prediction", "low", "high", "reason", "error"]


def local_contributions(model: Any, X: pd.DataFrame) -> pd.DataFrame | None:
    """Per-row, per-feature contributions to the prediction of a battlab pipeline, when cheap and exact:

    * LightGBM last step: TreeSHAP (``booster.predict(..., pred_contrib=True)``);
    * linear last step (``coef_``, e.g. ridge) after the scaler: ``coef * (x - training mean)``
      (the SHAP values of a linear model with independent features).

    ``None`` for other models. Columns are ``X``'s; the values sum (with the base value) to the prediction.
    """
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        return None
    head, last = model[:-1], model[-1]
    Xt = head.transform(X.to_numpy(dtype=float)) if len(model.steps) > 1 else X.to_numpy(dtype=float)
    booster = getattr(last, "booster_", None)
    if booster is not None and hasattr(booster, "predict"):
        contrib = booster.predict(Xt, pred_contrib=True)[:, :-1]  # last column: the base value
    elif hasattr(last, "coef_") and np.ndim(last.coef_) == 1 and len(last.coef_) == Xt.shape[1]:
        center = 0.0
        if "scale" not in model.named_steps:  # unscaled linear model: centre on the imputer's medians
            imputer = model.named_steps.get("impute")
            center = getattr(imputer, "statistics_", 0.0)
        contrib = np.asarray(last.coef_) * (Xt - center)
    else:
        return None
    if contrib.shape != X.shape:
        return None
    return pd.DataFrame(contrib, columns=X.columns, index=X.index)


def _is_tree_model(model: Any) -> bool:
    est = model[-1] if hasattr(model, "steps") else model
    return explainer_kind(est) in ("lightgbm", "xgboost", "tree")


def _explain_contributions(model: Any, X: pd.DataFrame) -> pd.DataFrame | None:
    """SHAP values from :func:`battlab.explain.explain` for tree models (exact, referred to the training
    data); ``None`` when it fails or the model is not a tree model: explain's linear and permutation
    explainers refer to the rows explained, meaningless for one formula typed in a box."""
    if not _is_tree_model(model):
        return None
    try:
        values = explain(model, X).values
    except Exception:  # a reason is a nicety: fall back to the local attribution
        return None
    return pd.DataFrame(values.to_numpy(dtype=float), columns=X.columns, index=X.index)


class Predictor(MessagesMixin, w.VBox):
    """Predict a property for formulas with a saved battlab model: value, interval and a short reason.

    Parameters
    ----------
    model_dir : str or Path, optional
        Trusted folder from :meth:`~battlab.tune.TuneResult.save` (also a traitlet: ``dlink`` from
        ``TuningMonitor.model_dir``). Loading unpickles ``model.joblib``/``intervals.joblib``: never point
        it at files from untrusted sources.
    export_path : str or Path, optional
        File the Export button writes (the download link is always made).
    reasons : {"auto", "local", None}
        ``auto``: for tree models SHAP from :func:`battlab.explain.explain` when available, else
        :func:`local_contributions` (LightGBM TreeSHAP; linear models against the training mean);
        ``local``: the latter only; ``None``: no reasons. Other models (kNN, SVR, GP...) get no reason:
        they have no cheap exact attribution without the training data.
    max_reason_rows : int
        Reasons for the first rows of a list only (TreeSHAP of a 1500-tree model: ~30 ms a row).
    n_reasons : int
        Features named in a reason.
    max_formulas : int
        Largest uploaded list predicted at once.

    Attributes (traitlets)
    ----------------------
    model_dir : Unicode
    results : DataFrame
        The input columns (``formula``, or a form model's inputs), then ``prediction, low, high, reason,
        error`` — every prediction so far (Clear empties it); a row that cannot be featurized (a formula
        that cannot be read, a number that is not one) has ``error`` set and no prediction.
    target : Unicode
        What the model predicts (the model card's target).
    unit : Unicode
        The unit of the measured target (``""`` when the model does not record one); the table's headers and
        the model's line show it (a log10 model predicts the log10 of it).
    state : Unicode
        ``INIT`` (no model), ``READY``, ``ACTIVE``, ``SUCCESS``, ``FAIL``.
    message : Unicode

    CSS classes: ``battlab-predictor-input``, ``battlab-predict-button``, ``battlab-predictions``,
    ``battlab-download``, ``battlab-model-info``, ``battlab-message``.
    """

    model_dir = tl.Unicode("")
    results = tl.Instance(pd.DataFrame)
    target = tl.Unicode("")
    unit = tl.Unicode("")
    state = tl.Unicode(INIT)
    message = tl.Unicode("")

    def __init__(self, model_dir: str | Path | None = None, *, export_path: str | Path | None = None,
                 reasons: str | None = "auto", n_reasons: int = 3, max_formulas: int = 5000,
                 max_reason_rows: int = 200, **kwargs: Any) -> None:
        self.max_reason_rows = max_reason_rows
        self.export_path = export_path
        self.reasons, self.n_reasons, self.max_formulas = reasons, n_reasons, max_formulas
        self.tuned: Any = None  # battlab.steps.TunedModel
        self.model: Any = None
        self.feature_names: list[str] = []
        self.inputs: list[str] = ["formula"]  # the columns a row gives: a formula, or a form's fields
        self.unavailable: list[str] = []  # model features a formula cannot give (structure, process)
        self.form = w.VBox(layout=w.Layout(display="none"))
        self.form.add_class("battlab-predictor-form")
        self.fields: dict[str, w.FloatText] = {}
        self.text = w.Text(placeholder="formulas, e.g. LiCoO2, LiFePO4", description="Formula",
                           layout=w.Layout(width="460px"), continuous_update=False)
        self.text.add_class("battlab-predictor-input")
        self.predict_button = w.Button(description="Predict", button_style="primary", icon="bolt", disabled=True)
        self.predict_button.add_class("battlab-predict-button")
        self.predict_button.on_click(lambda _: self.predict_text())
        self.upload = w.FileUpload(accept=",".join(TABLE_SUFFIXES), multiple=False,
                                   description="Upload list")
        self.upload.observe(on_upload(self.upload, self.load_list, "formulas.csv"), names="value")
        self.clear_button = w.Button(description="Clear", icon="trash")
        self.clear_button.on_click(lambda _: self.clear())
        self.export_button = w.Button(description="Export CSV", icon="download", disabled=True)
        self.export_button.on_click(lambda _: self.export_csv(self.export_path))
        self.model_info = w.HTML().add_class("battlab-model-info")
        self.status = w.HTML().add_class("battlab-message")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(display="none"))
        self.table = w.HTML().add_class("battlab-predictions")
        self.download = w.HTML().add_class("battlab-download")
        self.text_row = w.HBox([self.text])
        super().__init__([w.HTML("<b>Predictor</b>"), self.model_info, self.form,
                          w.HBox([self.text_row, self.predict_button]),
                          w.HBox([self.upload, self.clear_button, self.export_button]),
                          self.progress, self.status, self.table, self.download], **kwargs)
        self.add_class("battlab-predictor")
        self.results = self._empty()
        if model_dir is not None:
            self.model_dir = str(model_dir)

    # ------------------------------------------------------------------ model
    @tl.observe("model_dir")
    def _on_model_dir(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.load_model(change["new"])

    def load_model(self, model_dir: str | Path) -> bool:
        """Load a saved model (trusted folder: unpickling runs code); errors are shown, not raised."""
        from battlab.steps import TunedModel

        folder = Path(model_dir)
        self.tuned = self.model = None
        self.predict_button.disabled = True
        try:
            tuned = TunedModel.load(folder)
        except BattlabError as exc:
            self._fail(str(exc))
            return False
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._fail(f"{folder}: cannot load the model ({type(exc).__name__}: {exc})")
            return False
        recipe = tuned.recipe
        self.tuned, self.model, self.feature_names = tuned, tuned.model, tuned.features
        if recipe.composition:  # a formula gives the composition features, not structure or table columns
            self.inputs = [recipe.formula_column]
            self.unavailable = [f for f, family in zip(tuned.info["feature"], tuned.info["family"], strict=True)
                                if f in recipe.process_columns or f in recipe.derived
                                or (recipe.structure and family == "structure")]
        else:
            self.inputs, self.unavailable = recipe.inputs, []
        self._build_form()
        self.target, self.unit = tuned.model_target, tuned.target_unit
        m = tuned.metrics
        mae_unit = error_unit(self.target, self.unit)
        metric = (f"CV MAE {m['mae_mean']:.3g} ± {m.get('mae_std', float('nan')):.2g}{mae_unit}"
                  if "mae_mean" in m else "")
        notes = [f"predicts <b>{html.escape(quantity_label(self.target, self.unit))}</b> with "
                 f"{html.escape(tuned.best_name)} from "
                 f"{len(self.feature_names)} features",
                 html.escape(f"{metric} ({tuned.split})") if metric else "",
                 (f"intervals: {tuned.coverage.get('target', 0.9):.0%} conformal" if tuned.intervals is not None
                  else "no intervals saved")]
        if self.unavailable:
            notes.append(f"<span style='color:#8a5300'>{len(self.unavailable)} features (structure/process, e.g. "
                         f"{html.escape(self.unavailable[0])!s}) cannot come from a formula: they are set to the "
                         "training median, so the prediction ignores them</span>")
        self.model_info.value = "<p>" + "; ".join(n for n in notes if n) + "</p>"
        self.results = self._empty()
        self.predict_button.disabled = False
        self.state = READY
        self._say(f"model loaded from {folder.name or folder}", "info")
        return True

    def _empty(self) -> pd.DataFrame:
        return pd.DataFrame(columns=[*self.inputs, *OUTPUT_COLUMNS])

    def _build_form(self) -> None:
        """Formulas: the text box. Any other model: one number field per input column, set to its training
        median (the imputer's), so that a first Predict gives a typical prediction."""
        composition = self.tuned is not None and self.tuned.recipe.composition
        self.text_row.layout.display = None if composition else "none"
        self.form.layout.display = "none" if composition else None
        self.upload.description = "Upload list" if composition else "Upload table"
        if composition:
            self.form.children, self.fields = (), {}
            return
        medians = self._centers()
        self.fields = {c: w.FloatText(value=round(medians.get(c, 0.0), 6), description=c,
                                      style={"description_width": "220px"}, layout=w.Layout(width="380px"))
                       for c in self.inputs}
        for field_widget in self.fields.values():
            field_widget.add_class("battlab-predictor-field")
        self.form.children = list(self.fields.values())

    # ------------------------------------------------------------------ predictions
    def features_for(self, formulas: list[str]) -> tuple[pd.DataFrame, list[str]]:
        """The model's feature matrix for ``formulas`` (its recipe, its column order) and per-formula errors."""
        return self.tuned.features_for(pd.DataFrame({self.inputs[0]: list(formulas)}))

    def predict(self, formulas: list[str] | str, *, append: bool = True) -> pd.DataFrame:
        """Predict for formulas (a composition model); returns their rows (also appended to ``results``).
        Never raises for a bad formula (its row has ``error``); a missing model gives an empty frame and a
        message."""
        if isinstance(formulas, str):
            formulas = split_formulas(formulas)
        formulas = [str(f).strip() for f in formulas if str(f).strip()]
        if self.tuned is not None and not self.tuned.recipe.composition:
            self._fail("this model takes the fields of the form, not formulas")
            return self._empty()
        if not formulas and self.tuned is not None:
            self._fail("type at least one formula")
            return self._empty()
        return self.predict_table(pd.DataFrame({self.inputs[0]: formulas}), append=append)

    def predict_form(self) -> pd.DataFrame:
        """Predict for the values in the form's fields (a model that is not a composition model)."""
        return self.predict_table(pd.DataFrame({c: [f.value] for c, f in self.fields.items()}))

    def predict_table(self, rows: pd.DataFrame, *, append: bool = True) -> pd.DataFrame:
        """Predict every row of a table with the model's input columns (``formula``, or a form's fields)."""
        if self.tuned is None:
            self._fail("no model loaded")
            return self._empty()
        missing = [c for c in self.inputs if c not in rows.columns]
        if missing:
            self._fail(f"the table lacks the model's input column(s) {missing[:3]}; it needs {self.inputs}")
            return self._empty()
        if len(rows) > self.max_formulas:
            self._fail(f"{len(rows)} rows: at most {self.max_formulas} at once")
            return self._empty()
        self.state = ACTIVE
        self._show_progress(0, len(rows))
        try:
            out = self._predict_rows(rows[self.inputs].reset_index(drop=True))
        except BattlabError as exc:
            self._fail(str(exc))
            return self._empty()
        except Exception as exc:  # a bug or an odd model: shown, never raised into the kernel
            self._fail(f"prediction failed ({type(exc).__name__}: {exc})")
            return self._empty()
        finally:
            self._show_progress(None)
        self.results = pd.concat([self.results, out], ignore_index=True) if append and len(self.results) else out
        n_bad = int((out["error"] != "").sum())
        self.state = SUCCESS
        capped = (f"; reasons for the first {self.max_reason_rows} only"
                  if self.reasons and len(out) > self.max_reason_rows else "")
        self._say(f"{len(out) - n_bad} predicted" + (f", {n_bad} not understood (see 'error')" if n_bad else "")
                  + capped, "success" if not n_bad else "info")
        return out

    def _predict_rows(self, rows: pd.DataFrame) -> pd.DataFrame:
        chunk = 500
        parts, reasons = [], [""] * len(rows)
        for start in range(0, len(rows), chunk):
            part = rows.iloc[start:start + chunk]
            parts.append(self.tuned.predict_interval(part))
            X, errors = self.tuned.features_for(part)
            ok = np.array([not e for e in errors], dtype=bool)
            n_reason = max(0, min(int(ok.sum()), self.max_reason_rows - start))
            where = np.flatnonzero(ok)[:n_reason]
            for i, text in zip(where, self._reasons(X.iloc[where]), strict=True):
                reasons[start + i] = text
            self._show_progress(start + len(part), len(rows))
        pred = pd.concat(parts) if parts else pd.DataFrame(columns=["prediction", "low", "high", "error"])
        out = rows.copy()
        for col in ("prediction", "low", "high"):
            out[col] = pred[col].to_numpy(dtype=float)
        out["reason"], out["error"] = reasons, pred["error"].astype(str).to_numpy()
        return out[[*self.inputs, *OUTPUT_COLUMNS]]

    def _reasons(self, X: pd.DataFrame) -> list[str]:
        if not self.reasons or not len(X):
            return [""] * len(X)
        contrib = _explain_contributions(self.model, X) if self.reasons == "auto" else None
        if contrib is None:
            try:
                contrib = local_contributions(self.model, X)
            except Exception:
                contrib = None
        if contrib is None:
            return [""] * len(X)
        contrib = contrib.drop(columns=[c for c in self.unavailable if c in contrib.columns])
        center = self._centers()
        out = []
        for (_, c), (_, x) in zip(contrib.iterrows(), X.iterrows(), strict=True):
            top = c.abs().sort_values(ascending=False).index[: self.n_reasons]
            parts = []
            for name in top:
                if not np.isfinite(c[name]) or c[name] == 0:
                    continue
                ref = center.get(name)
                side = ("" if ref is None or not np.isfinite(x[name])
                        else "higher " if x[name] > ref else "lower " if x[name] < ref else "")
                parts.append(f"{side}{name} ({c[name]:+.2g})")
            out.append("; ".join(parts))
        return out

    def _centers(self) -> dict[str, float]:
        """Training means (scaled models) or medians (the imputer's) of the features: the reference a
        contribution is measured from, to say 'higher'/'lower' than usual."""
        steps = getattr(self.model, "named_steps", {})
        stats = getattr(steps.get("scale"), "mean_", None)
        if stats is None:
            stats = getattr(steps.get("impute"), "statistics_", None)
        if stats is None or len(stats) != len(self.feature_names):
            return {}
        return dict(zip(self.feature_names, map(float, stats), strict=True))

    def predict_text(self) -> pd.DataFrame:
        """The Predict button: the formulas typed in the text box, or the form's values."""
        if self.tuned is not None and not self.tuned.recipe.composition:
            return self.predict_form()
        return self.predict(self.text.value)

    def load_list(self, name: str, content: bytes | memoryview) -> pd.DataFrame:
        """Predict every row of an uploaded table: its formula column (else its first column) for a
        composition model, its input columns (numbers) for any other."""
        from battlab.curate import find_formula_column

        if self.tuned is None:
            self._fail("no model loaded")
            return self._empty()
        try:
            table = read_upload(name, content)
        except BattlabError as exc:
            self._fail(str(exc))
            return self._empty()
        except Exception as exc:
            self._fail(f"{name}: cannot read the file ({type(exc).__name__}: {exc})")
            return self._empty()
        df = table.data
        if not self.tuned.recipe.composition:
            return self.predict_table(df)
        column = find_formula_column([str(c) for c in df.columns]) or (df.columns[0] if len(df.columns) else None)
        if column is None:
            self._fail(f"{name}: no column")
            return self._empty()
        return self.predict([str(v) for v in df[column].tolist()])

    def clear(self) -> None:
        """Forget the predictions so far."""
        self.results = self._empty()
        self.download.value = ""
        if self.model is not None:
            self.state = READY

    @tl.observe("results")
    def _on_results(self, change: dict[str, Any]) -> None:
        df = change["new"]
        self.export_button.disabled = df is None or not len(df)
        shown = df
        if self.target:
            bound = error_unit(self.target, self.unit) if not self.target.lower().startswith("log10 ") else ""
            shown = df.rename(columns={"prediction": f"predicted {quantity_label(self.target, self.unit)}",
                                       **({"low": f"low [{bound.strip()}]", "high": f"high [{bound.strip()}]"}
                                          if bound else {})})
        self.table.value = frame_html(shown, 50, "battlab-prediction-table")
        self.download.value = ""  # stale: Export makes a new one

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | Path | None = None) -> str:
        """The results as CSV text; written to ``path`` when given; sets the download link (``data:`` URI)."""
        df = self.results
        text = df.to_csv(index=False)
        name = Path(path).name if path else "battlab_predictions.csv"
        self.download.value = csv_download_html(df, name)
        if path:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(text)
            except OSError as exc:
                self._fail(f"cannot write {path}: {exc.strerror or exc}")
                return text
            self._say(f"{len(df)} rows written to {path}", "success")
        return text

    # ------------------------------------------------------------------ messages
    def _show_progress(self, done: int | None, total: int = 1) -> None:
        if done is None or total < 200:  # small lists: no bar flashing
            self.progress.layout.display = "none"
            return
        self.progress.max, self.progress.value = total, done
        self.progress.layout.display = None


def split_formulas(text: str) -> list[str]:
    """Formulas typed in one box: separated by commas, semicolons, spaces or new lines."""
    return [t for t in re.split(r"[,;\s]+", text or "") if t]
