"""One real file in each store backend: read back bit-identical, and the same model from each."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from datafeeds.loaders import load_file
from datafeeds.store import StoreKey
from datafeeds.stores import open_store
from mlstrategy.cli import cli


def test_a_file_imported_into_each_backend_reads_back_exactly_and_trains_the_same_model(
        tmp_path, postgres_url):
    from datafeeds import load_sample

    # a pandas-index CSV (DataFrame.to_csv) of real daily bars: the file a Python user has
    path = tmp_path / "orcl.csv"
    load_sample("orcl-1d").tz_convert(None).rename(columns=str.title).to_csv(path)
    original = load_file(path)
    runner = CliRunner()
    hashes = {}
    for url in (f"parquet:{tmp_path / 'pq'}", f"sqlite:///{tmp_path / 'bars.db'}", postgres_url):
        imported = runner.invoke(cli, ["data", "import", str(path), "--symbol", "ORCL",
                                       "--source", "yahoo", "--store", url])
        assert imported.exit_code == 0, imported.output
        assert "ORCL 1d: stored 5036 bars" in imported.output  # the timeframe was inferred
        stored = open_store(url).read(StoreKey("yahoo", "ORCL", "1d"))
        pd.testing.assert_frame_equal(stored, original, check_exact=True, check_freq=False)
        assert np.array_equal(stored.index.asi8, original.index.asi8)
        trained = runner.invoke(cli, [
            "train", "--store", url, "--source", "yahoo", "--symbol", "ORCL", "--timeframe",
            "1d", "--param", "iterations=30", "--folds", "2", "--no-promote", "--json",
            "--models-dir", str(tmp_path / "models" / url.split(":")[0])])
        assert trained.exit_code == 0, trained.output
        manifest = json.loads(trained.stdout.strip().splitlines()[-1])["manifest"]
        assert manifest["training_data"]["source"] == "store:yahoo"
        names = manifest["features"]["names"]  # daily bars: no constant hour-of-day columns
        assert not any("hour" in n for n in names) and any("dow" in n for n in names)
        hashes[url.split(":")[0]] = (manifest["model_sha256"],
                                     manifest["training_data"]["sha256"])
    assert len(set(hashes.values())) == 1, hashes
