"""The step artefacts print as one short line (issue 25: a TunedModel printed 10,807 characters)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from battlab import steps


def test_every_step_artefact_prints_one_short_line():
    rng = np.random.default_rng(0)
    raw = pd.DataFrame({"gap": rng.uniform(50, 200, 60), "solids": rng.uniform(0.5, 0.7, 60)})
    raw["spread"] = 0.001 * raw["gap"] + rng.normal(scale=0.01, size=60)
    curated = steps.curate(raw, target="spread")
    fs = steps.featurize(curated)
    tuned = steps.tune(fs, models=("ridge",), n_trials=2, storage="sqlite:///:memory:", progress=False)
    ex = steps.explain(tuned, fs)
    texts = {type(a).__name__: repr(a) for a in (curated, fs, tuned, ex)}
    for name, text in texts.items():
        assert text.startswith(f"{name}(") and "\n" not in text and len(text) < 300, text
    assert "60 rows -> 60 kept" in texts["CuratedSet"]
    assert "2 of 2 features kept" in texts["FeatureSet"] and "split random" in texts["FeatureSet"]
    assert texts["TunedModel"].startswith("TunedModel(ridge on spread, 2 features; CV MAE ")
    assert "(random 5-fold (seed 0))" in texts["TunedModel"] and "intervals cover" in texts["TunedModel"]
    assert "60 of 60 rows x 2 features of spread; top feature gap" in texts["Explanation"]
