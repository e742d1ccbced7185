"""Neware binary files, ``.nda`` and ``.ndax``, read through ``NewareNDA``.

``NewareNDA.read`` picks the reader by the file's extension (lower case only); battlab picks it by content (an
``.nda`` starts with ``NEWARE``, an ``.ndax`` is a zip of ``.ndc`` members) and calls NewareNDA's ``read_nda`` /
``read_ndax`` with NewareNDA's defaults (its own cycle number: a charge after a discharge opens a cycle, as
BTSDA's "charge first" statistic). Mapping to the tidy table:

- ``Current(mA)`` / 1000, signed by ``Status`` (``*_Chg`` positive, ``*_DChg`` negative); ``Voltage`` in V.
- time: ``Time`` when it runs through the test (BTS 9 ``.nda``), else (step time, reset at each step) the steps'
  times added up; ``metadata["time"]`` says which. ``Timestamp`` (the clock) stays in ``metadata`` (first, last).
- capacities and energies (``Charge_Capacity(mAh)``, ``Discharge_Energy(mWh)``, ...): Neware restarts them at
  each step (a CC-CV charge is two counters); battlab adds the steps of each cycle up, so each is a counter from
  0 through the cycle, like Arbin's (mAh -> Ah, mWh -> Wh).
- ``Cycle``, ``Step_Index`` (the protocol step; ``Step`` when absent), ``T1`` (first auxiliary temperature, °C).

Example
-------
>>> sniff(b"NEWARE20240403\\x82\\x00", Path("61[07005012] x.NDA"))
True
>>> steps_added_up(pd.Series([0.0, 5.0, 0.0, 2.0]), pd.Series([1, 1, 2, 2])).tolist()
[0.0, 5.0, 5.0, 7.0]
>>> steps_added_up(pd.Series([1.0, 2.0, 3.0]), pd.Series([1, 2, 3]), within=pd.Series([1, 1, 2])).tolist()
[1.0, 3.0, 3.0]
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from battlab.cycling.formats import RawCell, first_zip_member, zip_opens
from battlab.errors import DataFileError

__all__ = ["read", "sniff", "is_ndax", "nda_truncated", "restarts_at_steps", "steps_added_up"]


def is_ndax(path: Path) -> bool:
    """Whether a zip file is a Neware ``.ndax`` (it holds ``.ndc`` members)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.lower().endswith(".ndc") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def sniff(head: bytes, path: Path) -> bool:
    """A Neware ``.nda`` (``NEWARE`` magic) or ``.ndax`` (a zip with ``.ndc`` members), whatever the file's name; a
    damaged ``.ndax`` too when its first member is an ``.ndc`` (the reader then says it is damaged)."""
    if head.startswith(b"NEWARE"):
        return True
    if head[:4] != b"PK\x03\x04":
        return False
    return is_ndax(path) or (first_zip_member(head) or "").lower().endswith(".ndc") and not zip_opens(path)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    logger = logging.getLogger("newarenda")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def steps_added_up(values: pd.Series, groups: pd.Series, within: pd.Series | None = None) -> pd.Series:
    """A per-step counter (restarting at each change of ``groups``) turned into one running on: each group adds
    the previous groups' last values. With ``within`` (e.g. the cycle), the sum restarts when ``within`` changes."""
    values = pd.Series(values, dtype=float).reset_index(drop=True)
    groups = pd.Series(groups).reset_index(drop=True)
    block = (groups != groups.shift()).cumsum()
    last = values.groupby(block).last()
    offset = last.cumsum().shift(fill_value=0.0)
    if within is not None:  # restart the sum where ``within`` changes: subtract the sum reached at that block
        w = pd.Series(within).reset_index(drop=True).groupby(block).first()
        offset = offset - offset.groupby((w != w.shift()).cumsum()).transform("first")
    return values + block.map(offset).to_numpy()


def nda_truncated(data: bytes) -> bool:
    """Whether an ``.nda``'s bytes end inside its data records (NewareNDA reads what is there without a word).

    Version 130 files (BTS 7-9) end their records with a section starting ``0x81`` at a record boundary; version 29
    files are a header then 86-byte records to the end. Other versions: False (NewareNDA says what it does not know).

    Example
    -------
    >>> nda_truncated(b"NEWARE" + bytes(8) + bytes([130]) + bytes(1009) + b"\\x55\\x00" + bytes(100))
    True
    """
    version = data[14] if len(data) > 14 else None
    if version == 130:
        record = 88
        if data[1024:1025] == b"\x55":  # BTS 9.1: the record length is the distance to the next record
            record = data.find(data[1024:1026], 1026) - 1024
        if record <= 0:
            return True
        return b"\x81" not in data[1024::record]
    if version == 29:
        start = data.find(b"\x00\x00\x00\x00\x55\x00")
        return start < 0 or (len(data) - (start + 4)) % 86 != 0
    return False


def restarts_at_steps(values: pd.Series, step: pd.Series) -> bool:
    """Whether a counter restarts at each step (Neware's usual per-step counters) rather than running on: at most
    step changes where the counter was above zero, the next step's first value is below the previous step's last.

    Example
    -------
    >>> restarts_at_steps(pd.Series([0.0, 5.0, 0.1, 2.0]), pd.Series([1, 1, 2, 2]))
    True
    >>> restarts_at_steps(pd.Series([0.0, 5.0, 5.0, 7.0]), pd.Series([1, 1, 2, 2]))
    False
    """
    v = pd.Series(values, dtype=float).reset_index(drop=True)
    s = pd.Series(step).reset_index(drop=True)
    change = (s != s.shift()).to_numpy()
    change[0] = False
    at = np.flatnonzero(change)
    before, after = v.to_numpy()[at - 1], v.to_numpy()[at]
    counted = before > 0
    if not counted.any():
        return True
    return bool(np.mean(after[counted] < 0.999 * before[counted]) >= 0.5)


def _matches(status: pd.Series, pattern: str) -> np.ndarray:
    """Rows whose status matches ``pattern`` (case-insensitive), tested once per distinct status.

    Example
    -------
    >>> _matches(pd.Series(["CC_Chg", "CC_DChg", "Rest"]), r"(?<!D)Chg").tolist()
    [True, False, False]
    """
    status = status.astype(object)
    hit = {k: bool(re.search(pattern, str(k), re.I)) for k in pd.unique(status)}
    return status.map(hit).eq(True).to_numpy()


def _test_time(time: pd.Series, step: pd.Series) -> tuple[pd.Series, str]:
    """Seconds from the start of the test: ``Time`` itself when it never goes back, else the steps added up."""
    t = time.astype(float).reset_index(drop=True)
    if not (t.diff().dropna() < 0).any():
        return t, "Time (the file's test time)"
    return steps_added_up(t, step), "Time added up over the steps (the file's Time is the step time)"


def read(path: Path) -> RawCell:
    """Read a Neware ``.nda`` or ``.ndax`` through NewareNDA into tidy columns (see the module docstring)."""
    try:
        from NewareNDA.NewareNDA import read_nda, read_nda_metadata
        from NewareNDA.NewareNDAx import read_ndax, read_ndax_metadata
    except ImportError as exc:  # pragma: no cover - NewareNDA is a dependency
        raise DataFileError(f"{path}: Neware files need the NewareNDA package (pip install NewareNDA)") from exc
    with open(path, "rb") as fh:
        magic = fh.read(6)
    ndax = magic[:4] == b"PK\x03\x04"
    kind = "Neware .ndax" if ndax else "Neware .nda"
    if ndax and not zip_opens(path):
        raise DataFileError(f"{path}: truncated or damaged Neware .ndax (its zip directory is unreadable; copy it "
                            "again from the cycler's computer)")
    if ndax and not is_ndax(path):
        raise DataFileError(f"{path}: a zip archive without Neware .ndc members (not an .ndax)")
    if not ndax and nda_truncated(path.read_bytes()):
        raise DataFileError(f"{path}: truncated Neware .nda (the file ends inside its data records; copy it again "
                            "from the cycler's computer)")
    try:
        with _quiet():
            raw = (read_ndax if ndax else read_nda)(str(path), True, "chg")
    except Exception as exc:
        raise DataFileError(f"{path}: {kind} that NewareNDA cannot read (truncated, damaged or a version it does "
                            f"not know): {_one_line(exc)}") from None
    if not len(raw):
        raise DataFileError(f"{path}: {kind} with no data records")
    needed = ("Voltage", "Current(mA)", "Time", "Status")
    missing = [c for c in needed if c not in raw]
    if missing:
        raise DataFileError(f"{path}: {kind}: NewareNDA returned no {', '.join(missing)} column "
                            f"(columns: {', '.join(map(str, raw.columns))})")
    raw = raw.reset_index(drop=True)
    meta: dict[str, Any] = {"reader": f"NewareNDA.{'read_ndax' if ndax else 'read_nda'}",
                            "file_columns": [str(c) for c in raw.columns],
                            "cycle": "NewareNDA's cycle number (a charge after a discharge opens a cycle)"}
    try:
        with _quiet():
            info = (read_ndax_metadata if ndax else read_nda_metadata)(Path(path))
        meta.update({k: v for k, v in info.items() if isinstance(v, (str, int, float, bool))})
        remark = info.get("TestInfo", {}).get("TestInfo", {}).get("Remark") if isinstance(info, dict) else None
        if isinstance(remark, str) and remark:
            meta["remark"] = remark
    except Exception:  # metadata is a nicety: the data were read
        pass
    status = raw["Status"]
    step = raw["Step"] if "Step" in raw else pd.Series(np.zeros(len(raw)))
    tidy = pd.DataFrame(index=raw.index)
    tidy["time_s"], meta["time"] = _test_time(raw["Time"], step)
    if "Timestamp" in raw and raw["Timestamp"].notna().any():
        meta["first_timestamp"], meta["last_timestamp"] = str(raw["Timestamp"].iloc[0]), str(raw["Timestamp"].iloc[-1])
    current = raw["Current(mA)"].astype(float) / 1000.0
    dis, chg = _matches(status, "DChg"), _matches(status, r"(?<!D)Chg")
    tidy["current_A"] = current.where(~chg, current.abs()).where(~dis, -current.abs())
    tidy["voltage_V"] = raw["Voltage"].astype(float)
    present = ["time_s", "current_A", "voltage_V"]
    if "Cycle" in raw:
        tidy["cycle"] = raw["Cycle"].astype(np.int64)
        present.append("cycle")
    scol = "Step_Index" if "Step_Index" in raw else "Step" if "Step" in raw else None
    if scol:
        tidy["step"] = raw[scol].astype(np.int64)
        present.append("step")
    cycle = tidy["cycle"] if "cycle" in tidy else None
    for src, dst, factor in (("Charge_Capacity(mAh)", "charge_capacity_Ah", 1e-3),
                             ("Discharge_Capacity(mAh)", "discharge_capacity_Ah", 1e-3),
                             ("Charge_Energy(mWh)", "charge_energy_Wh", 1e-3),
                             ("Discharge_Energy(mWh)", "discharge_energy_Wh", 1e-3)):
        if src in raw:
            values = raw[src].astype(float).abs() * factor
            if restarts_at_steps(values, step):
                tidy[dst] = steps_added_up(values, step, cycle).to_numpy()
            else:  # already running through the steps: kept as the file has it
                tidy[dst] = values.to_numpy()
                meta.setdefault("counters_kept", []).append(src)
            present.append(dst)
    temps = [c for c in raw.columns if str(c).startswith("T") and str(c)[1:].isdigit()]
    if temps and raw[temps[0]].notna().any():
        tidy["temperature_C"] = raw[temps[0]].astype(float)
        present.append("temperature_C")
        meta["temperature"] = temps[0] + (f" (also in the file: {', '.join(temps[1:])})" if temps[1:] else "")
    meta["capacity"] = ("Neware's per-step counters added up over the steps of each cycle"
                        + (f" (except {', '.join(meta['counters_kept'])}: running through the steps already)"
                           if meta.get("counters_kept") else ""))
    return RawCell(tidy, present, meta)
