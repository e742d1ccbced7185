"""Reusable ipywidgets components (results exposed as traitlets), shared by the notebooks and the
Voila apps in ``widgets/``. Install them with ``pip install -e ".[apps]"``."""
