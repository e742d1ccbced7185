"""Retrospective test of the candidate generator: would it have proposed known electrodes it never saw?

:func:`substitution_recall` holds out a random share of the known electrode compositions (ion-rich formulas of
the Materials Project insertion electrodes, per working ion), generates candidates by ionic substitution
(:func:`battlab.design.generate`) from the rest, ranks the pooled candidates by substitution probability (known
compositions removed: they are not new) and reports the share of held-out compositions among the top ``N``.
A random order of the same pool is the baseline: its expected recall at ``N`` is ``coverage * N / pool size``.

Example
-------
>>> known = pd.DataFrame({"working_ion": ["Li"] * 4,
...                       "formula_discharge": ["LiFePO4", "LiMnPO4", "LiCoPO4", "LiNiPO4"]})
>>> r = substitution_recall(known, holdout=0.5, n_values=(5,), seed=0)
>>> r.n_held_out, 0.0 <= r.recall[5] <= 1.0
(2, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from battlab.errors import BattlabError

__all__ = ["RecallResult", "substitution_recall"]


@dataclass
class RecallResult:
    """Recall of held-out compositions among the top ``N`` candidates, for each ``N``; the pool; the baseline."""

    recall: dict[int, float]
    random_recall: dict[int, float]
    coverage: float
    n_held_out: int
    n_parents: int
    pool_size: int
    ranked: pd.DataFrame = field(repr=False)
    held_out: list[tuple[str, str]] = field(repr=False, default_factory=list)


def substitution_recall(electrodes: pd.DataFrame, *, ions: Sequence[str] | None = None, holdout: float = 0.1,
                        n_values: Sequence[int] = (100, 1000), seed: int = 0, threshold: float = 1e-3,
                        max_substituted: int | None = 1, progress=None) -> RecallResult:
    """Hold out ``holdout`` of the known (ion, composition) pairs, generate from the rest, score the top ``N``.

    ``progress``: an optional callable, called with (parents done, parents) every 100 parents.
    """
    from pymatgen.core import Composition

    from battlab.design.candidates import substitute

    if not 0 < holdout < 1:
        raise BattlabError(f"holdout must be between 0 and 1, got {holdout!r}")
    pairs = sorted({(str(ion), Composition(f).reduced_formula)
                    for ion, f in zip(electrodes["working_ion"], electrodes["formula_discharge"], strict=True)})
    ions = list(ions) if ions is not None else sorted({ion for ion, _ in pairs})
    rng = np.random.default_rng(seed)
    n_out = max(1, int(round(holdout * len(pairs))))
    out_idx = set(rng.choice(len(pairs), n_out, replace=False).tolist())
    held = [p for i, p in enumerate(pairs) if i in out_idx and p[0] in ions]
    rest = [p for i, p in enumerate(pairs) if i not in out_idx]
    parents = sorted({f for _, f in rest})
    known = set(rest)
    best: dict[tuple[str, str], tuple[float, str, str]] = {}  # (ion, formula) -> (probability, parent, substitution)
    for k, parent in enumerate(parents):  # what generate(parents, ion, top=None) proposes, without its table
        if progress is not None and k % 100 == 0:
            progress(k, len(parents))
        comp = Composition(parent)
        for ion in ions:
            recs, _ = substitute(comp, ion, threshold=threshold, max_substituted=max_substituted)
            for rec in recs:
                key = (ion, rec["composition"].reduced_formula)
                if key not in best or rec["probability"] > best[key][0]:
                    best[key] = (rec["probability"], parent, "; ".join(f"{o}->{n}" for o, n in rec["species"].items()))
    pool = pd.DataFrame([{"formula": f, "working_ion": i, "parent": v[1], "substitution": v[2], "probability": v[0]}
                         for (i, f), v in best.items()],
                        columns=["formula", "working_ion", "parent", "substitution", "probability"])
    pool = pool.sort_values(["probability", "working_ion", "formula"], ascending=[False, True, True], kind="stable")
    pool = pool.drop_duplicates(["working_ion", "formula"]).reset_index(drop=True)
    pool = pool[[(i, f) not in known for i, f in zip(pool["working_ion"], pool["formula"], strict=True)]]
    pool = pool.reset_index(drop=True)
    target = set(held)
    hit = np.array([(i, f) in target for i, f in zip(pool["working_ion"], pool["formula"], strict=True)])
    pool["held_out"] = hit
    n_held = len(held)
    coverage = float(hit.sum() / n_held) if n_held else float("nan")
    recall = {int(n): float(hit[:n].sum() / n_held) if n_held else float("nan") for n in n_values}
    random = {int(n): coverage * min(1.0, n / len(pool)) if len(pool) else 0.0 for n in n_values}
    return RecallResult(recall, random, coverage, n_held, len(parents), len(pool), pool, held)
