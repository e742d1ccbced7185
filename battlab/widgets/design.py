"""``DesignScreener``: parent formulas or CIFs in, new candidate materials ranked by a fast composition model, what to
compute next, and (with the optional extra) their relaxation with a universal potential.

An experimentalist types parent formulas, prototype names or chemical systems (``LiFePO4, olivine, Na-Mn-P-O``),
uploads CIFs, or uses the shipped prototypes; picks the working ion, the generation method and the number of
candidates per parent; and runs the screening funnel:

- candidates (:func:`battlab.design.generate`: ionic substitution or enumeration, prototype structures, duplicates
  removed), each with its parent and the substitution that made it;
- the ranked table (:meth:`battlab.apps.DesignSetup.screen`, i.e. :func:`battlab.design.funnel.screen`): the
  predicted average voltage with its interval, the redox-limited theoretical capacity with its redox couples and why
  it is limited (:func:`battlab.design.capacity.redox_capacity`), the energy proxy (voltage x capacity) and
  the stability proxy (the apps' default model: formation enthalpy per atom, with its interval); without a voltage
  model (no Materials Project data here), ranked by the stability proxy;
- a plot (:func:`battlab.design.funnel.plot_screening`) with the best-ranked named and the plan's picks circled;
- what :mod:`battlab.plan` suggests computing next, by expected improvement, with the reason; a CSV download;
- a relaxation button for the best-ranked structures (:func:`battlab.design.relax.relax_structures`), enabled only
  when ``battlab[atomistic]`` is installed (checked without importing torch); otherwise one line says how.

Nothing here is science: everything is battlab.design's. Bad input (a formula that does not parse, a CIF that does
not parse, a parent without the working ion) is one line in the app; the unusable parents are listed aside with the
reason, and the usable ones are screened.

Example
-------
>>> import tempfile
>>> from battlab import steps
>>> from battlab.apps import DesignSetup
>>> raw = pd.DataFrame({"formula": ["LiCoO2", "LiFePO4", "LiMn2O4", "LiNiO2", "NaCoO2", "NaFePO4", "LiF", "Li2O"],
...                     "dH": [-1.8, -2.3, -1.9, -1.5, -1.7, -2.2, -3.2, -2.1]})
>>> tuned = steps.tune(steps.featurize(steps.curate(raw, target="dH"), preset="magpie"), models=("ridge",),
...                    n_trials=1, progress=False, storage="sqlite:///:memory:", split="random:2")
>>> app = DesignScreener(DesignSetup(tuned, "a toy model"))
>>> app.parents.value = "LiFePO4, LiXxO2"
>>> app.ion.value, app.top.value = "Na", 3
>>> app.run()
>>> app.state, len(app.ranked), app.set_aside["parent"].tolist()
('SUCCESS', 3, ['LiXxO2'])
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as tl

from battlab.design.candidates import ION_CHARGES, CandidateSet, generate
from battlab.design.funnel import not_used
from battlab.design.prototypes import PROTOTYPES
from battlab.errors import BattlabError
from battlab.widgets.data import (
    ACTIVE,
    INIT,
    READY,
    STATES,
    SUCCESS,
    MessagesMixin,
    _safe_name,
    csv_download_html,
    figure_png,
    frame_html,
    on_upload,
    show_state_as_class,
)

__all__ = ["DesignScreener"]

#: What "Use the prototypes" fills in: the shipped prototype structures.
EXAMPLE_PARENTS = ", ".join(sorted(PROTOTYPES))
#: Columns of the ranked table as shown (those present), and their headers.
SHOWN = {"rank": "rank", "candidate_id": "id", "formula": "formula", "prediction": "predicted", "low": "low",
         "high": "high", "capacity_mAh_g": "capacity (mAh/g)", "redox": "redox couples",
         "capacity_note": "capacity note", "energy_Wh_kg": "energy proxy (Wh/kg)",
         "stability": "stability proxy", "stability_low": "stability low", "stability_high": "stability high",
         "parent": "parent", "substitution": "substitution", "method": "method", "probability": "probability",
         "space_group": "space group"}
RELAX_TOP = 2


class DesignScreener(MessagesMixin, w.VBox):
    """New candidate materials from parents, screened by a fast composition model, planned, optionally relaxed.

    Parameters
    ----------
    setup : battlab.apps.DesignSetup, optional
        The models and known results to screen with (also a traitlet: an app sets it once
        :func:`battlab.apps.default_design_setup` has loaded or built them).
    relax_top, relax_steps : int
        Best-ranked candidate structures the relax button relaxes, and the FIRE steps of each (a relaxation not
        converged in them is flagged, not used).

    Attributes
    ----------
    setup : Instance
    candidates : CandidateSet or None
        What :func:`battlab.design.generate` made (with the structures).
    ranked : DataFrame or None
        :attr:`battlab.design.funnel.Screening.ranked`, best first.
    suggestions : DataFrame or None
        The plan's picks (what to compute next), with the reason; None without known results.
    set_aside : DataFrame or None
        What could not be used, with ``stage`` (``parents``, ``candidates``, ``screening``), ``parent``,
        ``candidate`` and ``reason``.
    relaxed : DataFrame or None
        :func:`battlab.design.relax.relax_structures`' table after the relax button.
    state : Enum
        ``INIT`` (no models yet), ``READY``, ``ACTIVE``, ``SUCCESS``, ``FAIL`` (the message says why).
    message : Unicode

    Notes
    -----
    CSS classes for browser tests: ``battlab-design``, ``battlab-design-models``, ``battlab-design-parents``,
    ``battlab-design-upload`` (also ``battlab-data-uploader``), ``battlab-design-example``, ``battlab-design-run``,
    ``battlab-design-message``, ``battlab-design-plot``, ``battlab-design-table``, ``battlab-design-next``,
    ``battlab-design-aside``, ``battlab-design-download``, ``battlab-design-relax``,
    ``battlab-design-relax-message``; the state as ``battlab-design-init``, ``-ready``, ``-active``, ``-success``
    or ``-fail``.
    """

    setup = tl.Any(None, allow_none=True)
    candidates = tl.Instance(CandidateSet, allow_none=True)
    ranked = tl.Instance(pd.DataFrame, allow_none=True)
    suggestions = tl.Instance(pd.DataFrame, allow_none=True)
    set_aside = tl.Instance(pd.DataFrame, allow_none=True)
    relaxed = tl.Instance(pd.DataFrame, allow_none=True)
    state = tl.Enum(STATES, default_value=INIT)
    message = tl.Unicode("")

    def __init__(self, setup: Any = None, *, relax_top: int = RELAX_TOP, relax_steps: int = 100,
                 **kwargs: Any) -> None:
        from battlab.design.relax import missing_extra

        self.relax_top, self.relax_steps = relax_top, relax_steps
        self.cif_files: dict[str, bytes] = {}
        self.screening: Any = None
        self.missing_extra = missing_extra("chgnet")  # "" when the extra is installed (nothing imported)
        self.models_info = w.HTML("<p>loading the models…</p>").add_class("battlab-design-models")
        self.parents = w.Textarea(value="LiFePO4, olivine", placeholder="formulas, prototypes (olivine, layered, "
                                  "spinel, antiperovskite) or chemical systems (Na-Mn-P-O), comma separated",
                                  layout=w.Layout(width="98%", height="52px"))
        self.parents.add_class("battlab-design-parents")
        self.upload = w.FileUpload(accept=".cif", multiple=True, description="Upload CIFs",
                                   layout=w.Layout(width="160px"))
        self.upload.observe(on_upload(self.upload, self.add_cif, "upload.cif", every_file=True), names="value")
        self.example_button = w.Button(description="Use the prototypes", icon="cubes", layout=w.Layout(width="auto"))
        self.example_button.add_class("battlab-design-example")
        self.example_button.on_click(lambda _: self.use_example())
        self.cif_list = w.HTML("<small>no CIF uploaded</small>")
        upload_box = w.HBox([self.upload, self.example_button, self.cif_list])
        upload_box.add_class("battlab-design-upload").add_class("battlab-data-uploader")
        style = {"description_width": "110px"}
        self.ion = w.Dropdown(options=list(ION_CHARGES), value="Na", description="working ion", style=style,
                              layout=w.Layout(width="220px"))
        self.method = w.ToggleButtons(options=["substitution", "enumeration"], value="substitution",
                                      description="generation", style=style)
        self.top = w.BoundedIntText(value=10, min=1, max=500, description="per parent", style=style,
                                    layout=w.Layout(width="220px"))
        self.batch_size = w.BoundedIntText(value=3, min=1, max=50, description="compute next", style=style,
                                           layout=w.Layout(width="220px"))
        self.run_button = w.Button(description="Generate and screen", button_style="primary", icon="flask",
                                   disabled=True, layout=w.Layout(width="auto"))
        self.run_button.add_class("battlab-design-run")
        self.run_button.on_click(lambda _: self.run())
        self.progress = w.IntProgress(value=0, min=0, max=4, layout=w.Layout(width="240px", visibility="hidden"))
        self.status = w.HTML().add_class("battlab-design-message")
        self.plot = w.Image(format="png", layout=w.Layout(max_width="720px", display="none"))
        self.plot.add_class("battlab-design-plot")
        self.table_html = w.HTML().add_class("battlab-design-table")
        self.next_html = w.HTML().add_class("battlab-design-next")
        self.aside_html = w.HTML().add_class("battlab-design-aside")
        self.download = w.HTML().add_class("battlab-design-download")
        self.relax_button = w.Button(description=f"Relax the top {relax_top} (CHGNet)", icon="cogs", disabled=True,
                                     layout=w.Layout(width="auto"))
        self.relax_button.add_class("battlab-design-relax")
        self.relax_button.on_click(lambda _: self.relax())
        self.relax_message = w.HTML().add_class("battlab-design-relax-message")
        self.relax_html = w.HTML()
        self._relax_note()
        super().__init__([w.HTML("<b>New materials</b>: candidates from known ones, ranked by a fast model, and what "
                                 "to compute next"),
                          self.models_info,
                          w.HTML("<small>Parents: formulas, prototypes or chemical systems; or upload CIFs</small>"),
                          self.parents, upload_box,
                          w.HBox([self.ion, self.top, self.batch_size]), self.method,
                          w.HBox([self.run_button, self.progress]), self.status, self.plot, self.table_html,
                          self.download, self.next_html, self.aside_html,
                          w.HBox([self.relax_button, self.relax_message]), self.relax_html], **kwargs)
        self.add_class("battlab-design")
        show_state_as_class(self, "battlab-design")
        if setup is not None:
            self.setup = setup

    @tl.observe("setup")
    def _on_setup(self, change: dict[str, Any]) -> None:
        setup = change["new"]
        if setup is None:
            return
        lines = [html.escape(line) for line in setup.describe().splitlines()]
        self.models_info.value = "<p>" + "<br>".join(lines) + "</p>"
        self.run_button.disabled = False
        self.state = READY
        self._say("models loaded: give parents (or use the prototypes) and press Generate and screen", "info")

    # ------------------------------------------------------------------ input
    def add_cif(self, name: str, content: bytes | memoryview) -> None:
        """Keep an uploaded CIF as a parent (read when the funnel runs: one that does not parse is set aside)."""
        self.cif_files[_safe_name(name)] = bytes(content)
        self.cif_list.value = "<small>CIFs: " + html.escape(", ".join(self.cif_files)) + "</small>"

    def use_example(self) -> None:
        """The shipped prototype structures (olivine, layered, spinel, antiperovskite) as parents."""
        self.parents.value = EXAMPLE_PARENTS

    def parent_list(self) -> list[str]:
        """The typed parents: comma or new-line separated."""
        return [p.strip() for p in self.parents.value.replace("\n", ",").split(",") if p.strip()]

    # ------------------------------------------------------------------ the funnel
    def _step(self, n: int, text: str) -> None:
        self.progress.value = n
        self._say(text, "info")

    def run(self) -> None:
        """Generate, screen and plan; errors are shown in one line, not raised."""
        if self.setup is None:
            self._fail("the models are not loaded yet")
            return
        self.state = ACTIVE
        self._clear()
        self.progress.layout.visibility = "visible"
        with tempfile.TemporaryDirectory() as tmp:
            cifs = []
            for name, content in self.cif_files.items():
                (Path(tmp) / name).write_bytes(content)
                cifs.append(Path(tmp) / name)
            parents = [*self.parent_list(), *cifs]
            if not parents:
                self._fail("no parent: type formulas or prototype names, upload CIFs, or use the prototypes")
                return
            self._step(1, f"generating candidates for {self.ion.value} from {len(parents)} parent(s) "
                          f"({self.method.value})")
            try:
                cands = generate(parents, ion=self.ion.value, method=self.method.value, top=int(self.top.value))
            except BattlabError as exc:
                self._fail(str(exc))
                return
        aside = not_used(cands)
        unusable = aside[aside["stage"] == "parents"]
        self.candidates = cands
        if not len(cands):
            self.set_aside = aside.reset_index(drop=True)
            self._render_aside()
            first = unusable.iloc[0] if len(unusable) else None
            why = f"{first['parent']}: {first['reason']}" if first is not None else "nothing generated"
            self._fail(f"no candidate made ({why})")
            return
        self._step(2, f"screening {len(cands)} candidates with the composition model(s), then planning")
        try:
            result = self.setup.screen(cands, batch_size=int(self.batch_size.value))
        except BattlabError as exc:
            self._fail(f"screening: {exc}")
            return
        except Exception as exc:  # shown in the app, the kernel keeps running
            self._fail(f"screening failed ({type(exc).__name__}: {exc})")
            return
        self._step(3, "drawing")
        self.set_aside = not_used(cands, result)
        self.screening = result
        self.suggestions = result.suggestions
        self.ranked = result.ranked
        self._render()
        self.progress.value = 4
        self.state = SUCCESS
        text = result.summary()
        if len(unusable):
            text += ("; parent(s) not used: " + "; ".join(f"{p} ({r})" for p, r in
                                                          zip(unusable["parent"], unusable["reason"], strict=True)))
        self._say(text, "success" if not len(unusable) else "info")
        self._relax_note()

    # ------------------------------------------------------------------ relax
    def _relax_note(self) -> None:
        if self.missing_extra:
            self.relax_button.disabled = True
            self.relax_message.value = ("<small>relaxation needs the optional extra: <code>pip install -e "
                                        "\".[atomistic]\"</code> (or <code>make .venv-atomistic/.installed</code>)"
                                        "</small>")
            return
        shortlist = self._shortlist()
        self.relax_button.disabled = not shortlist
        self.relax_message.value = ("<small>relaxes " + html.escape(", ".join(shortlist)) + f" ({self.relax_steps} "
                                    "FIRE steps each; about 2 minutes per structure on 2 cores)</small>"
                                    if shortlist else "<small>no ranked candidate with a structure to relax (use a "
                                                      "prototype or a CIF parent)</small>")

    def _shortlist(self) -> list[str]:
        if self.ranked is None or self.candidates is None:
            return []
        ranked = self.ranked.dropna(subset=["rank"])["candidate_id"]
        return [c for c in ranked if c in self.candidates.structures][:self.relax_top]

    def relax(self) -> pd.DataFrame | None:
        """Relax the best-ranked candidate structures with CHGNet (battlab[atomistic]); errors are shown."""
        from battlab.design.relax import relax_structures

        shortlist = self._shortlist()
        if self.missing_extra or not shortlist:
            self._relax_note()
            return None
        self.state = ACTIVE
        self._say(f"relaxing {', '.join(shortlist)} with CHGNet ({self.relax_steps} steps each)", "info")
        try:
            table = relax_structures({c: self.candidates.structures[c] for c in shortlist}, steps=self.relax_steps,
                                     progress=False)
        except BattlabError as exc:
            self._fail(f"relaxation: {exc}")
            return None
        self.relaxed = table
        self.relax_html.value = frame_html(table, css_class="battlab-table battlab-design-relaxed")
        self.state = SUCCESS
        self._say(f"relaxed {len(table)} structure(s); a relaxation not converged is flagged, not used", "success")
        return table

    # ------------------------------------------------------------------ display
    def _labels(self) -> dict[str, str]:
        result = self.screening
        target = result.settings.get("model_target") or "prediction"
        stab = result.settings.get("stability_target") or "stability proxy"
        proxy = "" if "stability" in self.ranked else " (stability proxy)"
        return {"prediction": f"predicted {target}{proxy}", "low": f"{target} low", "high": f"{target} high",
                "stability": f"{stab} (stability proxy)", "stability_low": f"{stab} low",
                "stability_high": f"{stab} high", "energy_Wh_kg": "energy proxy (Wh/kg of active material)",
                "capacity_mAh_g": "redox-limited capacity (mAh/g)"}

    def shown_table(self) -> pd.DataFrame:
        """The ranked table as shown and downloaded: the columns of :data:`SHOWN` that apply, with readable
        headers (no energy proxy when the ranking model does not predict a voltage)."""
        ranked = self.ranked
        voltage = "stability" in ranked  # a voltage model ranks, the stability proxy is beside it
        cols = [c for c in SHOWN if c in ranked and (voltage or c != "energy_Wh_kg")]
        return ranked[cols].rename(columns={**SHOWN, **self._labels()})

    def _render(self) -> None:
        from battlab.design.funnel import plot_screening

        ranked, labels = self.ranked, self._labels()
        if "stability" in ranked:
            ax = plot_screening(self.screening, "prediction", "energy_Wh_kg", labels=labels)
        else:
            ax = plot_screening(self.screening, "prediction", "capacity_mAh_g", labels=labels)
        self.plot.value = figure_png(ax.figure)
        self.plot.layout.display = None
        shown = self.shown_table()
        self.table_html.value = ("<p><b>Ranked candidates</b> (intervals: conformal, from the model's "
                                 "cross-validation)</p>" + frame_html(shown, max_rows=30,
                                                                      css_class="battlab-table battlab-design-ranked"))
        self.download.value = csv_download_html(shown, "design_candidates.csv", "Download the ranked table")
        if self.suggestions is not None and len(self.suggestions):
            self.next_html.value = ("<p><b>Compute next</b> (battlab.plan, expected improvement over the known "
                                    "results; reason: the features behind each pick)</p>"
                                    + frame_html(self.suggestions, css_class="battlab-table"))
        else:
            self.next_html.value = ("<p><i>No plan: no known results (of this model, for this working ion) to plan "
                                    "from.</i></p>")
        self._render_aside()

    def _render_aside(self) -> None:
        aside = self.set_aside
        self.aside_html.value = ("" if aside is None or not len(aside) else
                                 f"<p><b>Not used</b> ({len(aside)}: the reason for each)</p>"
                                 + frame_html(aside, max_rows=30, css_class="battlab-table"))

    def _clear(self) -> None:
        self.candidates = self.ranked = self.suggestions = self.set_aside = self.relaxed = None
        self.screening = None
        for h in (self.table_html, self.next_html, self.aside_html, self.download, self.relax_html):
            h.value = ""
        self.plot.layout.display = "none"
        self.progress.value = 0
