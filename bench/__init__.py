# SPDX-License-Identifier: LGPL-2.1-or-later
"""
The benchmark (``python -m bench`` from the repository root; see :mod:`bench.__main__` and the README's
Benchmark section): a tool beside the tests, not part of the installed package.
"""
