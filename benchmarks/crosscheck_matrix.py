"""Print the cross-check matrix: implementation x case x dtype -> max abs difference.

Run from the repository root:  python benchmarks/crosscheck_matrix.py
(the same as ``swinref crosscheck --matrix``). Exit code 1 when any cell fails its tolerance.
"""

import sys

from swinref.cli import main

if __name__ == "__main__":
    sys.exit(main(["crosscheck", "--matrix", *sys.argv[1:]]))
