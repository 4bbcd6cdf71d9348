# SPDX-License-Identifier: LGPL-2.1-or-later
"""``python -m drgn_ptwalk``: the ``drgn-ptwalk`` CLI (:mod:`drgn_ptwalk.cli`)."""

import sys

from drgn_ptwalk.cli import main

sys.exit(main())
