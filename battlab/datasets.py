"""Public datasets for battery research, each with a data card.

Every dataset is loaded with :func:`load_dataset`, which returns a
:class:`pandas.DataFrame` and its :class:`DataCard` (source, licence, citation,
target, units of every column). Files are downloaded once with pooch from a
pinned commit, checked against a sha256 checksum, and kept in :func:`data_dir`.

Environment variables
---------------------
BATTLAB_DATA
    Folder of the download cache (default: the user cache folder of battlab).
    Files live in ``$BATTLAB_DATA/<dataset name>/<upstream file name>``.
BATTLAB_OFFLINE
    ``1`` (or ``true``/``yes``/``on``): never touch the network; a file that is
    not in the cache fails at once.
MP_API_KEY
    Materials Project API key, for ``mp_insertion_electrodes`` only.

Example
-------
>>> from battlab.datasets import list_datasets, load_dataset
>>> df, card = load_dataset("exp_formation_enthalpy")
>>> card.target
'formation_enthalpy_per_atom'
>>> sorted(list_datasets()["name"])[:2]
['artistic_calendering', 'artistic_coating_heterogeneity']
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import importlib.resources
import inspect
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from battlab.errors import DatasetError

__all__ = [
    "DEFAULT_DATASET",
    "DataCard",
    "data_dir",
    "dataset_card",
    "fetch",
    "list_datasets",
    "load_dataset",
    "matbench_folds",
]

DEFAULT_DATASET = "exp_formation_enthalpy"
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = {"1", "true", "yes", "on"}
_TIMEOUT = (10, 60)  # connect, read (seconds)


@dataclass(frozen=True)
class DataCard:
    """The data card of a dataset: what it is, where it comes from, how to use it.

    Parameters
    ----------
    name : str
        Registry name, as given to :func:`load_dataset`.
    description : str
        One paragraph on what the data are.
    source : str
        Download URL(s) (pinned commits), or ``"pymatgen package data"``.
    licence : str
        Licence of the data (e.g. ``"CC BY 4.0"``).
    citation : str
        What to cite when using the data.
    target : str or None
        Name of the target column in the returned DataFrame.
    formula_column : str or None
        Column holding a chemical formula / composition, if any.
    units : dict of str to str
        Unit of every column of the returned DataFrame: ``""`` for dimensionless
        numbers (fractions, counts), ``"text"`` for strings and identifiers,
        ``"unspecified"`` when the upstream source does not state the unit.
    commercial_use : bool
        False when the licence forbids commercial use (e.g. CC BY-NC-SA).
    needs_network : bool
        False when the data ship with an installed package.
    split_column : str or None
        Column holding an official split (e.g. ``"train"``/``"test"``).
    identity_columns : tuple of str
        Columns that, with the formula, identify one material (e.g. the space group, so that
        polymorphs are not taken for replicates of one another during curation).
    notes : str
        Caveats: censored values, official folds, column renaming...

    Example
    -------
    >>> card = dataset_card("obelix")
    >>> card.units["a"], card.commercial_use
    ('angstrom', True)
    """

    name: str
    description: str
    source: str
    licence: str
    citation: str
    target: str | None
    formula_column: str | None
    units: dict[str, str] = field(default_factory=dict)
    commercial_use: bool = True
    needs_network: bool = True
    split_column: str | None = None
    identity_columns: tuple[str, ...] = ()
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the card as a plain dict (JSON-serialisable).

        Example
        -------
        >>> dataset_card("obelix").to_dict()["licence"]
        'CC BY 4.0'
        """
        return dataclasses.asdict(self)

    def _repr_markdown_(self) -> str:
        """Markdown shown by Jupyter for a card."""
        flag = "" if self.commercial_use else " **(non-commercial use only)**"
        rows = "\n".join(f"| `{c}` | {u or '(dimensionless)'} |" for c, u in self.units.items())
        lines = [
            f"### Dataset `{self.name}`",
            "",
            self.description,
            "",
            f"- **Licence:** {self.licence}{flag}",
            f"- **Source:** {self.source}",
            f"- **Cite:** {self.citation}",
            f"- **Target:** `{self.target}`" if self.target else "- **Target:** none",
            f"- **Formula column:** `{self.formula_column}`" if self.formula_column else None,
            f"- **Split column:** `{self.split_column}`" if self.split_column else None,
            f"- **Needs network:** {'yes' if self.needs_network else 'no'}",
            f"- **Notes:** {self.notes}" if self.notes else None,
            "",
            "| column | unit |",
            "|---|---|",
            rows,
        ]
        return "\n".join(line for line in lines if line is not None) + "\n"


@dataclass(frozen=True)
class _Remote:
    """One upstream file: its download URL and sha256 checksum."""

    url: str
    sha256: str


@dataclass(frozen=True)
class _Entry:
    card: DataCard
    loader: Callable[..., pd.DataFrame]


_REGISTRY: dict[str, _Entry] = {}
_FILES: dict[str, dict[str, _Remote]] = {}


def _github(owner_repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{owner_repo}/{commit}/{quote(path)}"


def _register(card: DataCard, loader: Callable[..., pd.DataFrame],
              files: dict[str, _Remote] | None = None) -> None:
    _REGISTRY[card.name] = _Entry(card, loader)
    _FILES[card.name] = dict(files or {})


# --------------------------------------------------------------------------- cache


def data_dir() -> Path:
    """Folder of the download cache.

    Returns
    -------
    pathlib.Path
        ``$BATTLAB_DATA`` if set, else ``platformdirs.user_cache_dir("battlab")``.

    Example
    -------
    >>> folder = data_dir()  # e.g. ~/.cache/battlab on Linux
    >>> (folder / "obelix" / "all.csv").exists()  # doctest: +SKIP
    True
    """
    env = os.environ.get("BATTLAB_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("battlab"))


def _offline() -> bool:
    return os.environ.get("BATTLAB_OFFLINE", "").strip().lower() in _TRUE


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DatasetError(
            f"{name!r} is not a valid dataset name: names are plain identifiers "
            f"(letters, digits, underscores). Known datasets: {', '.join(sorted(_REGISTRY))}."
        )
    if name not in _REGISTRY:
        raise DatasetError(
            f"unknown dataset {name!r}. Known datasets: {', '.join(sorted(_REGISTRY))}."
        )
    return name


def _sha256(path: Path) -> str:
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def fetch(name: str, filename: str) -> Path:
    """Return the local path of one file of a dataset, downloading it if needed.

    The file is ``data_dir()/name/filename``. A cached file is used only if its
    sha256 matches the registry; otherwise it is refused (never replaced). A
    missing file is downloaded with pooch (connect timeout 10 s, read 60 s)
    unless ``BATTLAB_OFFLINE`` is set.

    Parameters
    ----------
    name : str
        Dataset name.
    filename : str
        Upstream file name, one of the dataset's registered files.

    Returns
    -------
    pathlib.Path
        Path of the verified file.

    Raises
    ------
    DatasetError
        Unknown dataset or file; file not cached and not downloadable (the
        message names the URL, the expected path and ``BATTLAB_DATA``);
        checksum mismatch (the message names both checksums).

    Example
    -------
    >>> path = fetch("obelix", "all.csv")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'all.csv'
    """
    _check_name(name)
    files = _FILES[name]
    if filename not in files:
        raise DatasetError(
            f"dataset {name!r} has no file {filename!r}; its files are: "
            f"{', '.join(files) or '(none: it is not downloaded as files)'}."
        )
    remote = files[filename]
    folder = data_dir() / name
    path = folder / filename
    if path.exists():
        actual = _sha256(path)
        if actual != remote.sha256:
            raise DatasetError(
                f"dataset {name!r}: the cached file {path} has sha256 {actual}, but "
                f"{remote.sha256} was expected (it is corrupt, truncated or another "
                f"version of {remote.url}). battlab leaves it untouched: delete or "
                "replace it, then try again."
            )
        return path

    def missing(reason: str) -> DatasetError:
        return DatasetError(
            f"dataset {name!r} needs {filename}, which is not in the cache ({path}) and "
            f"could not be downloaded from {remote.url} ({reason}). Put a copy there, "
            "or set BATTLAB_DATA to a folder that has one "
            f"(laid out as <BATTLAB_DATA>/{name}/{filename})."
        )

    if _offline():
        raise missing("BATTLAB_OFFLINE is set, so no download was tried")
    import pooch

    try:
        pooch.retrieve(
            remote.url,
            known_hash=f"sha256:{remote.sha256}",
            fname=filename,
            path=folder,
            progressbar=False,
            downloader=pooch.HTTPDownloader(progressbar=False, timeout=_TIMEOUT),
        )
    except Exception as exc:  # network errors, HTTP errors, checksum of the download
        if isinstance(exc, ValueError) and "hash" in str(exc).lower():
            raise DatasetError(
                f"dataset {name!r}: the file downloaded from {remote.url} does not have "
                f"the expected sha256 {remote.sha256}, so it was discarded ({exc})."
            ) from exc
        raise missing(f"{type(exc).__name__}: {exc}") from exc
    return path


# --------------------------------------------------------------------------- public API


def list_datasets() -> pd.DataFrame:
    """Table of the registered datasets.

    Returns
    -------
    pandas.DataFrame
        One row per dataset, columns ``name``, ``description``, ``target``,
        ``licence``, ``needs_network``, ``commercial_use``.

    Example
    -------
    >>> table = list_datasets()
    >>> "obelix" in set(table["name"])
    True
    """
    cols = ["name", "description", "target", "licence", "needs_network", "commercial_use"]
    return pd.DataFrame(
        [{c: getattr(e.card, c) for c in cols} for e in _REGISTRY.values()], columns=cols
    )


def dataset_card(name: str) -> DataCard:
    """Return the data card of a dataset, without loading it.

    Parameters
    ----------
    name : str
        Dataset name (see :func:`list_datasets`).

    Returns
    -------
    DataCard

    Example
    -------
    >>> dataset_card("matbench_steels").target
    'yield strength'
    """
    return _REGISTRY[_check_name(name)].card


def load_dataset(name: str = DEFAULT_DATASET, **kwargs: Any) -> tuple[pd.DataFrame, DataCard]:
    """Load a dataset and its data card.

    Parameters
    ----------
    name : str, default "exp_formation_enthalpy"
        Dataset name (see :func:`list_datasets`). The default dataset ships with
        pymatgen and needs no network.
    **kwargs
        Options of a dataset, e.g. ``working_ion="Na"`` and ``api_key=...`` for
        ``mp_insertion_electrodes``.

    Returns
    -------
    (pandas.DataFrame, DataCard)
        The table and its card; ``card.units`` gives the unit of every column.

    Raises
    ------
    DatasetError
        Unknown name, unknown option, or data that cannot be fetched/verified.

    Example
    -------
    >>> df, card = load_dataset("exp_formation_enthalpy")
    >>> len(df), card.target
    (2135, 'formation_enthalpy_per_atom')
    """
    entry = _REGISTRY[_check_name(name)]
    try:
        inspect.signature(entry.loader).bind(**kwargs)
    except TypeError:
        params = [p for p in inspect.signature(entry.loader).parameters]
        raise DatasetError(
            f"dataset {name!r} got unknown option(s) {sorted(kwargs)}; "
            f"its options are: {', '.join(params) or '(none)'}."
        ) from None
    return entry.loader(**kwargs), entry.card


def matbench_folds(n_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The matbench v0.1 folds: ``KFold(n_splits=5, shuffle=True, random_state=18012019)``.

    Parameters
    ----------
    n_rows : int
        Number of rows, in mbid order (as returned by :func:`load_dataset`).

    Returns
    -------
    list of (train_idx, test_idx)
        Five pairs of integer index arrays.

    Example
    -------
    >>> folds = matbench_folds(312)
    >>> [len(test) for _, test in folds]
    [63, 63, 62, 62, 62]
    """
    from sklearn.model_selection import KFold

    n_splits = 5
    if n_rows < n_splits:
        raise DatasetError(f"matbench folds need at least {n_splits} rows, got {n_rows}.")
    kf = KFold(n_splits=n_splits, shuffle=True, random_state=18012019)
    return list(kf.split(np.zeros((n_rows, 1))))


# --------------------------------------------------------------------------- loaders


def _load_exp_formation_enthalpy() -> pd.DataFrame:
    from pymatgen.core import Composition

    res = importlib.resources.files("pymatgen.analysis.compatibility") / "exp_compounds.json.gz"
    with res.open("rb") as raw, gzip.open(raw, "rt") as fh:
        records = json.load(fh)
    df = pd.DataFrame(records)
    n_atoms = np.array([Composition(f).num_atoms for f in df["formula"]], dtype=float)
    per_fu = df["exp energy"].astype(float).to_numpy()
    unc = pd.to_numeric(df["uncertainty"], errors="coerce").to_numpy(dtype=float)
    mpid = df["mpid"].where(df["mpid"].notna(), None)
    return pd.DataFrame({
        "formula": df["formula"].astype(str),
        "formation_enthalpy_per_atom": per_fu / n_atoms,
        "formation_enthalpy_per_fu": per_fu,
        "uncertainty_per_atom": unc / n_atoms,
        "n_atoms": n_atoms,
        "mpid": mpid.astype(object),
    })


def _load_obelix() -> pd.DataFrame:
    df = pd.read_csv(fetch("obelix", "all.csv"), dtype=str, keep_default_na=False)
    split: dict[str, str] = {}
    for part in ("train", "test"):
        ids = pd.read_csv(fetch("obelix", f"{part}_idx.csv"), dtype=str)["ID"]
        split.update(dict.fromkeys(ids, part))
    df["split"] = df["ID"].map(split)
    if df["split"].isna().any():
        raise DatasetError(
            f"obelix: {int(df['split'].isna().sum())} rows of all.csv are in neither "
            "train_idx.csv nor test_idx.csv."
        )
    return df


def _matbench_loader(name: str, target: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        with bz2.open(fetch(name, f"{name}.json.bz2"), "rt") as fh:
            raw = json.load(fh)
        df = pd.DataFrame(raw)[["mbid", "composition", target]]
        return df.sort_values("mbid", kind="stable").reset_index(drop=True)

    load.__name__ = f"_load_{name}"
    return load


def _load_heterogeneity() -> pd.DataFrame:
    return pd.read_csv(fetch("artistic_coating_heterogeneity", "heterogeneity-dataset.csv"))


def _load_calendering() -> pd.DataFrame:
    path = fetch("artistic_calendering", "Dataset_Experimental_fitting.csv")
    df = pd.read_csv(path, sep=";")
    return df.drop(columns=[c for c in df.columns if c.startswith("Unnamed")])


_HYBRID_NAMES = {
    "X1": "comma_gap",
    "X2": "active_material_pct",
    "X3": "porosity_pct",
    "Y1": "tortuosity_liquid",
    "Y2": "tortuosity_solid",
    "Y3": "cc_am_contact",
    "Y4": "cc_cbd_contact",
    "Y5": "active_surface",
}


def _load_hybrid() -> pd.DataFrame:
    path = fetch("artistic_hybrid_mesostructures", "hybrid-dataset.csv")
    return pd.read_csv(path, sep=";").rename(columns=_HYBRID_NAMES)


_MP_FIELDS = {
    "battery_id": "text",
    "battery_formula": "text",
    "working_ion": "text",
    "formula_charge": "text",
    "formula_discharge": "text",
    "average_voltage": "V",
    "capacity_grav": "mAh/g",
    "capacity_vol": "mAh/cm3",
    "energy_grav": "Wh/kg",
    "energy_vol": "Wh/L",
    "max_delta_volume": "",
    "stability_charge": "eV/atom",
    "stability_discharge": "eV/atom",
}
_TEXT_MP = [k for k, u in _MP_FIELDS.items() if u == "text"]


def _doc_value(doc: Any, key: str) -> Any:
    value = doc.get(key) if isinstance(doc, dict) else getattr(doc, key, None)
    if value is not None and key in _TEXT_MP:
        value = str(getattr(value, "value", value))  # Element enums -> "Li"
    return value


def _load_mp_insertion_electrodes(working_ion: str = "Li", api_key: str | None = None,
                                  refresh: bool = False) -> pd.DataFrame:
    if not isinstance(working_ion, str) or not re.fullmatch(r"[A-Z][a-z]?", working_ion):
        raise DatasetError(
            f"working_ion must be an element symbol such as 'Li', got {working_ion!r}."
        )
    cache = data_dir() / "mp_insertion_electrodes" / f"{working_ion}.parquet"
    if cache.exists() and not refresh:
        return pd.read_parquet(cache)
    key = api_key or os.environ.get("MP_API_KEY", "").strip()
    if not key:
        raise DatasetError(
            f"mp_insertion_electrodes ({working_ion}) is not cached ({cache}) and needs a "
            "Materials Project API key: set the environment variable MP_API_KEY or pass "
            "api_key=... (get a free key at https://next-gen.materialsproject.org/api "
            "after logging in)."
        )
    if _offline():
        raise DatasetError(
            f"mp_insertion_electrodes ({working_ion}) is not cached ({cache}) and "
            "BATTLAB_OFFLINE is set, so the Materials Project was not queried."
        )
    try:
        from mp_api.client import MPRester
    except ImportError as exc:
        raise DatasetError(
            "mp_insertion_electrodes needs the Materials Project client: "
            "pip install mp-api (or pip install 'battlab[mp]')."
        ) from exc
    try:
        with MPRester(api_key=key) as mpr:
            docs = mpr.materials.insertion_electrodes.search(
                working_ion=working_ion, fields=list(_MP_FIELDS)
            )
    except Exception as exc:
        raise DatasetError(
            f"the Materials Project query for {working_ion} insertion electrodes failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    df = pd.DataFrame([{k: _doc_value(d, k) for k in _MP_FIELDS} for d in docs],
                      columns=list(_MP_FIELDS))
    num = [k for k in _MP_FIELDS if k not in _TEXT_MP]
    df[num] = df[num].apply(pd.to_numeric, errors="coerce")
    df = df.sort_values("battery_id", kind="stable").reset_index(drop=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(cache, index=False)
    return df


# --------------------------------------------------------------------------- registry

_OBELIX = ("NRC-Mila/OBELiX", "4eaac889809dd489e3bae468c45d5c0e02b9147a")
_MATBENCH = ("materialsproject/matbench", "936176db18ca4cd7b38cbd957c017a5bac770c6b")
_AIWORKSHOP = ("MarcDuquesnoy/AIWorkshop", "53a138a3bc153e93ea14b63fa20002d8b67cf0f7")
_CALENDERING = ("MarcDuquesnoy/Battery_Combining_Learning",
                "8dcd2a4010c42f09b182180f983c83d324997163")
_NC = ("NON-COMMERCIAL: CC BY-NC-SA 4.0 allows research and teaching use with attribution "
       "and share-alike, but no commercial use.")
_ARTISTIC_CITE = ("ARTISTIC project (ERC grant 772873, A. A. Franco group, LRCS Amiens); "
                  "M. Duquesnoy, AIWorkshop (1st BIG-MAP AI Workshop), "
                  "https://github.com/MarcDuquesnoy/AIWorkshop")

_register(
    DataCard(
        name="exp_formation_enthalpy",
        description=(
            "Experimental formation enthalpies at 298 K of 2,135 inorganic compounds "
            "(oxides, halides, chalcogenides, nitrides, hydrides, ...), as used by pymatgen to "
            "fit the Materials Project energy corrections. Ships with pymatgen: no download."
        ),
        source=("pymatgen package data (pymatgen/analysis/compatibility/exp_compounds.json.gz)"),
        licence="MIT (as part of pymatgen)",
        citation=(
            "Wang, A. et al., A framework for quantifying uncertainty in DFT energy corrections, "
            "Sci. Rep. 11, 15496 (2021), doi:10.1038/s41598-021-94550-5; experimental values "
            "from Kubaschewski, O., Alcock, C. B. & Spencer, P. J., Materials Thermochemistry, "
            "6th ed. (Pergamon, 1993) and the NIST-JANAF tables, as compiled in pymatgen's "
            "MaterialsProject2020Compatibility data."
        ),
        target="formation_enthalpy_per_atom",
        formula_column="formula",
        units={
            "formula": "text",
            "formation_enthalpy_per_atom": "eV/atom",
            "formation_enthalpy_per_fu": "eV/f.u.",
            "uncertainty_per_atom": "eV/atom",
            "n_atoms": "",
            "mpid": "text",
        },
        needs_network=False,
        notes=(
            "pymatgen stores 'exp energy' in eV per formula unit (see "
            "CorrectionCalculator); per-atom values divide by n_atoms (atoms per formula "
            "unit of `formula`). uncertainty_per_atom is NaN when no uncertainty is given; "
            "mpid (a matching Materials Project id) is None for 555 compounds."
        ),
    ),
    _load_exp_formation_enthalpy,
)

_OBELIX_UNITS = {c: "text" for c in [
    "ID", "Reduced Composition", "True Composition", "Space group", "Family", "DOI",
    "Checked", "Ref", "Cif ID", "Cif ref_1", "Cif ref_2", "note", "close match",
    "close match DOI", "ICSD ID", "Laskowski ID", "Liion ID", "split"]}
_OBELIX_UNITS.update({
    "Z": "", "Space group #": "",
    "Ionic conductivity (S cm-1)": "S/cm", "IC (Total)": "S/cm", "IC (Bulk)": "S/cm",
    "a": "angstrom", "b": "angstrom", "c": "angstrom",
    "alpha": "degree", "beta": "degree", "gamma": "degree",
})
_register(
    DataCard(
        name="obelix",
        description=(
            "OBELiX: 599 lithium solid-state electrolytes with experimentally measured "
            "room-temperature ionic conductivity, composition, space group, lattice "
            "parameters, family and DOI, with the official 478/121 train/test split."
        ),
        source=", ".join(_github(*_OBELIX, f) for f in (
            "data/downloads/all.csv", "data/train_idx.csv", "data/test_idx.csv")),
        licence="CC BY 4.0",
        citation=(
            "Therrien, F. et al., OBELiX: A Curated Dataset of Crystal Structures and "
            "Experimentally Measured Ionic Conductivities for Lithium Solid-State "
            "Electrolytes, arXiv:2502.14234 (2025)."
        ),
        target="Ionic conductivity (S cm-1)",
        formula_column="Reduced Composition",
        units=_OBELIX_UNITS,
        split_column="split",
        identity_columns=("Space group #",),
        notes=(
            "ALL columns are returned as text, exactly as in all.csv (empty string when "
            "blank); convert with pandas.to_numeric where needed. The target is censored: "
            "36 rows read '<1E-10' (below the detection limit), kept as text on purpose. "
            "The benchmark metric is the MAE of log10(conductivity) on the test split. "
            "'Z' is the number of formula units per cell."
        ),
    ),
    _load_obelix,
    {
        "all.csv": _Remote(
            _github(*_OBELIX, "data/downloads/all.csv"),
            "54f6265ef84d16a919d08c6815f14b0fd7465fa00090bee2511c16c042e57f3c"),
        "train_idx.csv": _Remote(
            _github(*_OBELIX, "data/train_idx.csv"),
            "6bd506b34d431ff233880147f934369e3d7c7f739299e10284e32927f502775a"),
        "test_idx.csv": _Remote(
            _github(*_OBELIX, "data/test_idx.csv"),
            "0ad4cfaf5a61e85e228b2e0782a97b01469d08ac481b553622b91035a8ec719d"),
    },
)

_MATBENCH_NOTES = (
    "Rows are in mbid order (as in the artifact). Official matbench v0.1 folds: "
    "KFold(n_splits=5, shuffle=True, random_state=18012019) over rows in mbid order; "
    "use battlab.datasets.matbench_folds(len(df)). Metric: MAE averaged over the 5 folds."
)
_MATBENCH_CITE = (
    "Dunn, A., Wang, Q., Ganose, A., Dopp, D. & Jain, A., Benchmarking materials property "
    "prediction methods: the Matbench test set and Automatminer reference algorithm, "
    "npj Comput. Mater. 6, 138 (2020)."
)
for _name, _target, _unit, _sha, _desc in [
    ("matbench_expt_gap", "gap expt", "eV",
     "11d79ac6f2c25e23a136295e9bc37ea9ea4a9fa936c6bc366e777c1cb1c397b9",
     "Matbench v0.1 expt_gap: experimental band gap of 4,604 inorganic compositions."),
    ("matbench_steels", "yield strength", "MPa",
     "f62ab2e43009e58bdeb3cb83637359e163e065caaf9fe309fab9bb8c7ad54aac",
     "Matbench v0.1 steels: yield strength of 312 steel compositions (atomic fractions)."),
]:
    _url = _github(*_MATBENCH, f"scripts/artifacts/{_name}.json.bz2")
    _register(
        DataCard(
            name=_name, description=_desc, source=_url, licence="MIT",
            citation=_MATBENCH_CITE, target=_target, formula_column="composition",
            units={"mbid": "text", "composition": "text", _target: _unit},
            notes=_MATBENCH_NOTES,
        ),
        _matbench_loader(_name, _target),
        {f"{_name}.json.bz2": _Remote(_url, _sha)},
    )

_HET_COLS = [
    "σ.Thickness", "σ1 ML Perpendicular", "σ1 T Perpendicular", "σ2 ML Perpendicular",
    "σ2 T Perpendicular", "σ3 ML Perpendicular", "σ3 T Perpendicular", "σ1 ML Direction",
    "σ1 T Direction", "σ ML Direction", "σ2 T Direction", "σ3 ML Direction", "σ3 T Direction",
]
_register(
    DataCard(
        name="artistic_coating_heterogeneity",
        description=(
            "EXPERIMENTAL NMC-622 electrode coatings (144 rows, ARTISTIC project): active "
            "material content, solid content and comma gap -> standard deviations of mass "
            "loading (ML) and thickness (T), overall and along/perpendicular to the coating "
            "direction. " + _NC
        ),
        source=_github(*_AIWORKSHOP, "resources/heterogeneity-dataset.csv"),
        licence="CC BY-NC-SA 4.0",
        citation=_ARTISTIC_CITE,
        target="σ.Mass Loading.mg.cm2.",
        formula_column=None,
        units={"Active Material [%]": "%", "Solid Content [%]": "", "Comma Gap [μm]": "um",
               "σ.Mass Loading.mg.cm2.": "mg/cm2", **dict.fromkeys(_HET_COLS, "unspecified")},
        commercial_use=False,
        notes=(
            _NC + " Column names are upstream's. 'Solid Content [%]' holds fractions "
            "(0.55-0.73) despite its header. The upstream files do not state the units of "
            "the thickness and directional standard deviations ('unspecified')."
        ),
    ),
    _load_heterogeneity,
    {"heterogeneity-dataset.csv": _Remote(
        _github(*_AIWORKSHOP, "resources/heterogeneity-dataset.csv"),
        "1770d3ab8d23ac010f69f1774719010e30e59ef0fe878b60f0907f9f0f6168de")},
)

_CAL_URL = _github(*_CALENDERING, "Experimental/data/Dataset_Experimental_fitting.csv")
_register(
    DataCard(
        name="artistic_calendering",
        description=(
            "EXPERIMENTAL calendering of NMC electrodes (14 rows, ARTISTIC project): "
            "NMC fraction, solid-to-liquid ratio, calender gap, porosity and thickness "
            "before calendering -> porosity after calendering (mean and sd). " + _NC
        ),
        source=_CAL_URL,
        licence="CC BY-NC-SA 4.0",
        citation=(
            "Duquesnoy, M., Lombardo, T., Chouchane, M., Primo, E. N. & Franco, A. A., "
            "Data-driven assessment of electrode calendering process by combining "
            "experimental results, in silico mesostructures generation and machine learning, "
            "J. Power Sources 480, 229103 (2020)."
        ),
        target="porosity",
        formula_column=None,
        units={"X.NMC": "", "S.to.L": "%", "calender.gap.um": "um", "porosite_before": "",
               "thickness_before": "um", "porosity": "", "sd": ""},
        commercial_use=False,
        notes=(
            _NC + " Upstream column names; the unnamed row-number column is dropped. "
            "X.NMC and porosities are fractions; sd is the standard deviation of porosity."
        ),
    ),
    _load_calendering,
    {"Dataset_Experimental_fitting.csv": _Remote(
        _CAL_URL, "b5e8504d213e71ea282f2aaa784dac0009b0d8e12eda3f6ac1d7917df6c468ff")},
)

_register(
    DataCard(
        name="artistic_hybrid_mesostructures",
        description=(
            "SIMULATED electrode mesostructures (880 rows, ARTISTIC project): comma gap, "
            "active material content and porosity -> electrolyte and solid tortuosity, "
            "current-collector contacts and active surface. " + _NC
        ),
        source=_github(*_AIWORKSHOP, "resources/hybrid-dataset.csv"),
        licence="CC BY-NC-SA 4.0",
        citation=_ARTISTIC_CITE,
        target="tortuosity_liquid",
        formula_column=None,
        units={"comma_gap": "unspecified", "active_material_pct": "%", "porosity_pct": "%",
               "tortuosity_liquid": "", "tortuosity_solid": "", "cc_am_contact": "unspecified",
               "cc_cbd_contact": "unspecified", "active_surface": "unspecified"},
        commercial_use=False,
        notes=(
            _NC + " Columns renamed from upstream: "
            + ", ".join(f"{k} -> {v}" for k, v in _HYBRID_NAMES.items())
            + " (CC = current collector, AM = active material, CBD = carbon-binder domain). "
            "All five Y columns are outputs. Units not stated upstream are 'unspecified'."
        ),
    ),
    _load_hybrid,
    {"hybrid-dataset.csv": _Remote(
        _github(*_AIWORKSHOP, "resources/hybrid-dataset.csv"),
        "7881f7dc3139e2b8479c513f660620dde0e9d8942322c84370076b39569697ff")},
)

_register(
    DataCard(
        name="mp_insertion_electrodes",
        description=(
            "Materials Project insertion electrodes (DFT): average voltage, gravimetric and "
            "volumetric capacity and energy, volume change and stability, for one working "
            "ion. Queried with the official client mp-api (needs MP_API_KEY), then cached."
        ),
        source="https://api.materialsproject.org (materials/insertion_electrodes, via mp-api)",
        licence="CC BY 4.0",
        citation=(
            "Jain, A. et al., The Materials Project: A materials genome approach to "
            "accelerating materials innovation, APL Mater. 1, 011002 (2013); battery explorer: "
            "Shen, J.-X., Horton, M. & Persson, K. A., A charge-density-based general cation "
            "insertion algorithm for generating new Li-ion cathode materials, "
            "npj Comput. Mater. 6, 161 (2020)."
        ),
        target="average_voltage",
        formula_column="battery_formula",
        units=dict(_MP_FIELDS),
        notes=(
            "load_dataset('mp_insertion_electrodes', working_ion='Li', api_key=None, "
            "refresh=False). The result is cached as "
            "<BATTLAB_DATA>/mp_insertion_electrodes/<working_ion>.parquet and later calls "
            "read the cache (no key needed); refresh=True queries again. Values depend on "
            "the database release at query time. max_delta_volume is a fraction; "
            "stability_* are energies above hull. Requires pip install mp-api."
        ),
    ),
    _load_mp_insertion_electrodes,
)


# --------------------------------------------------------------------------- severson2019 (cell cycling)

_SEVERSON_SPLITS = {"train": "train", "test1": "primary test", "test2": "secondary test"}


def _severson_files() -> dict[str, _Remote]:
    from battlab.cycling._severson_files import COMMIT, FILES, REPO

    return {path.replace("data/cycle_lives/", "").replace("data/", "").replace("/", "_"):
            _Remote(_github(REPO, COMMIT, path), sha) for path, sha in FILES}


def _load_severson2019() -> pd.DataFrame:
    rows = []
    for split, role in _SEVERSON_SPLITS.items():
        lives = pd.read_csv(fetch("severson2019", f"{split}_cycle_lives.csv"), header=None)[0]
        for k, life in enumerate(lives, start=1):
            rows.append({"cell": f"{split}_cell{k}", "split": split, "role": role, "cell_in_split": k,
                         "cycle_life": int(life), "is_outlier": split == "test1" and k == 22,
                         "curve_file": f"{split}_cell{k}.csv"})
    return pd.DataFrame(rows)


_register(
    DataCard(
        name="severson2019",
        description=(
            "124 commercial LFP/graphite cells (A123 APR18650M1A, 1.1 Ah) cycled to failure under fast-charging "
            "protocols (Severson et al. 2019): per cell the cycle life and the discharge capacity Qdlin(V) at "
            "1000 voltages from 3.6 V to 2.0 V for cycles 2-100, with the paper's train (41), primary test "
            "(43) and secondary test (40) cells. One row per cell; the curves are read with "
            "battlab.cycling.load_severson()."
        ),
        source=_github("petermattia/revisit-severson-et-al", "3a77c7d513126e921896315038d0f8f2645e440d",
                       "data/{train,test1,test2}/cellN.csv and data/cycle_lives/"),
        licence="MIT (petermattia/revisit-severson-et-al); data of Severson et al. (data.matr.io, CC BY 4.0)",
        citation=(
            "Severson, K. A. et al., Data-driven prediction of battery cycle life before capacity degradation, "
            "Nat. Energy 4, 383-391 (2019), doi:10.1038/s41560-019-0356-8; Attia, P. M., Severson, K. A. & "
            "Witmer, J. D., Statistical learning for accurate and interpretable battery lifetime prediction, "
            "J. Electrochem. Soc. 168, 090547 (2021), doi:10.1149/1945-7111/ac2704."
        ),
        target="cycle_life",
        formula_column=None,
        units={"cell": "text", "split": "text", "role": "text", "cell_in_split": "", "cycle_life": "cycles",
               "is_outlier": "", "curve_file": "text"},
        split_column="split",
        notes=(
            "split: train / test1 (the paper's primary test set) / test2 (secondary test set, a later batch). "
            "is_outlier marks test1 cell 22 (cycle life 148), which the paper leaves out of its headline "
            "primary-test RMSE. Each curve file is a headerless 1000 x 99 matrix: row i is the i-th of 1000 "
            "voltages from 3.6 V down to 2.0 V, column j is cycle j + 2; Q at 2.0 V is the cycle's discharge "
            "capacity (Ah). 127 files (92 MB), each checked against its sha256."
        ),
    ),
    _load_severson2019,
    _severson_files(),
)


# --------------------------------------------------------------------------- tbsi_sunwoda (cell cycling)

_TBSI = ("terencetaothucb/TBSI-Sunwoda-Battery-Dataset", "074106b2cdd20567e446dd734970290403536b97")
_TBSI_SHEET_RE = re.compile(r"B(\d+)T(\d+)")


def _load_tbsi_sunwoda() -> pd.DataFrame:
    """The capacity table of the 32 TBSI-Sunwoda cells: one row per (cell, cycle)."""
    path = fetch("tbsi_sunwoda", "Labels.xlsx")
    sheets = pd.read_excel(path, sheet_name=None)
    parts = []
    for sheet, frame in sheets.items():
        match = _TBSI_SHEET_RE.fullmatch(str(sheet).strip())
        if match is None:
            raise DatasetError(f"tbsi_sunwoda: sheet {sheet!r} of {path} is not named B<cell>T<temperature>.")
        frame = frame.rename(columns=lambda c: str(c).strip())  # the first sheet's header is 'Capacity '
        if list(frame.columns) != ["Capacity"]:
            raise DatasetError(f"tbsi_sunwoda: sheet {sheet!r} of {path} has columns {list(frame.columns)}, "
                               "expected one column 'Capacity'.")
        capacity = pd.to_numeric(frame["Capacity"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(capacity).any():
            row = int(np.flatnonzero(np.isnan(capacity))[0]) + 2
            raise DatasetError(f"tbsi_sunwoda: sheet {sheet!r} of {path}, row {row}: 'Capacity' is not a number.")
        parts.append(pd.DataFrame({
            "cell": str(sheet).strip(),
            "temperature_C": float(match.group(2)),
            "cycle": np.arange(1, len(capacity) + 1, dtype=int),
            "discharge_capacity_Ah": capacity,
        }))
    return pd.concat(parts, ignore_index=True)


_register(
    DataCard(
        name="tbsi_sunwoda",
        description=(
            "32 NCM811 / graphite + 13 wt% SiOx cells (Sunwoda, 1.1 Ah) cycled to end of life with a 9-step "
            "fast charge (0.33-3 C) and a 1 C discharge at 25, 35, 45 and 55 degC (9/9/7/7 cells; Tao et al. "
            "2025): the discharge capacity of every cycle (1299 cycles at 25/35 degC, 1099 at 45 degC, 899 at "
            "55 degC). A capacity table: one row per (cell, cycle)."
        ),
        source=_github(*_TBSI, "Labels.xlsx"),
        licence="MIT",
        citation=(
            "Tao, S. et al., Non-destructive degradation pattern decoupling for early battery trajectory "
            "prediction via physics-informed learning, Energy Environ. Sci. (2025), doi:10.1039/d4ee03839h."
        ),
        target="discharge_capacity_Ah",
        formula_column=None,
        units={"cell": "text", "temperature_C": "degC", "cycle": "cycles", "discharge_capacity_Ah": "Ah"},
        notes=(
            "cell is the upstream sheet name B<i>T<temperature> (B1T25 ... B32T55); temperature_C is read from it; "
            "cycle counts from 1 in sheet order. Nominal capacity 1.1 Ah; life = first cycle below 0.88 Ah (80 % "
            "of nominal): 481-1025 cycles, every cell reaches it (none censored). The capacity jumps up by a "
            "few mAh about every 100-200 cycles (seen in the data), then fades again. The "
            "per-cycle feature table and the voltage curves of the upstream repository (Zenodo 10715209) are not "
            "loaded."
        ),
    ),
    _load_tbsi_sunwoda,
    {"Labels.xlsx": _Remote(_github(*_TBSI, "Labels.xlsx"),
                            "6be49dd667b10557296a429519ee67b2df8cd86685197e0dd5ed7fbffadba0ce")},
)


# --------------------------------------------------------------------------- pulsebat (state of health, pulse tests)

_PULSEBAT = ("terencetaothucb/Pulse-Voltage-Response-Generation", "92aeb9b8a26bc337164401411271fa8eeadf605c")
#: cell kind -> (upstream folder, file, sha256, nominal capacity in Ah)
_PULSEBAT_FILES = {
    "NMC 2.1Ah": ("2.1Ah NMC", "NMC_2.1Ah_W_5000.xlsx",
                  "60822626f9ecddb77470a9d4764c90031dcce8aa3ed9d271d486ee9a35da323c", 2.1),
    "LMO 10Ah": ("10Ah LMO", "LMO_10Ah_W_5000.xlsx",
                 "70820b404b712a3764781e6c6dab1999ea884b0f60028b34ffe11bae1c3db9ba", 10.0),
    "NMC 21Ah": ("21Ah NMC", "NMC_21Ah_W_5000.xlsx",
                 "cc826a7c5901a15075cfcc38184153f83223b3438ed92fd9b17adce34b7af5ee", 21.0),
    "LFP 35Ah": ("35Ah LFP", "LFP_35Ah_W_5000.xlsx",
                 "3acc96033ba5474171ff8ddd0eef159e37e10034473e33814fd8aa398e4d7538", 35.0),
}
_PULSEBAT_U = [f"U{i}" for i in range(1, 22)]
_PULSEBAT_NEEDED = ["ID", "Qn", "Q", "SOH", "Pt", "SOC", *_PULSEBAT_U]


def _load_pulsebat() -> pd.DataFrame:
    """The four 5 s pulse-test files of PulseBat (sheet 'SOC ALL'): one row per (sample, SOC)."""
    parts = []
    for kind, (_, filename, _, nominal) in _PULSEBAT_FILES.items():
        path = fetch("pulsebat", filename)
        frame = pd.read_excel(path, sheet_name="SOC ALL")
        missing = [c for c in _PULSEBAT_NEEDED if c not in frame.columns]
        if missing:
            raise DatasetError(f"pulsebat: sheet 'SOC ALL' of {path} has no column(s) {missing}.")
        values = frame[["Qn", "Q", "SOH", "Pt", "SOC", *_PULSEBAT_U]].apply(pd.to_numeric, errors="coerce")
        bad = values.isna().to_numpy()
        if bad.any():
            row, col = (int(v[0]) for v in np.nonzero(bad))
            raise DatasetError(f"pulsebat: sheet 'SOC ALL' of {path}, row {row + 2}, column "
                               f"{values.columns[col]!r}: not a number.")
        sample = frame["ID"].astype(str).str.strip()
        # NMC 2.1 Ah: ID <cell>-<checkpoint> (D3-100 ... J4-600): 12 lab-aged cells, each tested at up to 6 ages
        cell = sample.str.split("-").str[0] if kind == "NMC 2.1Ah" else sample
        parts.append(pd.DataFrame({
            "cell_kind": kind,
            "cell_id": kind.split()[0] + "_" + kind.split()[1] + "_" + cell,
            "sample_id": kind.split()[0] + "_" + kind.split()[1] + "_" + sample,
            "nominal_capacity_Ah": values["Qn"].astype(float),
            "capacity_Ah": values["Q"].astype(float),
            "SOH": values["SOH"].astype(float),
            "pulse_width_s": values["Pt"].astype(float),
            "SOC": values["SOC"].astype(float),
            **{u: values[u].astype(float) for u in _PULSEBAT_U},
        }))
        if not np.allclose(parts[-1]["nominal_capacity_Ah"], nominal):
            raise DatasetError(f"pulsebat: {path} has nominal capacities {sorted(set(values['Qn']))}, "
                               f"expected {nominal} Ah.")
    return pd.concat(parts, ignore_index=True)


_PULSEBAT_UNITS = {"cell_kind": "text", "cell_id": "text", "sample_id": "text", "nominal_capacity_Ah": "Ah",
                   "capacity_Ah": "Ah", "SOH": "", "pulse_width_s": "s", "SOC": "%", **{u: "V" for u in _PULSEBAT_U}}

_register(
    DataCard(
        name="pulsebat",
        description=(
            "PulseBat (Tao et al. 2024): 270 retired lithium-ion cells of four kinds - NMC 2.1 Ah cylinders "
            "(67 samples of 12 lab-aged cells), LMO 10 Ah pouches (95, HEV), NMC 21 Ah pouches (52, BEV), LFP 35 Ah "
            "prismatic cells (56, HEV) - each tested at 10 states of charge (SOC 5, 10, ..., 50 %): the measured "
            "state of health SOH = Q / Qn (Q from a 1 C discharge after a CCCV charge) and 21 voltages U1..U21 "
            "of a 5 s pulse test. One row per (sample, SOC): 2,700 rows."
        ),
        source="; ".join(_github(*_PULSEBAT, f"ProcessedData_adjustable/{folder}/{name}")
                         for folder, name, _, _ in _PULSEBAT_FILES.values()),
        licence="MIT",
        citation=(
            "Tao, S. et al., Generative learning assisted state-of-health estimation for sustainable battery "
            "recycling with random retirement conditions, Nat. Commun. 15 (2024), "
            "doi:10.1038/s41467-024-54454-0."
        ),
        target="SOH",
        formula_column=None,
        units=_PULSEBAT_UNITS,
        notes=(
            "U1: open-circuit voltage after a 10 min rest. Then, for each amplitude (0.5 C: U2-U9; 1 C: U10-U17; "
            "1.5 C: U18-U21), the voltage at the start and at the end of a 5 s charge pulse (+), of the 75 s rest "
            "after it, of a 5 s discharge pulse (-) and of the 75 s rest after it (the 1.5 C set stops after the "
            "first rest); C-rates are of the nominal capacity (1 C = Qn A), pulses at 25 degC. SOC is the "
            "conditioned charge over the NOMINAL capacity, so a cell's SOC range stays below its SOH. "
            "cell_id is the physical cell: for NMC 2.1 Ah the part of the upstream ID before '-' (D3-100 ... "
            "D3-600 are one cell at six ages), for the other kinds the upstream ID (one sample per cell); "
            "sample_id is the upstream ID. Group splits by cell_id. Upstream's SOE (NMC 2.1 Ah: SOC x SOH) and "
            "SOCR columns are not loaded: SOE holds the target. Sheets 'SOC5'..'SOC50' repeat 'SOC ALL'."
        ),
    ),
    _load_pulsebat,
    {name: _Remote(_github(*_PULSEBAT, f"ProcessedData_adjustable/{folder}/{name}"), sha)
     for folder, name, sha, _ in _PULSEBAT_FILES.values()},
)
