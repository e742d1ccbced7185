"""Reusable ipywidgets components (results exposed as traitlets), shared by the notebooks and the
Voila apps in ``widgets/``.

Wire them with ``traitlets.dlink``, e.g. an upload feeding a feature explorer:

>>> from traitlets import dlink
>>> from battlab.widgets import DataUploader, FeatureExplorer
>>> up, fx = DataUploader(), FeatureExplorer()
>>> _ = dlink((up, "curated"), (fx, "curated"))
"""

from battlab.widgets.data import CurationReport, DataUploader, example_path
from battlab.widgets.features import FeatureExplorer
from battlab.widgets.predictor import Predictor
from battlab.widgets.tuning import TuningMonitor

__all__ = ["CurationReport", "DataUploader", "FeatureExplorer", "Predictor", "TuningMonitor", "example_path"]


def __getattr__(name: str):
    # Imported on use: the electrode designer needs PyBaMM and pymoo, the SHAP explorer needs shap.
    if name == "ElectrodeDesigner":
        from battlab.widgets.electrode import ElectrodeDesigner

        return ElectrodeDesigner
    if name == "ShapExplorer":
        from battlab.widgets.shap_explorer import ShapExplorer

        return ShapExplorer
    raise AttributeError(f"module 'battlab.widgets' has no attribute {name!r}")
