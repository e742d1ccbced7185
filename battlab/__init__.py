"""battlab: a Jupyter-first environment for data-driven battery research.

The workflow is curate -> featurize -> tune -> explain -> optimize; each step is a
module here (``battlab.curate``, ...) and a papermill notebook in ``notebooks/``.

Example
-------
>>> import battlab
>>> from battlab.datasets import load_dataset
>>> df, card = load_dataset("exp_formation_enthalpy")  # doctest: +SKIP
"""

import os

# PyBaMM may ask about telemetry on import; a prompt would hang papermill, CI and Voila.
os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

__version__ = "0.1.0"

from battlab.errors import BattlabError, DataFileError, DatasetError  # noqa: E402

__all__ = ["BattlabError", "DataFileError", "DatasetError", "__version__"]
