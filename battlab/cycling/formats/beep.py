"""Arbin CSV, Maccor raw text (``.0NN``) and Novonix HPC exports, read through TRI's BEEP.

``beep.structure`` datapaths read these exports; battlab maps their ``raw_data`` to the tidy table (Maccor current
signed by the state letter, Novonix time h -> s). BEEP wants absolute paths: the path is resolved first. Novonix
files BEEP's parser refuses (newer UHPC stamps) are read with pandas from the same columns.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell, read_head, text_head
from battlab.errors import DataFileError

__all__ = ["read_arbin", "read_maccor", "read_novonix", "sniff_arbin", "sniff_maccor", "sniff_novonix"]


def sniff_novonix(head: bytes, path: Path) -> bool:
    """A Novonix HPC export: ``[Summary]`` sections, or its data header."""
    text = text_head(head)
    first = text.split("\n", 1)[0]
    return "[Summary]" in first or (text.lstrip().startswith("[") and "Novonix" in text[:2000]) \
        or ("Date and Time,Cycle Number,Step Type" in text  # a substring test first: the regex is slow on 64 kB
            and bool(re.search(r'^"?Date and Time,Cycle Number,Step Type', text, re.M)))


def sniff_maccor(head: bytes, path: Path) -> bool:
    """A Maccor raw text export as BEEP reads it: one metadata line, then ``Rec#<TAB>Cyc#<TAB>Step<TAB>Test (Sec)
    ... Volts`` (other Maccor templates: :mod:`battlab.cycling.formats.maccor_text`)."""
    text = text_head(head)
    if "Rec#\tCyc#\tStep\tTest (Sec)" not in text:  # cheap test before splitting 64 kB into lines
        return False
    lines = text.splitlines()
    return len(lines) > 1 and bool(re.match(r"\s*Rec#\tCyc#\tStep\tTest \(Sec\)", lines[1])) \
        and "Volts" in lines[1]


def sniff_arbin(head: bytes, path: Path) -> bool:
    """An Arbin CSV export (``Cycle_Index``, ``Test_Time``, ``Current``, ``Voltage`` without units)."""
    header = text_head(head).split("\n", 1)[0].lower()
    return all(k in header for k in ("cycle_index", "voltage", "current", "test_time")) \
        and not re.search(r"(current|voltage)\s*\(", header)  # newer Arbin exports with units: plain csv


@contextlib.contextmanager
def _quiet_beep():
    """BEEP logs every file it reads to stdout at DEBUG and sets numpy's print precision on import."""
    printopts = np.get_printoptions()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import beep  # noqa: F401

            logger = logging.getLogger("beep")
            level = logger.level
            logger.setLevel(logging.ERROR)
            try:
                yield
            finally:
                logger.setLevel(level)
    finally:
        np.set_printoptions(**printopts)


def _check_header(path: Path, line: str, needed: dict[str, tuple[str, ...]], fmt: str) -> None:
    cols = {c.strip().strip('"').lower() for c in re.split(r"[,\t;]", line)}
    missing = [q for q, names in needed.items() if not any(n.lower() in cols for n in names)]
    if missing:
        raise DataFileError(f"{path}: {fmt} file without a {' or '.join(missing)} column "
                            f"(header: {line.strip()[:120]})")


def _read_beep(path: Path, fmt: str) -> RawCell:
    lines = text_head(read_head(path)).splitlines()
    if fmt == "arbin":
        _check_header(path, lines[0], {"current": ("Current",), "voltage": ("Voltage",), "time": ("Test_Time",),
                                       "cycle": ("Cycle_Index",)}, "Arbin")
    elif fmt == "maccor":
        _check_header(path, lines[1], {"current": ("Amps",), "voltage": ("Volts",), "time": ("Test (Sec)",),
                                       "cycle": ("Cyc#",)}, "Maccor")
    else:
        header = next((ln for ln in lines if "Cycle Number" in ln), "")
        _check_header(path, header.strip('"'), {"current": ("Current (A)",), "voltage": ("Potential (V)",),
                                                "time": ("Run Time (h)",), "cycle": ("Cycle Number",)}, "Novonix")
    with _quiet_beep():
        try:
            if fmt == "arbin":
                from beep.structure.arbin import ArbinDatapath as Reader
            elif fmt == "maccor":
                from beep.structure.maccor import MaccorDatapath as Reader
            else:
                from beep.structure.novonix import NovonixDatapath as Reader
            dp = Reader.from_file(str(path.expanduser().resolve()))
        except DataFileError:
            raise
        except Exception as exc:
            raise DataFileError(f"{path}: the {fmt} reader (beep) failed: {type(exc).__name__}: {exc}") from exc
    raw = dp.raw_data
    cols: dict[str, pd.Series] = {"cycle": raw["cycle_index"],
                                  "step": raw["step_num"] if fmt == "novonix" else raw["step_index"],
                                  "time_s": raw["test_time"].astype(float) * (3600.0 if fmt == "novonix" else 1.0)}
    current = raw["current"].astype(float)
    if fmt == "maccor":  # Maccor writes |I| or signed I depending on the setup: the state letter decides
        state = raw["_state"].astype(str)
        current = current.abs().where(state != "D", -current.abs()).where(state.isin(["C", "D"]), current)
    cols["current_A"] = current
    cols["voltage_V"] = raw["voltage"].astype(float)
    for col in ("charge_capacity", "discharge_capacity"):
        cols[f"{col}_Ah"] = raw[col].astype(float)
    for col in ("charge_energy", "discharge_energy"):
        cols[f"{col}_Wh"] = raw[col].astype(float)
    if fmt == "novonix":  # beep leaves the other half-cycle's counter empty
        for col in ("charge_capacity_Ah", "discharge_capacity_Ah", "charge_energy_Wh", "discharge_energy_Wh"):
            cols[col] = cols[col].fillna(0.0)
    present = ["cycle", "step", "time_s", "current_A", "voltage_V", "charge_capacity_Ah", "discharge_capacity_Ah",
               "charge_energy_Wh", "discharge_energy_Wh"]
    if "temperature" in raw and raw["temperature"].notna().any():
        cols["temperature_C"] = raw["temperature"].astype(float)
        present.append("temperature_C")
    if "internal_resistance" in raw and (raw["internal_resistance"].fillna(0) != 0).any():
        cols["internal_resistance_ohm"] = raw["internal_resistance"].astype(float).replace(0.0, np.nan)
        present.append("internal_resistance_ohm")
    tidy = pd.DataFrame(cols, index=raw.index)  # one construction
    meta = {k: v for k, v in (dp.metadata.raw if hasattr(dp.metadata, "raw") else {}).items()
            if isinstance(v, (str, int, float, bool)) and not str(k).startswith("_")}
    return RawCell(tidy, present, meta)


def read_arbin(path: Path) -> RawCell:
    """Read an Arbin CSV export through ``beep.structure.arbin.ArbinDatapath``."""
    return _read_beep(path, "arbin")


def read_maccor(path: Path) -> RawCell:
    """Read a Maccor raw text export through ``beep.structure.maccor.MaccorDatapath``."""
    return _read_beep(path, "maccor")


def read_novonix(path: Path) -> RawCell:
    """Read a Novonix HPC export through ``beep.structure.novonix.NovonixDatapath``; files its parser refuses
    (newer UHPC versions write 24-hour stamps without AM/PM: "Date-time was not parsable") are read with pandas
    from the same columns, and the metadata says so."""
    try:
        cell = _read_beep(path, "novonix")
    except DataFileError as exc:
        if "reader (beep) failed" not in str(exc):
            raise
        cell = _read_novonix_pandas(path)
        why = exc.__cause__ or exc
        cell.metadata["reader"] = f"battlab (pandas); beep's Novonix reader failed: {type(why).__name__}: {why}"
    _novonix_nominal(cell.metadata)
    return cell


def _novonix_nominal(meta: dict) -> None:
    """``meta["nominal_capacity_Ah"]`` from the header's ``Capacity (Ah):`` line (beep keeps it as
    ``nominal_capacity``), when it is a positive number.

    Example
    -------
    >>> meta = {"nominal_capacity": "0.24"}
    >>> _novonix_nominal(meta)
    >>> meta["nominal_capacity_Ah"]
    0.24
    """
    for key in ("nominal_capacity", "Capacity (Ah)"):
        try:
            value = float(meta.get(key, "nan"))
        except (TypeError, ValueError):
            continue
        if np.isfinite(value) and value > 0:
            meta["nominal_capacity_Ah"] = value
            return


def _read_novonix_pandas(path: Path) -> RawCell:
    import io

    from battlab.cycling.formats.columns import check_numbers, split_counter, to_number

    text = text_head(path.read_bytes())
    lines = [ln.strip().strip('"') for ln in text.splitlines()]
    at = next((i for i, ln in enumerate(lines) if ln.startswith("Date and Time,Cycle Number")), None)
    if at is None:
        raise DataFileError(f"{path}: Novonix export without its 'Date and Time,Cycle Number,...' header")
    raw = pd.read_csv(io.StringIO("\n".join(ln for ln in lines[at:] if ln)), dtype=str, keep_default_na=False,
                      na_values=[""], index_col=False)
    raw.columns = [c.strip() for c in raw.columns]
    _check_header(path, ",".join(raw.columns), {"current": ("Current (A)",), "voltage": ("Potential (V)",),
                                                "time": ("Run Time (h)",), "cycle": ("Cycle Number",)}, "Novonix")
    if not len(raw):
        raise DataFileError(f"{path}: header only, no data rows")
    tidy = pd.DataFrame(index=raw.index)
    tidy["cycle"] = to_number(raw["Cycle Number"])
    if "Step Number" in raw:
        tidy["step"] = to_number(raw["Step Number"])
    tidy["time_s"] = to_number(raw["Run Time (h)"]) * 3600.0
    current = to_number(raw["Current (A)"])
    check_numbers(path, raw["Current (A)"], current, "Current (A)")
    check_numbers(path, raw["Potential (V)"], to_number(raw["Potential (V)"]), "Potential (V)")
    tidy["current_A"] = current
    tidy["voltage_V"] = to_number(raw["Potential (V)"])
    direction = pd.Series(np.where(current > 0, "C", np.where(current < 0, "D", "")), index=raw.index)
    cyc = tidy["cycle"] if tidy["cycle"].nunique() > 1 else None
    for col, kind in (("Capacity (Ah)", "capacity_Ah"), ("Energy (Wh)", "energy_Wh")):
        if col in raw:  # one step counter for both directions
            tidy[f"charge_{kind}"] = split_counter(to_number(raw[col]), direction, "C", cyc)
            tidy[f"discharge_{kind}"] = split_counter(to_number(raw[col]), direction, "D", cyc)
    temp = next((c for c in raw.columns if c.startswith("Temperature (")), None)
    if temp is not None and to_number(raw[temp]).notna().any():
        tidy["temperature_C"] = to_number(raw[temp])
    meta = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[:at])
            if k.strip() in ("Channel", "Cell", "Description", "Capacity (Ah)", "Started", "Version")}
    return RawCell(tidy, list(tidy.columns), meta)


