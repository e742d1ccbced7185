"""Sphinx configuration of battlab's documentation site (`make docs` -> docs/_build/html).

The pages are the Markdown files of ``docs/`` (MyST); the API reference comes from the docstrings (autodoc +
napoleon); the example notebooks are the pipeline's, executed by ``battlab run --quick`` and rendered as they are
(never executed by Sphinx, never committed with outputs); the app gallery holds the browser tests' screenshots.
What is generated at build time (``notebooks/``, ``gallery/``, ``api/``) is made by ``_ext/battlab_docs.py``.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

from battlab_docs import repository  # noqa: E402

import battlab  # noqa: E402

project = "battlab"
author = "battlab developers"
copyright = "battlab developers"  # noqa: A001
release = version = battlab.__version__

extensions = [
    "myst_nb",  # Markdown pages (MyST) and executed notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the numpy-style docstrings (Parameters, Returns, Example)
    "battlab_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "gallery/*.md", "**.ipynb_checkpoints"]

# MyST: heading anchors so that `page.md#section` links resolve
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Notebooks are rendered as executed by the pipeline (battlab run --quick); Sphinx never runs them.
nb_execution_mode = "off"
nb_merge_streams = True

# API reference: one page per public module (api/, written by battlab_docs), from the docstrings.
# Each object is documented once, in the module that defines it (a package's __all__ re-exports are not repeated).
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

# Theme: the PyData theme, as PyBaMM and scikit-learn use; nothing fetched at build or view time.
html_theme = "pydata_sphinx_theme"
html_title = f"battlab {release}"
html_theme_options = {
    "github_url": f"https://github.com/{repository()}",
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_static_path: list[str] = []
html_last_updated_fmt = None
