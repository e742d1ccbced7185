"""``Predictor``: type formulas (or upload a list), get the predicted property with its conformal interval
from a saved model and a short reason (the features that pushed the prediction most), export as CSV.

The model is a folder written by :meth:`battlab.tune.TuneResult.save` (``model.joblib``,
``intervals.joblib``, ``model_card.json``). **Loading a joblib file runs code**: a Predictor only loads
the folder its caller passes (``model_dir``, a trusted path: your own tuning run), never an uploaded file.

Features are computed from the formula alone (:func:`battlab.featurize.composition_features`); a model
that also used structure or process features gets them as missing values (its imputer fills the
training median), and the widget says that the prediction ignores them.

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
import json
import re
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
import traitlets as tl

from battlab.errors import BattlabError
from battlab.widgets.data import (
    ACTIVE,
    INIT,
    READY,
    SUCCESS,
    TABLE_SUFFIXES,
    MessagesMixin,
    csv_download_html,
    frame_html,
    read_upload,
    upload_entries,
)

__all__ = ["Predictor", "local_contributions"]

RESULT_COLUMNS = ["formula", "prediction", "low", "high", "reason", "error"]
_FEATURE_SUFFIX = " [feature]"  # featurize_table's rename when a feature name clashes with a column


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
    try:
        from battlab.explain import explainer_kind
    except ImportError:
        return type(est).__module__.startswith("lightgbm")
    try:
        return explainer_kind(est) in ("lightgbm", "xgboost", "tree")
    except Exception:  # an estimator explain does not know
        return False


def _explain_contributions(model: Any, X: pd.DataFrame) -> pd.DataFrame | None:
    """SHAP values from :func:`battlab.explain.explain` for tree models (exact, referred to the training
    data); ``None`` when that module is missing, fails, or the model is not a tree model: explain's linear
    and permutation explainers refer to the rows explained, meaningless for one formula typed in a box."""
    if not _is_tree_model(model):
        return None
    try:
        from battlab.explain import explain  # optional: written separately
    except ImportError:
        return None
    try:
        out = explain(model, X)
        values = out if isinstance(out, pd.DataFrame) else getattr(out, "values", None)
        values = np.asarray(values.to_numpy() if isinstance(values, pd.DataFrame) else values, dtype=float)
        if values.shape != X.shape:
            return None
        return pd.DataFrame(values, columns=X.columns, index=X.index)
    except Exception:  # a reason is a nicety: fall back to the local attribution
        return None


class Predictor(MessagesMixin, w.VBox):
    """Predict a property for formulas with a saved battlab model: value, interval and a short reason.

    Parameters
    ----------
    model_dir : str or Path, optional
        Trusted folder from :meth:`~battlab.tune.TuneResult.save` (also a traitlet: ``dlink`` from
        ``TuningMonitor.model_dir``). Loading unpickles ``model.joblib``/``intervals.joblib``: never point
        it at files from untrusted sources.
    preset : str
        Composition preset for the features (default ``battery``: 162 features, a superset of ``magpie``;
        the model card's feature names pick the columns).
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
        ``formula, prediction, low, high, reason, error`` — every prediction so far (Clear empties it);
        a formula that cannot be read gives a row with ``error`` set and no prediction.
    target : Unicode
        What the model predicts (the model card's target).
    state : Unicode
        ``init`` (no model), ``ready``, ``active``, ``success``, ``fail``.
    message : Unicode

    CSS classes: ``battlab-predictor-input``, ``battlab-predict-button``, ``battlab-predictions``,
    ``battlab-download``, ``battlab-model-info``, ``battlab-message``.
    """

    model_dir = tl.Unicode("")
    results = tl.Instance(pd.DataFrame)
    target = tl.Unicode("")
    state = tl.Unicode(INIT)
    message = tl.Unicode("")

    def __init__(self, model_dir: str | Path | None = None, *, preset: str = "battery",
                 export_path: str | Path | None = None, reasons: str | None = "auto", n_reasons: int = 3,
                 max_formulas: int = 5000, max_reason_rows: int = 200, working_ion: str = "Li",
                 **kwargs: Any) -> None:
        self.preset, self.working_ion = preset, working_ion
        self.max_reason_rows = max_reason_rows
        self.export_path = export_path
        self.reasons, self.n_reasons, self.max_formulas = reasons, n_reasons, max_formulas
        self.model: Any = None
        self.intervals: Any = None
        self.card: dict[str, Any] = {}
        self.feature_names: list[str] = []
        self.unavailable: list[str] = []  # model features a formula cannot give (structure, process)
        self.text = w.Text(placeholder="formulas, e.g. LiCoO2, LiFePO4", description="Formula",
                           layout=w.Layout(width="460px"), continuous_update=False)
        self.text.add_class("battlab-predictor-input")
        self.predict_button = w.Button(description="Predict", button_style="primary", icon="bolt", disabled=True)
        self.predict_button.add_class("battlab-predict-button")
        self.predict_button.on_click(lambda _: self.predict_text())
        self.upload = w.FileUpload(accept=",".join(TABLE_SUFFIXES), multiple=False,
                                   description="Upload list")
        self.upload.observe(self._on_upload, names="value")
        self.clear_button = w.Button(description="Clear", icon="trash")
        self.clear_button.on_click(lambda _: self.clear())
        self.export_button = w.Button(description="Export CSV", icon="download", disabled=True)
        self.export_button.on_click(lambda _: self.export_csv(self.export_path))
        self.model_info = w.HTML().add_class("battlab-model-info")
        self.status = w.HTML().add_class("battlab-message")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(display="none"))
        self.table = w.HTML().add_class("battlab-predictions")
        self.download = w.HTML().add_class("battlab-download")
        super().__init__([w.HTML("<b>Predictor</b>"), self.model_info,
                          w.HBox([self.text, self.predict_button]),
                          w.HBox([self.upload, self.clear_button, self.export_button]),
                          self.progress, self.status, self.table, self.download], **kwargs)
        self.add_class("battlab-predictor")
        self.results = pd.DataFrame(columns=RESULT_COLUMNS)
        if model_dir is not None:
            self.model_dir = str(model_dir)

    # ------------------------------------------------------------------ model
    @tl.observe("model_dir")
    def _on_model_dir(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.load_model(change["new"])

    def load_model(self, model_dir: str | Path) -> bool:
        """Load a saved model (trusted folder: unpickling runs code); errors are shown, not raised."""
        folder = Path(model_dir)
        self.model = self.intervals = None
        self.predict_button.disabled = True
        try:
            card_path, model_path = folder / "model_card.json", folder / "model.joblib"
            for p in (card_path, model_path):
                if not p.is_file():
                    raise BattlabError(f"{folder}: no {p.name} (a folder written by TuneResult.save is needed)")
            card = json.loads(card_path.read_text())
            names = list(card["features"]["names"])
            import joblib

            model = joblib.load(model_path)
            intervals = joblib.load(folder / "intervals.joblib") if (folder / "intervals.joblib").is_file() else None
            from battlab.featurize import CompositionFeaturizer

            computable = set(CompositionFeaturizer(preset=self.preset, working_ion=self.working_ion).feature_labels())
        except BattlabError as exc:
            self._fail(str(exc))
            return False
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._fail(f"{folder}: cannot load the model ({type(exc).__name__}: {exc})")
            return False
        unavailable = [n for n in names if _base_name(n) not in computable]
        if len(unavailable) == len(names):
            self._fail(f"{folder}: the model uses no composition feature (e.g. {names[0]!r}): it cannot "
                       "predict from a formula")
            return False
        self.model, self.intervals, self.card, self.feature_names = model, intervals, card, names
        self.unavailable = unavailable
        self.target = str(card.get("data", {}).get("target", "property"))
        m = card.get("metrics", {})
        metric = (f"CV MAE {m['mae_mean']:.3g} ± {m.get('mae_std', float('nan')):.2g}" if "mae_mean" in m else "")
        split = card.get("split", {}).get("description", "")
        iv = card.get("intervals", {})
        model_name = html.escape(str(card.get("model", {}).get("name", "?")))
        notes = [f"predicts <b>{html.escape(self.target)}</b> with {model_name} from {len(names)} features",
                 html.escape(f"{metric} ({split})") if metric else "",
                 (f"intervals: {iv.get('target', 0.9):.0%} conformal" if intervals is not None
                  else "no intervals saved")]
        if self.unavailable:
            notes.append(f"<span style='color:#8a5300'>{len(self.unavailable)} features (structure/process, e.g. "
                         f"{html.escape(self.unavailable[0])!s}) cannot come from a formula: they are set to the "
                         "training median, so the prediction ignores them</span>")
        self.model_info.value = "<p>" + "; ".join(n for n in notes if n) + "</p>"
        self.predict_button.disabled = False
        self.state = READY
        self._say(f"model loaded from {folder.name or folder}", "info")
        return True

    # ------------------------------------------------------------------ predictions
    def features_for(self, formulas: list[str]) -> tuple[pd.DataFrame, list[str]]:
        """The model's feature matrix for ``formulas`` (model card's column order) and per-formula errors."""
        from battlab.featurize import composition_features, parse_compositions

        errors = parse_compositions(formulas)[2]
        comp = composition_features(formulas, preset=self.preset, working_ion=self.working_ion)
        X = pd.DataFrame({n: comp[_base_name(n)] if _base_name(n) in comp else np.nan
                          for n in self.feature_names}, index=comp.index).astype(float)
        return X, errors

    def predict(self, formulas: list[str] | str, *, append: bool = True) -> pd.DataFrame:
        """Predict for formulas; returns their rows (also appended to ``results``). Never raises for a
        bad formula (its row has ``error``); a missing model gives an empty frame and a message."""
        if isinstance(formulas, str):
            formulas = split_formulas(formulas)
        formulas = [str(f).strip() for f in formulas if str(f).strip()]
        if self.model is None:
            self._fail("no model loaded")
            return pd.DataFrame(columns=RESULT_COLUMNS)
        if not formulas:
            self._fail("type at least one formula")
            return pd.DataFrame(columns=RESULT_COLUMNS)
        if len(formulas) > self.max_formulas:
            self._fail(f"{len(formulas)} formulas: at most {self.max_formulas} at once")
            return pd.DataFrame(columns=RESULT_COLUMNS)
        self.state = ACTIVE
        self._show_progress(0, len(formulas))
        try:
            rows = self._predict_rows(formulas)
        except Exception as exc:  # a bug or an odd model: shown, never raised into the kernel
            self._fail(f"prediction failed ({type(exc).__name__}: {exc})")
            return pd.DataFrame(columns=RESULT_COLUMNS)
        finally:
            self._show_progress(None)
        if append and len(self.results):
            self.results = pd.concat([self.results, rows], ignore_index=True)
        else:
            self.results = rows
        n_bad = int((rows["error"] != "").sum())
        self.state = SUCCESS
        capped = (f"; reasons for the first {self.max_reason_rows} only"
                  if self.reasons and len(rows) > self.max_reason_rows else "")
        self._say(f"{len(rows) - n_bad} predicted" + (f", {n_bad} not understood (see 'error')" if n_bad else "")
                  + capped, "success" if not n_bad else "info")
        return rows

    def _predict_rows(self, formulas: list[str]) -> pd.DataFrame:
        X, errors = self.features_for(formulas)
        ok = np.array([not e for e in errors], dtype=bool)
        pred = np.full(len(formulas), np.nan)
        low, high = np.full(len(formulas), np.nan), np.full(len(formulas), np.nan)
        reasons = [""] * len(formulas)
        chunk = 500
        Xok = X.loc[ok]
        for start in range(0, len(Xok), chunk):
            part = Xok.iloc[start:start + chunk]
            where = np.flatnonzero(ok)[start:start + chunk]
            values = part.to_numpy(dtype=float)
            pred[where] = self.model.predict(values)
            if self.intervals is not None:
                _, bounds = self.intervals.predict_interval(values)
                low[where], high[where] = bounds[:, 0, 0], bounds[:, 1, 0]
            n_reason = max(0, min(len(part), self.max_reason_rows - start))
            for i, text in zip(where[:n_reason], self._reasons(part.iloc[:n_reason]), strict=True):
                reasons[i] = text
            self._show_progress(start + len(part), len(formulas))
        return pd.DataFrame({"formula": formulas, "prediction": pred, "low": low, "high": high,
                             "reason": reasons, "error": errors})

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
        """Predict the formulas typed in the text box (the Predict button)."""
        return self.predict(self.text.value)

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = upload_entries(change["new"])
        if not files:
            return
        try:
            self.load_list(files[0].get("name", "formulas.csv"), files[0]["content"])
        finally:
            self.upload.value = ()

    def load_list(self, name: str, content: bytes | memoryview) -> pd.DataFrame:
        """Predict every formula of an uploaded table (its formula column, else its first column)."""
        from battlab.curate import find_formula_column

        if self.model is None:
            self._fail("no model loaded")
            return pd.DataFrame(columns=RESULT_COLUMNS)
        try:
            table = read_upload(name, content)
        except BattlabError as exc:
            self._fail(str(exc))
            return pd.DataFrame(columns=RESULT_COLUMNS)
        except Exception as exc:
            self._fail(f"{name}: cannot read the file ({type(exc).__name__}: {exc})")
            return pd.DataFrame(columns=RESULT_COLUMNS)
        df = table.data
        column = find_formula_column([str(c) for c in df.columns]) or (df.columns[0] if len(df.columns) else None)
        if column is None:
            self._fail(f"{name}: no column")
            return pd.DataFrame(columns=RESULT_COLUMNS)
        return self.predict([str(v) for v in df[column].tolist()])

    def clear(self) -> None:
        """Forget the predictions so far."""
        self.results = pd.DataFrame(columns=RESULT_COLUMNS)
        self.download.value = ""
        if self.model is not None:
            self.state = READY

    @tl.observe("results")
    def _on_results(self, change: dict[str, Any]) -> None:
        df = change["new"]
        self.export_button.disabled = df is None or not len(df)
        shown = df.rename(columns={"prediction": f"predicted {self.target}"}) if self.target else df
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


def _base_name(name: str) -> str:
    return name[: -len(_FEATURE_SUFFIX)] if name.endswith(_FEATURE_SUFFIX) else name
