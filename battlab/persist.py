"""Reading a pickled battlab object back: one check of the path and of the class, for every ``load`` classmethod.

Loading unpickles a joblib file, which runs code: trusted files only.

Example
-------
>>> import tempfile, joblib
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> _ = joblib.dump([1, 2], folder / "thing.joblib")
>>> load_joblib(folder, list, file_name="thing.joblib", missing="{path}: nothing there")
[1, 2]
>>> load_joblib(folder / "none.joblib", list, missing="{path}: nothing there")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
battlab.errors.BattlabError: ...none.joblib: nothing there
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from battlab.errors import BattlabError

__all__ = ["load_joblib"]


def load_joblib(path: str | Path, cls: type, *, file_name: str | None = None, missing: str,
                wrong: str = "{path}: holds a {found}, not a {cls}") -> Any:
    """The object of class ``cls`` pickled at ``path`` (a file, or a folder holding ``file_name``).

    ``missing`` and ``wrong`` are the one-line messages (formatted with ``path``, ``found``, ``cls``) when there is no
    such file, or when it holds something else.
    """
    import joblib

    p = Path(path).expanduser()
    if file_name is not None and p.is_dir():
        p = p / file_name
    if not p.is_file():
        raise BattlabError(missing.format(path=p, cls=cls.__name__))
    obj = joblib.load(p)
    if not isinstance(obj, cls):
        raise BattlabError(wrong.format(path=p, found=type(obj).__name__, cls=cls.__name__))
    return obj
