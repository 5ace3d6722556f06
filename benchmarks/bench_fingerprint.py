"""Finding a model's training bars among a backtest's bars, by content, at 1M bars.

Run: ``python -m pytest benchmarks/bench_fingerprint.py --benchmark-only``. One group: the
check a backtest makes (fingerprint every bar, look each up among the model's 1M training-bar
fingerprints) beside the sha256 over the same bars that the check by hash used to make.
``extra_info`` holds the stored fingerprints' size in MB (the target: under 10 MB, the check
under 1 s).
"""
from __future__ import annotations

import pytest

from datafeeds.fingerprint import fingerprint_set, matches
from mlstrategy.research.dataset import ohlcv_sha256


@pytest.fixture(scope="module")
def known(big):
    return fingerprint_set(big)


def test_check_by_fingerprint(benchmark, big, known):
    benchmark.group = f"training bars among {len(big):,} bars"
    found = benchmark.pedantic(matches, args=(big, known), rounds=5, iterations=1,
                               warmup_rounds=1)
    assert found.all()
    benchmark.extra_info["stored_mb"] = round(known.nbytes / 1e6, 2)


def test_sha256_of_the_same_bars(benchmark, big):
    benchmark.group = f"training bars among {len(big):,} bars"
    benchmark.pedantic(ohlcv_sha256, args=(big,), rounds=5, iterations=1, warmup_rounds=1)
