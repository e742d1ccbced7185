import sys

from battlab.cli import main

sys.exit(main())
