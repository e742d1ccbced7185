"""A virtual electrode pilot line: process parameters in, cell performance out, through physics.

slurry + coating + calendering (:mod:`~battlab.electrode.process`, mass balance) -> PyBaMM DFN
discharges at two C-rates (:mod:`~battlab.electrode.simulate`) -> Latin hypercube datasets run in
parallel and cached (:mod:`~battlab.electrode.doe`) -> ensemble-MLP surrogate, black or grey box
(:class:`~battlab.electrode.surrogate.ElectrodeSurrogate`) -> PSO, NSGA-II and the closed loop
(:mod:`~battlab.electrode.optimize`).

Example
-------
>>> from battlab.electrode import load_designs, fit_surrogate, pso_surrogate
>>> table, info = load_designs()  # 300 simulated NMC811 designs, offline
>>> model = fit_surrogate(table, ["specific_energy_Wh_kg", "rate_capability"])  # doctest: +SKIP
>>> best = pso_surrogate(model, constraints={"rate_capability": (0.8, None)})  # doctest: +SKIP
"""

from battlab.electrode.doe import DEFAULT_SPACE, latin_hypercube, load_designs, run_designs
from battlab.electrode.optimize import (
    ClosedLoopResult,
    OptimizeResult,
    closed_loop,
    fit_surrogate,
    heterogeneity_search,
    pareto_surrogate,
    pso,
    pso_simulator,
    pso_surrogate,
)
from battlab.electrode.process import INACTIVE, MATERIALS, Material, ProcessSettings, process_electrode, process_table
from battlab.electrode.simulate import OUTPUTS, simulate, stack_mass_volume
from battlab.electrode.surrogate import ElectrodeSurrogate, EnsembleSurrogate, validation_report

__all__ = [
    "DEFAULT_SPACE",
    "INACTIVE",
    "MATERIALS",
    "OUTPUTS",
    "ClosedLoopResult",
    "ElectrodeSurrogate",
    "EnsembleSurrogate",
    "Material",
    "OptimizeResult",
    "ProcessSettings",
    "closed_loop",
    "fit_surrogate",
    "heterogeneity_search",
    "latin_hypercube",
    "load_designs",
    "pareto_surrogate",
    "process_electrode",
    "process_table",
    "pso",
    "pso_simulator",
    "pso_surrogate",
    "run_designs",
    "simulate",
    "stack_mass_volume",
    "validation_report",
]
