"""Planning the next experiments: Bayesian optimization and active learning with an ask/tell interface.

- :class:`Campaign` — ``suggest(batch_size)`` -> designs with predicted value, uncertainty and acquisition
  value; ``observe(designs, results)``; ``save(dir)`` / ``Campaign.load(dir)``.
- Search spaces: :class:`CandidatePool` (a table of candidates with features) and :class:`ProcessWindow`
  (bounds, integers, choices and constraints).
- Surrogates (:mod:`battlab.plan.surrogates`): extra trees / random forests, bagged models of the zoo
  (LightGBM), scikit-learn Gaussian processes, and :class:`GroupCalibrated` uncertainty calibrated on
  held-out chemical systems.
- Acquisitions (:mod:`battlab.plan.acquisition`): expected improvement, upper confidence bound, Thompson
  sampling, pure exploration (and pure exploitation as a baseline).
- :func:`battlab.plan.recommend.next_experiments` — the table of experiments done and a candidate pool or a
  process window in, a ranked batch with predicted value, uncertainty and the SHAP reason out
  (:class:`~battlab.plan.recommend.Recommendation`; the ``next_experiments`` app).
- :class:`ElectrodeCampaign` (:mod:`battlab.plan.electrode`) — the electrode closed loop as an ask/tell
  campaign: a Latin hypercube, then PSO on the grey-box surrogate of the virtual line, refitted after each
  result table (:func:`battlab.electrode.optimize.closed_loop` drives it).
- :mod:`battlab.plan.screening` — retrospective screening on a fully measured table: enhancement and
  acceleration factors over random search (Rohr et al., Chem. Sci. 2020).

Example
-------
>>> from battlab.plan import Campaign, ProcessWindow
>>> window = ProcessWindow({"x": (0.0, 1.0), "y": (0.0, 1.0)}, constraints=["x + y <= 1.5"])
>>> campaign = Campaign(window, model="gp", acquisition="ucb", seed=1)
>>> for _ in range(3):
...     batch = campaign.suggest(4)
...     _ = campaign.observe(batch, -(batch["x"] - 0.3) ** 2 - (batch["y"] - 0.6) ** 2)
>>> len(campaign.observations), round(float(campaign.best["result"]), 2) > -0.05
(12, True)
"""

from battlab.plan.acquisition import ACQUISITIONS
from battlab.plan.campaign import BATCHES, STATE_VERSION, Campaign
from battlab.plan.electrode import ElectrodeCampaign
from battlab.plan.recommend import Recommendation, next_experiments
from battlab.plan.space import CandidatePool, Param, ProcessWindow
from battlab.plan.surrogates import SURROGATES, Bagged, GaussianProcess, GroupCalibrated, TreeEnsemble, make_surrogate

__all__ = ["ACQUISITIONS", "BATCHES", "SURROGATES", "STATE_VERSION", "Bagged", "Campaign", "CandidatePool",
           "ElectrodeCampaign", "GaussianProcess", "GroupCalibrated", "Param", "ProcessWindow", "Recommendation",
           "TreeEnsemble", "make_surrogate", "next_experiments"]
