"""State of health from pulse tests: features (:mod:`battlab.health.pulse`) and models (:mod:`battlab.health.soh`);
rows generated at missing SOC levels come from :mod:`battlab.generate`.

Example
-------
>>> from battlab.health import PulseFeatures, fit_soh
>>> PulseFeatures().citations()[0].startswith("Tao, S.")
True
"""

from battlab.health.pulse import PulseFeatures
from battlab.health.soh import SPLITS, SohModel, evaluate_soh, fit_soh, generated_rows

__all__ = ["PulseFeatures", "SohModel", "fit_soh", "evaluate_soh", "generated_rows", "SPLITS"]
