"""Cell cycling data: cycler files, the Severson/Attia dataset, early-life features and cycle-life models.

Submodules (imported on use, so that ``import battlab.cycling`` stays light):

- :mod:`battlab.cycling.read`: cycler files (every format of :mod:`battlab.cycling.formats`: BioLogic, Neware,
  Arbin, Maccor, Novonix, Indigo, PEC, BaSyTec, BDF, plain CSV) -> :class:`CellData`
- :mod:`battlab.cycling.batch`: many cycler files (a folder, a glob, a list) -> :class:`CellBatch` with a summary
- :mod:`battlab.cycling.curves`: discharge curves Q(V) per cycle (:class:`DischargeCurves`), the Severson dataset
- :mod:`battlab.cycling.labels`: cycle life (cycles to X % of nominal or initial capacity, right-censored cells
  kept and flagged), knee and knee-onset (Fermin-Cueto et al. 2020) -> :class:`LifeLabels`
- :mod:`battlab.cycling.features`: early-life featurizers (dQ(V), capacity fade, whole-curve components)
- :mod:`battlab.cycling.models`: cycle-life regression and classification, tuned on training cells only
- :mod:`battlab.cycling.owncells`: a lab's own cycler files -> labels, early-life features, a tuned model
  (:func:`fit_cycle_life_cells`), predictions checked against what the cells already show
- :mod:`battlab.cycling.domain`: the domain of applicability a model learns from its training cells
- :mod:`battlab.cycling.synthetic`: cycler files of synthetic cells with known lives (the offline example)
- :mod:`battlab.cycling.cli`: ``battlab cycling read|fit|predict|features|labels|example``

Example
-------
>>> from battlab.cycling import read_cycler_file
>>> callable(read_cycler_file)
True
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "CellData": "read", "read_cycler_file": "read", "detect_format": "read", "summarize_cycles": "read",
    "CellBatch": "batch", "read_cycler_files": "batch",
    "DischargeCurves": "curves", "curves_from_cell": "curves", "load_severson": "curves",
    "DeltaQFeatures": "features", "CapacityFadeFeatures": "features", "DeltaQComponents": "features",
    "early_life_features": "features",
    "LifeLabels": "labels", "capacity_table": "labels", "knee_points": "labels", "label_cells": "labels",
    "CycleLifeModel": "models", "fit_cycle_life": "models",
    "fit_cycle_life_cells": "owncells", "cell_features": "owncells", "predict_cells": "owncells",
    "DomainOfApplicability": "domain", "write_example_cells": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"battlab.cycling.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'battlab.cycling' has no attribute {name!r}")
