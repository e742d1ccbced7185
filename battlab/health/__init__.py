"""State of health from pulse tests: features (:mod:`battlab.health.pulse`), models (:mod:`battlab.health.soh`),
sorting cells into reuse / repurpose / recycle (:mod:`battlab.health.sort`) and a synthetic example table
(:mod:`battlab.health.example`); rows generated at missing SOC levels come from :mod:`battlab.generate`.

Example
-------
>>> from battlab.health import PulseFeatures, fit_soh
>>> PulseFeatures().citations()[0].startswith("Tao, S.")
True
"""

from battlab.health.example import example_pulse_table, load_pulse_table
from battlab.health.pulse import PulseFeatures
from battlab.health.soh import SPLITS, SohModel, evaluate_soh, fit_soh, generated_rows
from battlab.health.sort import DECISIONS, decision_counts, sort_cells

__all__ = ["PulseFeatures", "SohModel", "fit_soh", "evaluate_soh", "generated_rows", "SPLITS", "example_pulse_table",
           "sort_cells", "decision_counts", "DECISIONS", "load_pulse_table"]
