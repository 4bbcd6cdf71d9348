"""python -m drgn_ptwalk: the drgn-ptwalk CLI."""

import sys

from drgn_ptwalk.cli import main

sys.exit(main())
