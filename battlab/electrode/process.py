"""Process model of the virtual pilot line: slurry -> coating -> drying -> calendering -> microstructure.

Pure numpy mass balance. Every material constant lives in one named table (:data:`MATERIALS`,
:data:`INACTIVE`) with its unit in the key and its source, in the style of PyBaMM's parameter sets.

Chain
-----
1. Slurry: solids (active, conductive carbon, binder weight fractions) in solvent (NMP) at solid
   content ``s`` (mass fraction). Densities mix by volume (ideal mixing, no voids in the slurry).
2. Coating: the wet film is ``wet_factor x coating gap`` thick (``wet_factor = 1`` by default: an
   assumption, calibrate it on your coater); dry mass loading = wet thickness x slurry density x s.
3. Drying: the solvent leaves a coating of porosity ``dry_porosity`` (0.42-0.49 measured on NMC
   coatings in the ARTISTIC calendering data, ``load_dataset("artistic_calendering")``).
4. Calendering, either by line load with the exponential compaction law of Meyer et al. (2017),
   ``eps(q) = eps_min + (eps_0 - eps_min) exp(-q / gamma_c)``, or by calender gap (thickness = gap x
   (1 + springback) at constant solid volume). Porosity is clipped to ``[eps_min, eps_0]`` and the
   clip is recorded in ``porosity_clipped``.
5. Microstructure: active-material volume fraction ``(1 - eps) phi_am`` (``phi_am`` = active share of
   the solid volume), Bruggeman tortuosity ``tau = eps^(1 - b)`` with ``b = 1.5``, particle radius.

References
----------
C. Meyer, H. Bockholt, W. Haselrieder, A. Kwade, "Characterization of the calendering process for
compaction of electrodes for lithium-ion batteries", J. Mater. Process. Technol. 249, 172-178 (2017).
D. A. G. Bruggeman, Ann. Phys. 416, 636-664 (1935).

Example
-------
>>> out = process_electrode({"active_weight_fraction": 0.94, "solid_content": 0.65,
...                          "coating_gap_um": 180.0, "line_load_N_per_mm": 500.0})
>>> round(out["loading_mg_cm2"], 1), round(out["porosity"], 3)
(23.9, 0.31)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["INACTIVE", "MATERIALS", "Material", "ProcessSettings", "process_electrode", "process_table"]


@dataclass(frozen=True)
class Material:
    """An active material and the PyBaMM parameter set that models it.

    Parameters
    ----------
    name : str
        Short name, e.g. ``"NMC811"``.
    parameter_set : str
        PyBaMM parameter set (``pybamm.ParameterValues(parameter_set)``); the material is its positive
        electrode, and the set's negative electrode is the counter electrode.
    density_kg_m3 : float
        True (crystallographic) density of the active material [kg.m-3].
    anode_density_kg_m3 : float
        True density of the set's negative active material [kg.m-3] (stack mass only).
    source : str
        Where the numbers come from.
    """

    name: str
    parameter_set: str
    density_kg_m3: float
    anode_density_kg_m3: float
    source: str


#: Active materials (positive electrode) with their PyBaMM parameter sets. Densities are typical
#: crystallographic densities; the PyBaMM sets' own "electrode density" keys are for the thermal model.
MATERIALS: dict[str, Material] = {
    "NMC811": Material("NMC811", "Chen2020", 4750.0, 2240.0,
                       "Chen et al., J. Electrochem. Soc. 167, 080534 (2020) (LG M50); NMC811 ~4.75 g/cm3, "
                       "graphite-SiOx ~2.24 g/cm3"),
    "LFP": Material("LFP", "Prada2013", 3600.0, 2240.0,
                    "Prada et al., J. Electrochem. Soc. 160, A616 (2013); LiFePO4 ~3.6 g/cm3"),
    "NCA": Material("NCA", "NCA_Kim2011", 4450.0, 2240.0,
                    "Kim et al., J. Electrochem. Soc. 158, A955 (2011); LiNi0.8Co0.15Al0.05O2 ~4.45 g/cm3"),
    "LCO": Material("LCO", "Ai2020", 5050.0, 2240.0,
                    "Ai et al., J. Electrochem. Soc. 167, 013512 (2020); LiCoO2 ~5.05 g/cm3"),
}

#: Inactive phases and solvent [kg.m-3]: conductive carbon black (Super C65-type skeletal density),
#: PVDF binder, NMP solvent, liquid electrolyte (LiPF6 in carbonates) and polyolefin separator.
INACTIVE: dict[str, float] = {
    "Conductive carbon density [kg.m-3]": 1900.0,
    "Binder (PVDF) density [kg.m-3]": 1780.0,
    "Solvent (NMP) density [kg.m-3]": 1028.0,
    "Electrolyte density [kg.m-3]": 1250.0,
    "Separator polymer density [kg.m-3]": 950.0,
}


@dataclass(frozen=True)
class ProcessSettings:
    """Fixed settings of the line (what a design does not vary).

    Parameters
    ----------
    material : str
        Key of :data:`MATERIALS`.
    carbon_to_binder : float
        Conductive carbon / binder weight ratio of the inactive share.
    wet_factor : float
        Wet film thickness / coating gap (assumption; calibrate on the coater).
    dry_porosity : float
        Porosity after drying, before calendering (``eps_0``).
    min_porosity : float
        Lowest porosity reachable by calendering (``eps_min``).
    compaction_resistance_N_per_mm : float
        ``gamma_c`` of the Meyer et al. (2017) law [N/mm]. Illustrative default, of the order of the
        fitted values for NMC cathodes; refit it for a real line.
    springback : float
        Relative thickness recovery after the calender gap (gap-controlled calendering only).
    bruggeman : float
        Bruggeman exponent ``b`` (``tau = eps^(1 - b)``).
    particle_radius_um : float or None
        Active particle radius [um]; ``None`` keeps the parameter set's value.
    """

    material: str = "NMC811"
    carbon_to_binder: float = 1.0
    wet_factor: float = 1.0
    dry_porosity: float = 0.48
    min_porosity: float = 0.18
    compaction_resistance_N_per_mm: float = 600.0
    springback: float = 0.03
    bruggeman: float = 1.5
    particle_radius_um: float | None = None


def _weight_fractions(active: float, carbon_to_binder: float) -> tuple[float, float, float]:
    inactive = 1.0 - active
    carbon = inactive * carbon_to_binder / (1.0 + carbon_to_binder)
    return active, carbon, inactive - carbon


def process_electrode(design: dict[str, float], settings: ProcessSettings | None = None) -> dict[str, Any]:
    """Run one design through slurry, coating, drying, calendering and microstructure.

    Parameters
    ----------
    design : dict
        ``active_weight_fraction`` (0-1, the rest is carbon + binder), ``solid_content`` (slurry solids
        mass fraction), ``coating_gap_um`` or ``wet_thickness_um``, and ``line_load_N_per_mm`` or
        ``calender_gap_um`` (neither: uncalendered). Optional ``particle_radius_um``.
    settings : ProcessSettings, optional
        Fixed line settings (default :class:`ProcessSettings()`).

    Returns
    -------
    dict
        ``loading_mg_cm2`` (dry mass loading), ``active_loading_mg_cm2``, ``wet_thickness_um``,
        ``dry_thickness_um``, ``thickness_um`` and ``porosity`` (after calendering),
        ``porosity_clipped`` (bool), ``active_volume_fraction``, ``inactive_volume_fraction``,
        ``tortuosity``, ``particle_radius_um``, ``solid_density_kg_m3``, ``slurry_density_kg_m3``.

    Raises
    ------
    ValueError
        A fraction outside (0, 1) or a non-positive thickness.

    Example
    -------
    >>> out = process_electrode({"active_weight_fraction": 0.94, "solid_content": 0.65,
    ...                          "coating_gap_um": 180.0})  # not calendered
    >>> out["porosity"], round(out["thickness_um"], 1)
    (0.48, 105.8)
    """
    st = settings or ProcessSettings()
    mat = MATERIALS[st.material]
    w_am = float(design["active_weight_fraction"])
    s = float(design["solid_content"])
    if not (0.0 < w_am <= 1.0 and 0.0 < s < 1.0):
        raise ValueError(f"active_weight_fraction must be in (0, 1] and solid_content in (0, 1); got {w_am}, {s}")
    wet_um = float(design["wet_thickness_um"]) if "wet_thickness_um" in design \
        else st.wet_factor * float(design["coating_gap_um"])
    if wet_um <= 0:
        raise ValueError(f"wet thickness must be positive, got {wet_um} um")

    w = _weight_fractions(w_am, st.carbon_to_binder)
    rho = (mat.density_kg_m3, INACTIVE["Conductive carbon density [kg.m-3]"],
           INACTIVE["Binder (PVDF) density [kg.m-3]"])
    vol_per_kg = np.array(w) / np.array(rho)  # m3 of each solid phase per kg of solids
    rho_solid = 1.0 / vol_per_kg.sum()
    phi_am = vol_per_kg[0] / vol_per_kg.sum()  # active share of the solid volume
    rho_slurry = 1.0 / (s / rho_solid + (1.0 - s) / INACTIVE["Solvent (NMP) density [kg.m-3]"])

    loading = wet_um * 1e-6 * rho_slurry * s  # kg/m2 of dry coating: the solvent evaporates
    solid_um = loading / rho_solid * 1e6  # thickness of the pore-free solid
    eps0, eps_min = st.dry_porosity, st.min_porosity
    dry_um = solid_um / (1.0 - eps0)

    if "line_load_N_per_mm" in design:
        q = max(float(design["line_load_N_per_mm"]), 0.0)
        eps_raw = eps_min + (eps0 - eps_min) * np.exp(-q / st.compaction_resistance_N_per_mm)
    elif "calender_gap_um" in design:
        gap = float(design["calender_gap_um"]) * (1.0 + st.springback)
        eps_raw = 1.0 - solid_um / gap if gap > 0 else -np.inf
    else:
        eps_raw = eps0
    eps = float(np.clip(eps_raw, eps_min, eps0))
    thickness_um = solid_um / (1.0 - eps)  # solid volume is conserved: L (1 - eps) = const

    radius = design.get("particle_radius_um", st.particle_radius_um)
    out = {
        "material": mat.name,
        "loading_mg_cm2": loading * 100.0,  # kg/m2 -> mg/cm2
        "active_loading_mg_cm2": loading * w_am * 100.0,
        "wet_thickness_um": wet_um,
        "dry_thickness_um": dry_um,
        "thickness_um": thickness_um,
        "porosity": eps,
        "porosity_clipped": bool(abs(eps - eps_raw) > 1e-12),
        "active_volume_fraction": (1.0 - eps) * phi_am,
        "inactive_volume_fraction": (1.0 - eps) * (1.0 - phi_am),
        "tortuosity": eps ** (1.0 - st.bruggeman),
        "bruggeman": st.bruggeman,
        "particle_radius_um": None if radius is None else float(radius),
        "solid_density_kg_m3": rho_solid,
        "slurry_density_kg_m3": rho_slurry,
    }
    return {k: float(v) if isinstance(v, np.floating) else v for k, v in out.items()}


def process_table(designs: pd.DataFrame, settings: ProcessSettings | None = None) -> pd.DataFrame:
    """Process quantities of many designs (exact, no simulation): :func:`process_electrode` row by row.

    Example
    -------
    >>> d = pd.DataFrame({"active_weight_fraction": [0.94], "solid_content": [0.65],
    ...                   "coating_gap_um": [180.0], "line_load_N_per_mm": [0.0]})
    >>> round(float(process_table(d)["porosity"].iloc[0]), 2)
    0.48
    """
    rows = [process_electrode(d, settings) for d in designs.to_dict(orient="records")]
    return pd.DataFrame(rows, index=designs.index).drop(columns=["material", "particle_radius_um"])
