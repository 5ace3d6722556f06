"""Editing a kernel helper in one file changes the results of kernels in another file at once,
cache or not: numba alone would keep running the old helper's compiled code."""
from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import REPO_ROOT

PROGRAM = """
import numpy as np
from datafeeds import load_sample
from features_numba import FeatureSpec, compute_features
bars = load_sample("btcusd-1h").iloc[:300]
x = compute_features(bars, FeatureSpec.from_dict({"features": [{"kind": "natr", "n": 14}]}))
print(repr(float(np.nansum(x))))
"""


def _run(root) -> float:
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=root, capture_output=True,
                          text=True, timeout=600, env={"PYTHONPATH": str(root),
                                                       "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return float(done.stdout.strip())


def test_an_edited_helper_reaches_every_kernel_that_calls_it(tmp_path):
    shutil.copytree(REPO_ROOT / "features_numba", tmp_path / "features_numba",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "datafeeds", tmp_path / "datafeeds",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = _run(tmp_path)
    assert _run(tmp_path) == before  # cached now, same result
    assert list((tmp_path / "features_numba" / "__pycache__").glob("kernels_1d.natr*.nbc"))
    steps = tmp_path / "features_numba" / "steps.py"
    source = steps.read_text()
    edited = source.replace("def _true_range(h, l, prev_c):\n",
                            "def _true_range(h, l, prev_c):\n    return 2.0 * (h - l)\n", 1)
    assert edited != source
    steps.write_text(edited)  # only the helper's file changes, not kernels_1d.py
    after = _run(tmp_path)
    assert after != before
