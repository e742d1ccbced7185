"""State of health from pulse tests: features (:mod:`battlab.health.pulse`) and models (:mod:`battlab.health.soh`)."""

from battlab.health.pulse import PulseFeatures

__all__ = ["PulseFeatures"]
