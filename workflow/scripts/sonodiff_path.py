"""Makes ``import sonodiff`` work in a rule script however the job was started.

Imported first by every rule script. Snakemake puts the script's own folder on the search path,
but with ``--use-conda`` it deletes ``PYTHONPATH``, and a conda environment (or a cluster node's)
need not have sonodiff installed. So when this folder sits in a checkout (``src/sonodiff`` two
folders up), that source goes first on ``sys.path``: the rules and the package they call are then
always the same version. Without a checkout (an installed workflow), the installed package is used.
"""

import sys
from pathlib import Path

CHECKOUT_SRC = Path(__file__).resolve().parents[2] / "src"

if (CHECKOUT_SRC / "sonodiff" / "__init__.py").is_file() and str(CHECKOUT_SRC) not in sys.path:
    sys.path.insert(0, str(CHECKOUT_SRC))
