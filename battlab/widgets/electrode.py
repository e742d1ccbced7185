"""``ElectrodeDesigner``: process sliders -> predicted performance with uncertainty, and a PSO button.

Slider moves only ask the surrogate (milliseconds); no simulation runs in the widget. Any
:class:`~battlab.electrode.surrogate.ElectrodeSurrogate` works, black or grey box: it predicts physical
quantities, shown with its stated error.

Example
-------
>>> from battlab.electrode import fit_surrogate, load_designs
>>> model = fit_surrogate(load_designs()[0], ["specific_energy_Wh_kg", "rate_capability"],
...                       hidden_layer_sizes=(8,), max_iter=100)
>>> app = ElectrodeDesigner(model, n_gen=3, pop_size=6)
>>> app.sliders["coating_gap_um"].value = 200.0
>>> sorted(app.prediction["specific_energy_Wh_kg"])
['error', 'mean', 'std']
>>> 250 < app.prediction["specific_energy_Wh_kg"]["mean"] < 400  # Wh/kg, whatever the surrogate learned
True
>>> import contextlib, io
>>> with contextlib.redirect_stdout(io.StringIO()):  # outside a notebook the plot prints as text
...     app.optimize_button.click()
>>> app.state in ("SUCCESS", "FAIL"), len(app.convergence)
(True, 3)
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as tl

from battlab.electrode.doe import DEFAULT_SPACE, load_designs, ranges
from battlab.electrode.optimize import Constraints, fit_surrogate, pso_surrogate
from battlab.electrode.plots import quantity_value
from battlab.electrode.process import process_electrode
from battlab.electrode.simulate import OUTPUTS
from battlab.electrode.surrogate import ElectrodeSurrogate
from battlab.units import quantity_label

__all__ = ["ElectrodeDesigner"]

_DEFAULT_OUTPUTS = ["specific_energy_Wh_kg", "energy_density_Wh_L", "rate_capability", "specific_power_W_kg"]
_STEPS = {"active_weight_fraction": 0.005, "solid_content": 0.01, "coating_gap_um": 5.0, "line_load_N_per_mm": 25.0}


class ElectrodeDesigner(w.VBox):
    """Interactive electrode design on the surrogate of the virtual line.

    Parameters
    ----------
    model : ElectrodeSurrogate, optional
        E.g. from :func:`~battlab.electrode.optimize.fit_surrogate` (black or grey box) or the ``model``
        of a :func:`~battlab.electrode.optimize.closed_loop`; by default a black box fitted on the shipped
        dataset (about a second).
    space : dict
        Design space of the sliders (and of the optimisation).
    objective : str
        Output the Optimize button maximises.
    constraints : dict
        ``{column: (low, high)}`` for the optimisation.
    kappa : float
        Uncertainty penalty of the optimisation.
    pop_size, n_gen, seed : int
        PSO settings.

    Attributes (traitlets)
    ----------------------
    prediction : Dict
        ``{output: {"mean", "std", "error"}}`` in the output's units (``error``: the stated one-sigma
        error, shown as ±; ``std``: the members' spread, which the search penalises) plus process
        quantities (``porosity``, ``loading_mg_cm2``...).
    best_design : Dict
        Last optimum: ``design``, ``values``, ``feasible``. When no design meets the constraints the
        state is ``FAIL``, the status says so and the sliders stay where they were.
    convergence : List
        ``[(generation, best score), ...]`` of the last optimisation, updated live.
    state : Unicode
        ``READY``, ``ACTIVE`` (optimising), ``SUCCESS`` or ``FAIL``.
    """

    prediction = tl.Dict()
    best_design = tl.Dict()
    convergence = tl.List()
    state = tl.Unicode("INIT")

    def __init__(self, model: ElectrodeSurrogate | None = None, *, space: dict[str, Any] | None = None,
                 objective: str = "specific_energy_Wh_kg", constraints: Constraints | None = None,
                 kappa: float = 1.0, pop_size: int = 20, n_gen: int = 30, seed: int = 0, **kwargs: Any) -> None:
        if model is None:
            model = fit_surrogate(load_designs()[0], _DEFAULT_OUTPUTS)
        if not isinstance(model, ElectrodeSurrogate):
            raise TypeError("ElectrodeDesigner needs an ElectrodeSurrogate (designs in, named physical outputs "
                            f"out), e.g. from battlab.electrode.fit_surrogate; got {type(model).__name__}")
        self.model = model
        self.space = dict(space or DEFAULT_SPACE)
        self.objective = objective
        self.constraints = dict(constraints if constraints is not None else {"rate_capability": (0.8, None)})
        self.kappa, self.pop_size, self.n_gen, self.seed = kappa, pop_size, n_gen, seed
        self.sliders: dict[str, w.FloatSlider] = {}
        for name, (lo, hi) in ranges(self.space).items():
            step = _STEPS.get(name, (hi - lo) / 100)
            self.sliders[name] = w.FloatSlider(value=(lo + hi) / 2, min=lo, max=hi, step=step, description=name,
                                               continuous_update=True, readout_format=".3g",
                                               style={"description_width": "170px"},
                                               layout=w.Layout(width="480px"))
            self.sliders[name].observe(self._on_slider, names="value")
        self.readout = w.HTML()
        self.optimize_button = w.Button(description="Optimize", button_style="primary", icon="rocket")
        self.optimize_button.on_click(self._on_optimize)
        self.status = w.HTML()
        self.plot = w.Output()
        # CSS classes: stable handles for browser tests and app styling
        for widget, css in ((self.readout, "battlab-prediction"), (self.optimize_button, "battlab-optimize"),
                            (self.status, "battlab-status"), (self.plot, "battlab-convergence")):
            widget.add_class(css)
        super().__init__([w.HTML("<b>Electrode designer</b> (surrogate of the virtual line; ± = ensemble std)"),
                          *self.sliders.values(), self.readout, w.HBox([self.optimize_button, self.status]),
                          self.plot], **kwargs)
        self.state = "READY"
        self._on_slider()

    def design(self) -> dict[str, float]:
        """The sliders' design (fixed parameters of the space included)."""
        d = {k: float(v) for k, v in self.space.items() if not isinstance(v, (tuple, list))}
        return d | {k: float(s.value) for k, s in self.sliders.items()}

    def _on_slider(self, change: dict[str, Any] | None = None) -> None:
        d = self.design()
        row = self.model.predict_frame(pd.DataFrame([d])).iloc[0]
        pred: dict[str, Any] = {o: {"mean": float(row[o]), "std": float(row[f"{o}_std"]),
                                    "error": float(row[f"{o}_error"])} for o in self.model.outputs_}
        proc = process_electrode(d, self.model.settings)
        for k in ("loading_mg_cm2", "thickness_um", "porosity", "active_volume_fraction", "tortuosity"):
            pred[k] = float(proc[k])
        self.prediction = pred
        rows = "".join(f"<tr><td>{OUTPUTS.get(o, o)}</td><td>{v['mean']:.4g} ± {v['error']:.2g}</td></tr>"
                       for o, v in pred.items() if isinstance(v, dict))
        rows += "".join(f"<tr><td>{k}</td><td>{pred[k]:.4g}</td></tr>"
                        for k in ("loading_mg_cm2", "thickness_um", "porosity", "tortuosity"))
        few = self.model.n_oob_ < 10 * len(self.model.inputs_)
        note = (f"<i>± is the surrogate's stated error; it learned from few designs ({self.model.n_oob_} out of "
                "bag), so it may be optimistic</i>" if few else "<i>± is the surrogate's stated error</i>")
        self.readout.value = f"<table>{rows}</table>{note}"

    def _on_optimize(self, button: w.Button | None = None) -> None:
        self.state = "ACTIVE"
        self.convergence = []
        self.optimize_button.disabled = True

        def live(gen: int, n_evals: int, score: float) -> None:
            self.convergence = [*self.convergence, (gen, score)]
            self.status.value = f"generation {gen}/{self.n_gen}: best {quantity_value(self.objective, score)}"

        try:
            res = pso_surrogate(self.model, self.objective, space=self.space, constraints=self.constraints,
                                kappa=self.kappa, pop_size=self.pop_size, n_gen=self.n_gen, seed=self.seed,
                                callback=live)
        except Exception as exc:  # shown to the user in the app, not a traceback in a log nobody reads
            self.state = "FAIL"
            self.status.value = f"<span style='color:red'>optimisation failed: {exc}</span>"
            return
        finally:
            self.optimize_button.disabled = False
        keep = [self.objective, f"{self.objective}_std", *self.constraints,
                *(f"{c}_std" for c in self.constraints if f"{c}_std" in res.best_values)]
        self.best_design = {"design": res.best_design, "values": {k: float(res.best_values[k]) for k in keep},
                            "feasible": res.feasible}
        self._draw()
        if not res.feasible:  # the sliders stay on the user's design: the best infeasible one is no answer
            self.state = "FAIL"
            self.status.value = ("<span style='color:red'>no feasible design found: the best design misses "
                                 f"{_violated(res.best_values, self.constraints, self.kappa)} "
                                 f"(pessimistic, kappa={self.kappa}); relax a constraint or lower kappa</span>")
            return
        for name, s in self.sliders.items():  # show the optimum on the sliders (updates the prediction)
            s.value = res.best_design[name]
        self.state = "SUCCESS"
        self.status.value = (f"best {quantity_value(self.objective, res.score)} (pessimistic: the surrogate's mean "
                             f"minus {self.kappa:g} × its error)")

    def _draw(self) -> None:
        """The convergence plot of the last optimisation."""
        import matplotlib.pyplot as plt

        from battlab.widgets.figures import show_figure

        fig, ax = plt.subplots(figsize=(5, 2.5))
        g, s = zip(*self.convergence, strict=True) if self.convergence else ((), ())
        ax.plot(g, s, marker="o")
        ax.set(xlabel="generation", ylabel=f"best {quantity_label(self.objective)}", title="PSO convergence")
        fig.tight_layout()
        show_figure(self.plot, fig)  # widget state, not captured output: safe under papermill, any backend


def _violated(values: dict[str, Any], constraints: Constraints, kappa: float) -> str:
    """The constraints a design misses, as the user wrote them, e.g. ``rate_capability >= 0.95 (0.91)``."""
    out = []
    for name, (lo, hi) in constraints.items():
        v, s = float(values[name]), float(values.get(f"{name}_std", 0.0))
        if lo is not None and v - kappa * s < lo:
            out.append(f"{name} >= {lo:g} ({v - kappa * s:.4g})")
        if hi is not None and v + kappa * s > hi:
            out.append(f"{name} <= {hi:g} ({v + kappa * s:.4g})")
    return ", ".join(out) or "a constraint"
