"""Plots of the virtual electrode line (notebook 05, the electrode app): axes in words with units.

Every function returns its matplotlib Figure. Column names such as ``specific_energy_Wh_kg`` are shown as
"Specific energy [Wh/kg]" (:func:`battlab.units.quantity_label`).

Example
-------
>>> import pandas as pd
>>> history = pd.DataFrame({"round": [0, 1], "best_observed": [300.0, 320.5], "proposal_observed": [290.0, 320.5]})
>>> fig = plot_closed_loop(history, "specific_energy_Wh_kg")
>>> fig.axes[0].get_ylabel()
'Specific energy [Wh/kg]'
"""

from __future__ import annotations

from typing import Any

from battlab.units import plural, quantity_label

__all__ = ["plot_closed_loop", "plot_discharge_curves", "plot_pareto", "plot_pso_convergence", "quantity_value"]


def quantity_value(name: str, value: float, digits: int = 1) -> str:
    """A figure in words, its value and unit: ``Specific energy 334.3 Wh/kg``, ``Rate capability 0.85``.

    >>> quantity_value("specific_energy_Wh_kg", 334.26), quantity_value("rate_capability", 0.8512, 2)
    ('Specific energy 334.3 Wh/kg', 'Rate capability 0.85')
    """
    label = quantity_label(name)
    words, _, unit = label.partition(" [")
    return f"{words} {value:.{digits}f}" + (f" {unit.rstrip(']')}" if unit else "")


def plot_pso_convergence(history: Any, objective: str, kappa: float = 1.0):
    """The PSO's best score (the surrogate's mean minus ``kappa`` times its std) after each batch of evaluations."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(history["n_evals"], history["best_score"], marker=".")
    label = quantity_label(objective)
    ax.set(xlabel="surrogate evaluations", ylabel=f"best score: {label}\n(mean − {kappa:g} × std)",
           title="Particle swarm on the surrogate")
    fig.tight_layout()
    return fig


def plot_pareto(table: Any, front: Any, x: str = "specific_energy_Wh_kg", y: str = "rate_capability"):
    """Simulated designs and the surrogate's Pareto front of two outputs."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.scatter(table[x], table[y], s=8, alpha=0.4, label=plural(len(table), "simulated design"))
    ax.plot(front[x], front[y], "r.-", label=f"Pareto front (surrogate, {plural(len(front), 'design')})")
    ax.set(xlabel=quantity_label(x), ylabel=quantity_label(y), title="Trade-off between two outputs")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_closed_loop(history: Any, objective: str):
    """Best feasible simulated value per round of the closed loop, and each round's first proposal."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(history["round"], history["best_observed"], "o-", label="best simulated (feasible)")
    ax.plot(history["round"], history["proposal_observed"], "x", label="first proposal, simulated")
    ax.set(xlabel="round", ylabel=quantity_label(objective),
           title=f"Closed loop: {plural(int(len(history)), 'round')}")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_discharge_curves(result: dict[str, Any], objective: str = "specific_energy_Wh_kg"):
    """Voltage against capacity at each C-rate of one simulation (``simulate(..., return_curves=True)``); the
    title gives ``objective`` and the rate capability in words with their units."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for rate, (q, volt) in result["curves"].items():
        ax.plot(q, volt, label=f"{rate:g}C")
    ax.set(xlabel="Capacity [mAh/cm²]", ylabel="Voltage [V]",
           title=f"{quantity_value(objective, result[objective])}, "
                 f"{quantity_value('rate_capability', result['rate_capability'], 2).lower()}")
    ax.legend()
    fig.tight_layout()
    return fig
