"""Make `avhrrsm` importable in a job even where it is not installed (e.g. a conda env).

Snakemake puts this folder on sys.path for local scripts; the package lives in ../../src.
"""

import sys
from pathlib import Path

try:
    import avhrrsm  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
