"""Features of a pulse test, in the house featurizer style: any table of pulse responses in, features out.

A pulse test (PulseBat's layout, Tao et al. 2024) gives 21 voltages per row: ``U1`` the open-circuit voltage after
a rest, then for each pulse amplitude the voltage at the start and at the end of a charge pulse, of the rest after
it, of a discharge pulse and of the rest after it (8 voltages; the last amplitude may stop after its first rest).
:class:`PulseFeatures` reads those voltages from any table through a column mapping (a lab's own names), with the
lab's own amplitudes (C-rates of the nominal capacity) and nominal capacity, and computes:

- the raw voltages, under the canonical names ``U1``... (so a model trained on PulseBat reads a lab's table);
- ``OCV_V``;
- per amplitude and direction: the instantaneous (ohmic) resistance ``R0`` (voltage step at the pulse start over
  the current), the resistance over the whole pulse ``R5s`` (end of pulse vs the voltage before it), the
  polarisation resistance ``Rp = R5s - R0`` (the slow, diffusion part), the relaxation ``relax`` (voltage change
  over the rest after the pulse, V) - in mOhm with the nominal capacity, and as capacity-normalised resistances
  ``r`` (V per C-rate, i.e. Ohm Ah) that compare cells of different sizes;
- polarisation against amplitude: the slope of the 5 s voltage step against the C-rate over all amplitudes
  (``dU5s_dC_chg``) and the growth of ``r5s`` from the smallest to the largest amplitude (``r5s_nonlinearity``).

Errors are one line naming the row and the column (a voltage that is not a number) or the missing columns.

Example
-------
>>> import pandas as pd
>>> row = {"U1": 3.60, "U2": 3.62, "U3": 3.64, "U4": 3.615, "U5": 3.605, "U6": 3.585, "U7": 3.565,
...        "U8": 3.59, "U9": 3.60}
>>> f = PulseFeatures(amplitudes_C=(0.5,), last_complete=True, nominal_capacity=2.0)
>>> table = f.fit_transform(pd.DataFrame([row]))
>>> round(float(table.loc[0, "R0_chg_0.5C_mOhm"]), 1), round(float(table.loc[0, "r5s_dis_0.5C_VperC"]), 3)
(20.0, 0.08)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from battlab.errors import BattlabError

__all__ = ["PulseFeatures", "PULSEBAT_AMPLITUDES_C", "PULSE_STEPS", "TAO_2024", "pulse_voltage_names"]

TAO_2024 = ("Tao, S. et al., Generative learning assisted state-of-health estimation for sustainable battery "
            "recycling with random retirement conditions, Nat. Commun. 15 (2024), "
            "doi:10.1038/s41467-024-54454-0")
#: PulseBat's amplitudes (C-rates) of the 5 s pulses in U1..U21.
PULSEBAT_AMPLITUDES_C = (0.5, 1.0, 1.5)
#: The 8 voltages of one amplitude, in order: start/end of the charge pulse, the rest, the discharge pulse, the rest.
PULSE_STEPS = ("chg_start", "chg_end", "rest1_start", "rest1_end", "dis_start", "dis_end", "rest2_start", "rest2_end")


def pulse_voltage_names(n_amplitudes: int, last_complete: bool = False) -> list[str]:
    """Canonical names of a pulse test's voltages: ``U1`` (OCV), then 8 per amplitude (4 for an incomplete last one).

    Example
    -------
    >>> names = pulse_voltage_names(3)
    >>> len(names), names[0], names[-1]
    (21, 'U1', 'U21')
    """
    n = 1 + 8 * n_amplitudes - (0 if last_complete else 4)
    return [f"U{i}" for i in range(1, n + 1)]


def _label(amplitude: float) -> str:
    return f"{amplitude:g}C"


class PulseFeatures(TransformerMixin, BaseEstimator):
    """Raw and derived features of a pulse test, one row per (cell, SOC) row of a table.

    Parameters
    ----------
    columns : dict of str to str, optional
        Canonical voltage name (``U1``...) -> the table's column. Default: the canonical names themselves.
    amplitudes_C : tuple of float
        Pulse amplitudes in C (of the nominal capacity), in the order of the test (PulseBat: 0.5, 1, 1.5 C).
    last_complete : bool
        Whether the last amplitude has all 8 voltages (PulseBat: False, it stops after the first rest).
    nominal_capacity : float or str, optional
        Nominal capacity in Ah, or the name of a column holding it; used for resistances in mOhm. Without it
        only the capacity-normalised ones (V per C) are computed.
    raw : bool
        Whether the raw voltages are features too.

    Example
    -------
    >>> PulseFeatures().feature_labels()[:3]
    ['U1', 'U2', 'U3']
    >>> len(PulseFeatures(raw=False, nominal_capacity=None).feature_labels())
    23
    """

    family = "pulse"

    def __init__(self, columns: dict[str, str] | None = None, amplitudes_C: tuple[float, ...] = PULSEBAT_AMPLITUDES_C,
                 last_complete: bool = False, nominal_capacity: float | str | None = "nominal_capacity_Ah",
                 raw: bool = True):
        self.columns = columns
        self.amplitudes_C = amplitudes_C
        self.last_complete = last_complete
        self.nominal_capacity = nominal_capacity
        self.raw = raw

    # ----------------------------------------------------------------- layout
    def _names(self) -> list[str]:
        return pulse_voltage_names(len(self.amplitudes_C), self.last_complete)

    def _column(self, name: str) -> str:
        return (self.columns or {}).get(name, name)

    def required_columns(self) -> list[str]:
        """The table columns :meth:`transform` reads."""
        cols = [self._column(n) for n in self._names()]
        if isinstance(self.nominal_capacity, str):
            cols.append(self.nominal_capacity)
        return cols

    def _steps(self) -> list[tuple[float, dict[str, str], str]]:
        """(amplitude, step -> canonical name, name of the voltage just before the charge pulse)."""
        names, out = self._names(), []
        before = "U1"
        for k, amp in enumerate(self.amplitudes_C):
            block = names[1 + 8 * k: 9 + 8 * k]
            steps = dict(zip(PULSE_STEPS, block, strict=False))  # the last block may be half
            out.append((float(amp), steps, before))
            before = steps.get("rest2_end", before)
        return out

    def _derived(self) -> list[tuple[str, str]]:
        """(label, unit) of the derived features, in order."""
        labels = [("OCV_V", "V")]
        with_ohm = self.nominal_capacity is not None
        for amp, steps, _ in self._steps():
            a = _label(amp)
            dirs = ["chg"] + (["dis"] if "dis_end" in steps else [])
            for d in dirs:
                for kind in ("R0", "R5s", "Rp"):
                    if with_ohm:
                        labels.append((f"{kind}_{d}_{a}_mOhm", "mOhm"))
                    labels.append((f"{kind.lower()}_{d}_{a}_VperC", "V/C"))
                labels.append((f"relax_{d}_{a}_V", "V"))
        if len(self.amplitudes_C) > 1:
            labels += [("dU5s_dC_chg_V", "V/C"), ("r5s_nonlinearity_chg_VperC", "V/C")]
        return labels

    def feature_labels(self) -> list[str]:
        """Names of the features, in order."""
        return (self._names() if self.raw else []) + [label for label, _ in self._derived()]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_labels(), dtype=object)

    def feature_info(self) -> pd.DataFrame:
        """One row per feature: family, property and unit (for :func:`battlab.explain.explain`)."""
        raw = [(n, "V") for n in self._names()] if self.raw else []
        rows = raw + self._derived()
        return pd.DataFrame({"feature": [r[0] for r in rows], "family": self.family,
                             "property": [r[0] for r in rows], "unit": [r[1] for r in rows]})

    def citations(self) -> list[str]:
        return [TAO_2024]

    def implementors(self) -> list[str]:
        return ["battlab developers"]

    # ----------------------------------------------------------------- computing
    def fit(self, X: Any, y: Any = None) -> PulseFeatures:
        self._check_params()
        self.n_features_in_ = len(self.required_columns())
        return self

    def _check_params(self) -> None:
        amps = np.asarray(self.amplitudes_C, dtype=float)
        if amps.size == 0 or not np.all(np.isfinite(amps)) or np.any(amps <= 0):
            raise BattlabError(f"amplitudes_C must be positive C-rates, got {self.amplitudes_C!r}")
        unknown = sorted(set(self.columns or {}) - set(self._names()))
        if unknown:
            raise BattlabError(f"column mapping names unknown voltage(s) {unknown}; the test with "
                               f"{len(self.amplitudes_C)} amplitudes has {self._names()[0]}..{self._names()[-1]}")

    def voltages(self, X: pd.DataFrame) -> pd.DataFrame:
        """The table's voltages under canonical names, as floats; a missing column or a value that is not a
        number is a one-line error naming it (and the row)."""
        if not isinstance(X, pd.DataFrame):
            raise BattlabError(f"expected a table (pandas DataFrame) of pulse voltages, got {type(X).__name__}")
        self._check_params()
        missing = [c for c in self.required_columns() if c not in X.columns]
        if missing:
            raise BattlabError(f"the pulse table has no column(s) {missing}; it has {list(X.columns)[:12]}"
                               " (map your columns with columns={'U1': 'your name', ...})")
        out = {}
        for name in self._names():
            col = self._column(name)
            values = pd.to_numeric(X[col], errors="coerce")
            bad = values.isna() & X[col].notna()
            if bad.any():
                row = bad.index[bad.to_numpy()][0]
                raise BattlabError(f"row {row}, column {col!r}: {X[col][row]!r} is not a voltage (a number in V)")
            out[name] = values.astype(float)
        return pd.DataFrame(out, index=X.index)

    def _capacity(self, X: pd.DataFrame) -> np.ndarray | None:
        if self.nominal_capacity is None:
            return None
        if isinstance(self.nominal_capacity, str):
            q = pd.to_numeric(X[self.nominal_capacity], errors="coerce")
            bad = ~(q > 0)
            if bad.any():
                row = q.index[bad.to_numpy()][0]
                raise BattlabError(f"row {row}, column {self.nominal_capacity!r}: "
                                   f"{X[self.nominal_capacity][row]!r} is not a nominal capacity (Ah > 0)")
            return q.to_numpy(dtype=float)
        q = float(self.nominal_capacity)
        if not q > 0:
            raise BattlabError(f"nominal_capacity must be in Ah and positive, got {self.nominal_capacity!r}")
        return np.full(len(X), q)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Features of every row of ``X`` (same index); missing voltages give NaN features (imputed by models)."""
        U = self.voltages(X)
        q = self._capacity(X)
        out: dict[str, np.ndarray] = {}
        if self.raw:
            out.update({n: U[n].to_numpy() for n in self._names()})
        out["OCV_V"] = U["U1"].to_numpy()
        steps_all = self._steps()
        r5s_chg, dU5s = [], []
        for amp, steps, before in steps_all:
            a = _label(amp)
            v = {k: U[n].to_numpy() for k, n in steps.items()}
            vb = U[before].to_numpy()
            parts = {"chg": (v["chg_start"] - vb, v["chg_end"] - vb, v["rest1_start"] - v["rest1_end"])}
            if "dis_end" in v:
                parts["dis"] = (v["rest1_end"] - v["dis_start"], v["rest1_end"] - v["dis_end"],
                                v["rest2_end"] - v["rest2_start"])
            for d, (d0, d5, relax) in parts.items():
                for kind, du in (("R0", d0), ("R5s", d5), ("Rp", d5 - d0)):
                    if q is not None:
                        out[f"{kind}_{d}_{a}_mOhm"] = 1000 * du / (amp * q)
                    out[f"{kind.lower()}_{d}_{a}_VperC"] = du / amp
                out[f"relax_{d}_{a}_V"] = relax
            r5s_chg.append(parts["chg"][1] / amp)
            dU5s.append(parts["chg"][1])
        if len(steps_all) > 1:
            amps = np.asarray([s[0] for s in steps_all])
            du = np.vstack(dU5s)  # amplitudes x rows
            centred = amps - amps.mean()
            out["dU5s_dC_chg_V"] = (centred @ (du - du.mean(axis=0))) / (centred @ centred)
            out["r5s_nonlinearity_chg_VperC"] = r5s_chg[-1] - r5s_chg[0]
        frame = pd.DataFrame(out, index=X.index)
        return frame[self.feature_labels()]

    def featurize(self, row: dict[str, Any] | pd.Series) -> list[float]:
        """Features of one pulse test (a mapping of the table's column names to values).

        Example
        -------
        >>> f = PulseFeatures(amplitudes_C=(1.0,), last_complete=True, nominal_capacity=1.0, raw=False)
        >>> values = f.featurize({f"U{i}": v for i, v in enumerate([3.5, 3.52, 3.55, 3.52, 3.51, 3.49, 3.46,
        ...                                                         3.49, 3.50], start=1)})
        >>> dict(zip(f.feature_labels(), values))["R5s_chg_1C_mOhm"]
        50.0
        """
        frame = pd.DataFrame([dict(row)])
        return [round(float(v), 12) for v in self.transform(frame).iloc[0]]
