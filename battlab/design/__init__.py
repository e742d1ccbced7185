"""Designing new electrode materials: candidates, and their relaxation and voltage with a universal ML potential.

- :mod:`battlab.design.pairs`: classic insertion pairs (ion-rich, ion-poor) and working-ion metals built in code
  from published lattice parameters and Wyckoff positions (nothing downloaded);
- :mod:`battlab.design.relax`: relaxation, energies, forces and average intercalation voltage with CHGNet or
  SevenNet (the optional extra ``battlab[atomistic]``: ``pip install -e ".[atomistic]"`` or
  ``make .venv-atomistic/.installed``).

Nothing is imported here: ``import battlab.design`` never imports PyTorch; the potentials are loaded on first use.
"""
