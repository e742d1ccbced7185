"""Designing new materials: candidates made from known ones, screened by a fast model, planned next.

- :mod:`battlab.design.candidates` — compositions by ionic substitution (Hautier et al. 2011, pymatgen's table)
  and by enumeration with validity filters (SMACT), structures by substitution into prototypes (the user's CIFs or
  :mod:`battlab.design.prototypes`), duplicates removed by structure matching: a :class:`CandidateSet`.
- :mod:`battlab.design.voltage` — composition models of the average voltage of insertion electrodes and their
  transfer between working ions (Li, Na, K), on the Materials Project's insertion-electrode collection.
- :mod:`battlab.design.capacity` — redox-limited theoretical capacity: the working ions the redox-active cations
  can compensate (pymatgen's oxidation-state guesses), the capacity behind the funnel's energy proxy.
- :mod:`battlab.design.funnel` — candidates -> composition model with intervals -> ranking -> what
  :mod:`battlab.plan` suggests to compute next.
- :mod:`battlab.design.retro` — would the generator have proposed known electrodes it never saw (recall at N)?
- :mod:`battlab.design.pairs` — classic insertion pairs (ion-rich, ion-poor) and working-ion metals built in code
  from published lattice parameters and Wyckoff positions (nothing downloaded).
- :mod:`battlab.design.relax` — relaxation, energies, forces and average intercalation voltage with CHGNet or
  SevenNet (the optional extra ``battlab[atomistic]``: ``pip install -e ".[atomistic]"`` or
  ``make .venv-atomistic/.installed``).

Nothing imported here imports PyTorch; the potentials are loaded on first use.
"""

from battlab.design.candidates import CandidateSet, enumerate_compositions, framework, generate, substitute
from battlab.design.prototypes import PROTOTYPES, prototype

__all__ = ["PROTOTYPES", "CandidateSet", "enumerate_compositions", "framework", "generate", "prototype",
           "substitute"]
