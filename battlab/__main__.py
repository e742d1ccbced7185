"""``python -m battlab``: the ``battlab`` command."""

import sys

from battlab.cli import main

if __name__ == "__main__":  # importing the module (e.g. the docs' API scan) must not run the command
    sys.exit(main())
