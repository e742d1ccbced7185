"""Reusable ipywidgets components (results exposed as traitlets), shared by the notebooks and the
Voila apps in ``widgets/``.

Wire them with ``traitlets.dlink``, e.g. an upload feeding a feature explorer:

>>> from traitlets import dlink
>>> from battlab.widgets import DataUploader, FeatureExplorer
>>> up, fx = DataUploader(), FeatureExplorer()
>>> _ = dlink((up, "curated"), (fx, "curated"))
"""

from __future__ import annotations

import importlib

#: Widget name -> its module. Imported on first use, so that ``battlab.widgets.status`` (the first thing a cold
#: app shows) costs only ipywidgets, and the electrode designer (PyBaMM, pymoo) or the SHAP explorer (shap)
#: load only when asked for.
_WIDGETS = {
    "AppStatus": "status",
    "CurationReport": "data",
    "DataUploader": "data",
    "example_path": "data",
    "FeatureExplorer": "features",
    "Predictor": "predictor",
    "TuningMonitor": "tuning",
    "ElectrodeDesigner": "electrode",
    "ShapExplorer": "shap_explorer",
    "CycleLifePredictor": "cycle_life",
    "NextExperiments": "next_experiments",
    "SohSorter": "soh",
    "DesignScreener": "design",
}
__all__ = sorted(_WIDGETS)


def __getattr__(name: str):
    if name in _WIDGETS:
        return getattr(importlib.import_module(f"battlab.widgets.{_WIDGETS[name]}"), name)
    raise AttributeError(f"module 'battlab.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WIDGETS))
