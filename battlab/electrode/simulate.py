"""The physics of the virtual line: a PyBaMM DFN cell built around a processed cathode.

Each design is assembled as a full cell: the processed positive electrode, the parameter set's
negative electrode sized by an N/P ratio, and its separator. Lithium is placed the way a real cell is
built (empty anode, cathode at the set's lithiated ratio), then brought to full charge with
``set_initial_state(1.0)``; loading the set's default concentrations instead would add lithium as the
anode grows. The thermodynamic capacity of the design (``ElectrodeSOHSolver``) defines 1C.

A simulation that fails (solver error after a retry with tighter tolerances, or an immediate cut-off)
returns ``status="failed"`` with its ``reason``; it never raises and never reports a number it did not
compute.

Example
-------
>>> r = simulate({"active_weight_fraction": 0.94, "solid_content": 0.65, "coating_gap_um": 180.0,
...               "line_load_N_per_mm": 500.0})  # doctest: +SKIP
>>> r["status"], round(r["specific_energy_Wh_kg"])  # doctest: +SKIP
('ok', 296)
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from battlab.electrode.process import INACTIVE, MATERIALS, ProcessSettings, process_electrode

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

__all__ = ["OUTPUTS", "simulate", "stack_mass_volume", "theoretical_cell"]

#: Headline outputs of :func:`simulate` (low rate = first C-rate, high rate = last C-rate).
OUTPUTS: dict[str, str] = {
    "capacity_mAh_cm2": "discharge capacity at the low rate [mA.h.cm-2]",
    "capacity_high_mAh_cm2": "discharge capacity at the high rate [mA.h.cm-2]",
    "mean_voltage_V": "mean discharge voltage at the low rate [V]",
    "mean_voltage_high_V": "mean discharge voltage at the high rate [V]",
    "rate_capability": "capacity(high rate) / capacity(low rate)",
    "specific_energy_Wh_kg": "stack specific energy at the low rate [W.h.kg-1]",
    "energy_density_Wh_L": "stack energy density at the low rate [W.h.L-1]",
    "specific_energy_high_Wh_kg": "stack specific energy at the high rate [W.h.kg-1]",
    # at a fixed C-rate this grows with loading (more current per area): not a rate-capability measure
    "specific_power_W_kg": "mean stack specific power during the high-rate discharge [W.kg-1]",
}

_FARADAY = 96485.33212  # C/mol
_ANODE_INACTIVE_DENSITY = 1800.0  # kg/m3, binder + carbon of the counter electrode (if any)
_COLLECTOR_DEFAULTS = {"Positive": (15e-6, 2700.0), "Negative": (10e-6, 8960.0)}  # Al, Cu: sets lacking them


@functools.lru_cache(maxsize=8)
def _baseline(parameter_set: str) -> dict[str, float]:
    """Lithiated ratio of the cathode and its charged stoichiometry for a parameter set (cached)."""
    import pybamm

    pv = pybamm.ParameterValues(parameter_set)
    eps_n = pv["Negative electrode active material volume fraction"] * pv["Negative electrode thickness [m]"]
    eps_p = pv["Positive electrode active material volume fraction"] * pv["Positive electrode thickness [m]"]
    c_n0, c_p0 = pv["Initial concentration in negative electrode [mol.m-3]"], \
        pv["Initial concentration in positive electrode [mol.m-3]"]
    c_pmax = pv["Maximum concentration in positive electrode [mol.m-3]"]
    # all cyclable lithium of the set, expressed as a cathode stoichiometry (0.8716 for Chen2020);
    # capped below 1: some sets (NCA_Kim2011) hold more lithium than their cathode can take
    y_lith = min((c_n0 * eps_n + c_p0 * eps_p) / (c_pmax * eps_p), 0.98)
    param = pybamm.LithiumIonParameters()
    inputs = {"Q_n": pv.evaluate(param.n.Q_init), "Q_p": pv.evaluate(param.p.Q_init),
              "Q_Li": pv.evaluate(param.Q_Li_particles_init)}
    esoh = pybamm.lithium_ion.ElectrodeSOHSolver(pv, param=param).solve(inputs)
    return {"y_lithiated": float(y_lith), "y_100": float(esoh["y_100"])}


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Route fd 2 to a buffer: SUNDIALS prints IDAHandleFailure there even when the error is caught."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode(errors="replace").splitlines())


@contextlib.contextmanager
def _quiet_pybamm() -> Iterator[None]:
    """Silence PyBaMM's logger (it warns about unobservable inputs) for one simulation."""
    import pybamm

    level = pybamm.logger.level
    pybamm.logger.setLevel("ERROR")
    try:
        yield
    finally:
        pybamm.logger.setLevel(level)


def stack_mass_volume(pv: Any, micro: dict[str, Any], material: str) -> tuple[float, float]:
    """Mass [kg.m-2] and thickness [m] of one repeat unit of the stack per unit electrode area.

    Cathode + anode coatings (solids and electrolyte-filled pores), separator (polymer + electrolyte),
    and half of each current collector (each collector serves two electrodes in a stack).

    Parameters
    ----------
    pv : pybamm.ParameterValues
        The design's parameter values (thicknesses, fractions, collectors).
    micro : dict
        Output of :func:`~battlab.electrode.process.process_electrode` (inactive phase of the cathode).
    material : str
        Key of :data:`~battlab.electrode.process.MATERIALS`.

    Returns
    -------
    (float, float)
        Areal mass [kg.m-2] and stack thickness [m].

    Example
    -------
    >>> import pybamm  # doctest: +SKIP
    >>> pv = pybamm.ParameterValues("Chen2020")  # doctest: +SKIP
    >>> m, L = stack_mass_volume(pv, {"inactive_volume_fraction": 0.0}, "NMC811")  # doctest: +SKIP
    >>> round(m, 3)  # doctest: +SKIP
    0.529
    """
    mat = MATERIALS[material]
    rho_e = INACTIVE["Electrolyte density [kg.m-3]"]
    rho_inactive = 1.0 / (0.5 / INACTIVE["Conductive carbon density [kg.m-3]"]
                          + 0.5 / INACTIVE["Binder (PVDF) density [kg.m-3]"])
    L_p, L_n, L_s = (pv[f"{e} thickness [m]"] for e in ("Positive electrode", "Negative electrode", "Separator"))
    eps_p, eps_n, eps_s = (pv[f"{e} porosity"] for e in ("Positive electrode", "Negative electrode", "Separator"))
    am_p = pv["Positive electrode active material volume fraction"]
    am_n = pv["Negative electrode active material volume fraction"]
    inact_p = micro.get("inactive_volume_fraction", np.maximum(1.0 - eps_p - am_p, 0.0))
    inact_n = max(1.0 - eps_n - am_n, 0.0)
    mass = (L_p * (am_p * mat.density_kg_m3 + inact_p * rho_inactive + eps_p * rho_e)
            + L_n * (am_n * mat.anode_density_kg_m3 + inact_n * _ANODE_INACTIVE_DENSITY + eps_n * rho_e)
            + L_s * ((1 - eps_s) * INACTIVE["Separator polymer density [kg.m-3]"] + eps_s * rho_e))
    thick = L_p + L_n + L_s
    for side, (l_default, rho_default) in _COLLECTOR_DEFAULTS.items():
        l_cc = pv.get(f"{side} current collector thickness [m]", l_default)
        rho_cc = pv.get(f"{side} current collector density [kg.m-3]", rho_default)
        mass += 0.5 * l_cc * rho_cc
        thick += 0.5 * l_cc
    if np.ndim(mass):  # arrays of designs (see theoretical_cell)
        return np.asarray(mass, float), np.asarray(thick, float)
    return float(mass), float(thick)


_SET_KEYS = ("Maximum concentration in positive electrode [mol.m-3]",
             "Maximum concentration in negative electrode [mol.m-3]",
             "Negative electrode active material volume fraction", "Negative electrode porosity",
             "Separator thickness [m]", "Separator porosity")


@functools.lru_cache(maxsize=8)
def _set_constants(parameter_set: str) -> dict[str, float]:
    """The constants of a set that the stack's mass and capacity need (cached: loading a set takes ~50 ms)."""
    import pybamm

    pv = pybamm.ParameterValues(parameter_set)
    out = {k: float(pv[k]) for k in _SET_KEYS}
    for side in _COLLECTOR_DEFAULTS:
        for key in (f"{side} current collector thickness [m]", f"{side} current collector density [kg.m-3]"):
            if key in pv.keys():
                out[key] = float(pv[key])
    return out


def _cyclable_lithium(pv: Any, base: dict[str, float], L_p: Any, am_p: Any, np_ratio: float) -> tuple[Any, Any]:
    """Cathode lithium cycled between its lithiated and charged states [mol.m-2], and the anode thickness
    [m] that holds ``np_ratio`` times it (N/P on usable capacities). ``pv``: the set's parameter values."""
    q_p = L_p * am_p * pv["Maximum concentration in positive electrode [mol.m-3]"] * (
        base["y_lithiated"] - base["y_100"])
    L_n = np_ratio * q_p / (pv["Negative electrode active material volume fraction"]
                            * pv["Maximum concentration in negative electrode [mol.m-3]"])
    return q_p, L_n


def theoretical_cell(micro: pd.DataFrame, settings: ProcessSettings | None = None,
                     np_ratio: float = 1.1) -> pd.DataFrame:
    """What a design's stack holds before any discharge: exact from the process model, no solver.

    The cathode's cyclable lithium (between its lithiated and charged stoichiometries) sets the
    theoretical capacity; the anode is sized from it by ``np_ratio``, as :func:`simulate` does; the stack
    mass and thickness follow (:func:`stack_mass_volume`). A discharge delivers a fraction of this at a
    mean voltage, so ``specific_energy = theoretical_specific_capacity x (utilisation x voltage)``: a
    surrogate that learns only the bracket learns what physics does not already give (see
    :func:`~battlab.electrode.optimize.fit_surrogate`).

    Parameters
    ----------
    micro : pandas.DataFrame
        Process quantities (``thickness_um``, ``porosity``, ``active_volume_fraction``,
        ``inactive_volume_fraction``), e.g. from :func:`~battlab.electrode.optimize.process_table`.
    settings : ProcessSettings, optional
        Fixed line settings (the material).
    np_ratio : float
        Negative/positive capacity ratio, as in :func:`simulate`; an ``np_ratio`` column of ``micro`` (a
        design's own, see :data:`~battlab.electrode.doe.DESIGN_COLUMNS`) overrides it row by row where it is
        not NaN.

    Returns
    -------
    pandas.DataFrame
        ``theoretical_capacity_mAh_cm2``, ``stack_mass_kg_m2``, ``stack_thickness_um``,
        ``theoretical_specific_capacity_Ah_kg``, ``theoretical_capacity_density_Ah_L`` and
        ``transport_index`` (log10 of areal capacity [mA.h.cm-2] x thickness [um] / porosity^Bruggeman:
        the electrolyte's transport load, which rate capability follows), one row per design.

    Example
    -------
    >>> micro = pd.DataFrame({"thickness_um": [75.6], "porosity": [0.335], "active_volume_fraction": [0.665],
    ...                       "inactive_volume_fraction": [0.0]})
    >>> round(float(theoretical_cell(micro)["theoretical_capacity_mAh_cm2"].iloc[0]), 2)  # doctest: +SKIP
    5.3
    """
    st = settings or ProcessSettings()
    mat = MATERIALS[st.material]
    base, const = _baseline(mat.parameter_set), _set_constants(mat.parameter_set)
    L_p = micro["thickness_um"].to_numpy(float) * 1e-6
    am_p = micro["active_volume_fraction"].to_numpy(float)
    if "np_ratio" in micro:  # rows without their own (NaN: a table of mixed designs) take the keyword
        np_ratio = micro["np_ratio"].astype(float).fillna(np_ratio).to_numpy(float)
    q_p, L_n = _cyclable_lithium(const, base, L_p, am_p, np_ratio)
    pv = const | {"Positive electrode thickness [m]": L_p, "Negative electrode thickness [m]": L_n,
                  "Positive electrode porosity": micro["porosity"].to_numpy(float),
                  "Positive electrode active material volume fraction": am_p}
    mass, thick = stack_mass_volume(pv, {"inactive_volume_fraction": micro["inactive_volume_fraction"].to_numpy(float)},
                                    st.material)
    ah_m2 = q_p * _FARADAY / 3600.0
    mah_cm2 = ah_m2 * 1e3 / 1e4
    eps = micro["porosity"].to_numpy(float)
    brug = micro["bruggeman"].to_numpy(float) if "bruggeman" in micro else 1.5
    # current per area at a given C-rate x path length / effective electrolyte transport (eps^b): where
    # the electrolyte runs dry first. Rate capability falls along it almost alone (measured on the
    # shipped designs: a monotone fit of rate capability on it alone is off by 0.025 on average, on
    # thickness alone by 0.14).
    transport = np.log10(mah_cm2 * L_p * 1e6 / eps ** brug)
    return pd.DataFrame({"theoretical_capacity_mAh_cm2": mah_cm2, "stack_mass_kg_m2": mass,
                         "stack_thickness_um": thick * 1e6, "theoretical_specific_capacity_Ah_kg": ah_m2 / mass,
                         "theoretical_capacity_density_Ah_L": ah_m2 / (thick * 1e3),
                         "transport_index": transport}, index=micro.index)


def _parameter_values(micro: dict[str, Any], parameter_set: str, np_ratio: float) -> Any:
    import pybamm

    pv = pybamm.ParameterValues(parameter_set)
    base = _baseline(parameter_set)
    L_p = micro["thickness_um"] * 1e-6
    am_p = micro["active_volume_fraction"]
    update: dict[str, Any] = {
        "Positive electrode thickness [m]": L_p,
        "Positive electrode porosity": micro["porosity"],
        "Positive electrode active material volume fraction": am_p,
        "Positive electrode Bruggeman coefficient (electrolyte)": micro["bruggeman"],
    }
    if micro.get("particle_radius_um") is not None:
        update["Positive particle radius [m]"] = micro["particle_radius_um"] * 1e-6
    update["Negative electrode thickness [m]"] = _cyclable_lithium(pv, base, L_p, am_p, np_ratio)[1]
    # assemble as built: empty anode, cathode lithiated; set_initial_state then charges it
    update["Initial concentration in negative electrode [mol.m-3]"] = 0.0
    update["Initial concentration in positive electrode [mol.m-3]"] = base["y_lithiated"] * pv[
        "Maximum concentration in positive electrode [mol.m-3]"]
    update["Current function [A]"] = "[input]"
    pv.update(update)
    return pv


@functools.lru_cache(maxsize=4)
def _model(name: str) -> Any:
    """One unprocessed model per type: Simulation processes a copy, so designs can share it."""
    import pybamm

    models = {"DFN": pybamm.lithium_ion.DFN, "SPMe": pybamm.lithium_ion.SPMe}
    if name not in models:
        raise ValueError(f"model must be one of {sorted(models)}, got {name!r}")
    return models[name]({"calculate discharge energy": "true"})


@functools.lru_cache(maxsize=8)
def _esoh_solver(parameter_set: str) -> tuple[Any, Any]:
    """ElectrodeSOHSolver of a set: it depends on the set's OCPs only; capacities are its inputs."""
    import pybamm

    param = pybamm.LithiumIonParameters()
    return pybamm.lithium_ion.ElectrodeSOHSolver(pybamm.ParameterValues(parameter_set), param=param), param


def _forget_last_solution(solver: Any) -> None:
    """pybamm's SOH solver starts from its previous solution, so a design's stoichiometries depended (in the
    7th digit, its rate capability in the 6th) on the design the process solved before. Every design starts
    from pybamm's own initial guess instead, and gives the same numbers in any order and any process."""
    for name in ("_get_electrode_soh_sims_full", "_get_electrode_soh_sims_split"):
        built = getattr(solver, name, None)
        if built is None or not built.cache_info().currsize:
            continue
        sims = built(None)
        for sim in sims if isinstance(sims, list) else [sims]:
            sim._solution = None


def _charge(pv: Any, parameter_set: str) -> Any:
    """Bring the assembled cell to full charge, as ``pv.set_initial_state(1.0)`` does, and return its SOH.

    The electrode capacities and the lithium inventory of the design go into the set's (cached)
    electrode-SOH solver; the stoichiometries at 100 % SOC become the initial concentrations. This is
    what ``set_initial_state(1.0)`` computes, without rebuilding the SOH model for every design.
    """
    solver, param = _esoh_solver(parameter_set)
    inputs = {"Q_n": pv.evaluate(param.n.Q_init), "Q_p": pv.evaluate(param.p.Q_init),
              "Q_Li": pv.evaluate(param.Q_Li_particles_init)}
    _forget_last_solution(solver)
    esoh = solver.solve(inputs)
    pv.update({
        "Initial concentration in negative electrode [mol.m-3]":
            float(esoh["x_100"]) * pv["Maximum concentration in negative electrode [mol.m-3]"],
        "Initial concentration in positive electrode [mol.m-3]":
            float(esoh["y_100"]) * pv["Maximum concentration in positive electrode [mol.m-3]"],
    })
    return esoh


def _solve(model: Any, pv: Any, current: float, t_end: float, sims: dict[int, Any]) -> tuple[Any, int]:
    """Solve one discharge; on a solver error retry once with tighter IDAKLU tolerances.

    ``sims`` caches one built simulation per tolerance level, so the C-rates share one build.
    """
    import pybamm

    retries = 0
    last: Exception | None = None
    for level, tol in enumerate(({}, {"rtol": 1e-6, "atol": 1e-8})):
        if level not in sims:
            sims[level] = pybamm.Simulation(model, parameter_values=pv, solver=pybamm.IDAKLUSolver(**tol))
        try:
            return sims[level].solve([0.0, t_end], inputs={"Current function [A]": current}), retries
        except pybamm.SolverError as exc:
            if "non-positive at initial conditions" in str(exc):
                raise  # an immediate cut-off: tighter tolerances cannot change it
            retries += 1
            last = exc
    assert last is not None
    raise last


def _failed(reason: str, design: dict[str, Any], micro: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {"status": "failed", "reason": reason, **design, **(micro or {}), **extra}


def simulate(
    design: dict[str, float],
    *,
    settings: ProcessSettings | None = None,
    c_rates: tuple[float, ...] = (0.5, 2.0),
    np_ratio: float = 1.1,
    model: str = "DFN",
    noise: float = 0.0,
    seed: int | None = None,
    return_curves: bool = False,
) -> dict[str, Any]:
    """Process a design and discharge the resulting cell at two or more C-rates.

    Parameters
    ----------
    design : dict
        Process parameters, see :func:`~battlab.electrode.process.process_electrode`, and optionally
        ``np_ratio``, which overrides the keyword for this design.
    settings : ProcessSettings, optional
        Fixed line settings; ``settings.material`` picks the chemistry / PyBaMM parameter set.
    c_rates : tuple of float
        Discharge rates, low first, high last (1C = the design's thermodynamic capacity in 1 h).
    np_ratio : float
        Negative/positive usable capacity ratio that sizes the anode (1.05-1.2 avoids plating).
    model : {"DFN", "SPMe"}
        PyBaMM model. SPMe is faster but wrong for thick electrodes at high rate.
    noise : float
        Relative standard deviation of Gaussian measurement noise put on the measured capacities and
        energies (derived figures follow); ``0`` for exact simulator output.
    seed : int, optional
        Seed of the noise.
    return_curves : bool
        Add ``curves``: ``{c_rate: (capacity [mA.h.cm-2], voltage [V]) arrays}``.

    Returns
    -------
    dict
        The design, its microstructure (``porosity``, ``loading_mg_cm2``, ...), ``status`` (``"ok"`` or
        ``"failed"``), ``reason`` (``""`` when ok), ``solver_retries``, ``termination`` and, when ok,
        the :data:`OUTPUTS` plus ``np_ratio_practical``, ``capacity_Ah`` (1C), ``stack_mass_kg_m2``,
        ``stack_thickness_um``, ``min_electrolyte_conc_high``.

    Example
    -------
    >>> r = simulate({"active_weight_fraction": 0.94, "solid_content": 0.65, "coating_gap_um": 180.0,
    ...               "line_load_N_per_mm": 500.0})  # doctest: +SKIP
    >>> r["status"], r["rate_capability"] > 0.5  # doctest: +SKIP
    ('ok', True)
    """
    import pybamm

    design = {k: (float(v) if isinstance(v, (int, float, np.number)) else v) for k, v in design.items()}
    st = settings or ProcessSettings()
    np_ratio = float(design.get("np_ratio", np_ratio))
    if not np_ratio > 0:
        return _failed(f"invalid design: np_ratio must be positive, got {np_ratio}", design, None)
    try:
        micro = {k: (float(v) if isinstance(v, np.floating) else v)
                 for k, v in process_electrode(design, st).items()}
    except (ValueError, KeyError) as exc:
        return _failed(f"invalid design: {exc}", design, None)
    mat = MATERIALS[st.material]
    rates = tuple(sorted(float(c) for c in c_rates))
    if len(rates) < 2:
        return _failed("need at least two C-rates", design, micro)

    results: dict[float, dict[str, Any]] = {}
    retries = 0
    noise_lines: list[str] = []
    try:
        with _captured_stderr() as noise_lines, warnings.catch_warnings(), _quiet_pybamm():
            warnings.simplefilter("ignore")
            pv = _parameter_values(micro, mat.parameter_set, np_ratio)
            esoh = _charge(pv, mat.parameter_set)
            cap_ah = float(esoh["Capacity [A.h]"])
            npr = float(esoh["Practical NPR"])
            # current density = I / (area x electrodes in parallel): per-area figures use both
            area = (pv["Electrode height [m]"] * pv["Electrode width [m]"]
                    * pv.get("Number of electrodes connected in parallel to make a cell", 1.0))
            m = _model(model)
            sims: dict[int, Any] = {}
            for c in rates:
                sol, r = _solve(m, pv, c * cap_ah, 1.3 * 3600.0 / c, sims)
                retries += r
                q = sol["Discharge capacity [A.h]"].entries
                results[c] = {
                    "Q": float(q[-1]), "E": float(sol["Discharge energy [W.h]"].entries[-1]),
                    "termination": str(sol.termination),
                    "min_ce": float(np.min(sol["Electrolyte concentration [mol.m-3]"].entries)),
                    "curve": (q, sol["Voltage [V]"].entries) if return_curves else None,
                }
    except pybamm.SolverError as exc:
        msg = str(exc).splitlines()[0]
        reason = "immediate cut-off: " + msg if "initial conditions" in msg else "solver error: " + msg
        return _failed(reason, design, micro, solver_retries=retries, stderr_tail=" | ".join(noise_lines[-2:]))
    except (KeyError, ValueError, ArithmeticError, RuntimeError) as exc:  # e.g. ESOH cannot find a state
        return _failed(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", design, micro,
                       solver_retries=retries)

    low, high = results[rates[0]], results[rates[-1]]
    if low["Q"] < 0.01 * cap_ah:
        return _failed(f"immediate cut-off at {rates[0]:g}C ({low['termination']})", design, micro,
                       solver_retries=retries)

    rng = np.random.default_rng(seed)
    if noise > 0:  # lab-like data: measured Q and E get relative Gaussian noise, derived figures follow
        for rr in results.values():
            rr["Q"] *= 1.0 + noise * rng.standard_normal()
            rr["E"] *= 1.0 + noise * rng.standard_normal()

    mass, thick = stack_mass_volume(pv, micro, st.material)
    to_mah_cm2 = 1e3 / (area * 1e4)
    e_low, e_high = low["E"] / area, high["E"] / area  # W.h per m2 of electrode
    duration_high_h = high["Q"] / (rates[-1] * cap_ah)
    out: dict[str, Any] = {
        "status": "ok", "reason": "", **design, **micro,
        "capacity_mAh_cm2": low["Q"] * to_mah_cm2,
        "capacity_high_mAh_cm2": high["Q"] * to_mah_cm2,
        "mean_voltage_V": low["E"] / low["Q"],
        "mean_voltage_high_V": high["E"] / high["Q"] if high["Q"] > 0 else float("nan"),
        "rate_capability": high["Q"] / low["Q"],
        "specific_energy_Wh_kg": e_low / mass,
        "energy_density_Wh_L": e_low / (thick * 1e3),  # W.h/m2 / (m3/m2 -> L/m2)
        "specific_energy_high_Wh_kg": e_high / mass,
        "specific_power_W_kg": e_high / duration_high_h / mass if duration_high_h > 0 else 0.0,
        "np_ratio_practical": npr,
        "capacity_Ah": cap_ah,
        "stack_mass_kg_m2": mass,
        "stack_thickness_um": thick * 1e6,
        "termination_high": high["termination"],
        "min_electrolyte_conc_high": high["min_ce"],
        "solver_retries": retries,
        "c_rates": list(rates),
        "noise": noise,
    }
    if return_curves:
        out["curves"] = {c: (r["curve"][0] * to_mah_cm2, r["curve"][1]) for c, r in results.items()}
    return out
