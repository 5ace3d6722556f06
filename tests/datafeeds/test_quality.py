"""No bad bar passes silently: corrupted real frames and files always raise DataError naming
the rule, and nothing else is raised."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datafeeds import DataError, load_sample, validate_ohlcv
from datafeeds.loaders import load_file, load_file_checked
from datafeeds.quality import check_ohlcv

BARS = load_sample("btcusd-1h").iloc[3000:3060]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
rows = st.integers(min_value=1, max_value=len(BARS) - 2)


def _corrupt(kind: str, row: int, value: float) -> tuple[pd.DataFrame, str]:
    frame = BARS.copy()
    col = frame.columns
    if kind == "nan":
        frame.iloc[row, int(value) % 5] = np.nan
        return frame, "no NaN"
    if kind == "price":
        frame.iloc[row, int(value) % 4] = -abs(value) if value else 0.0
        return frame, "prices > 0"
    if kind == "high_low":
        frame.iloc[row, col.get_loc("high")] = frame.iloc[row]["low"] * 0.5
        return frame, "high >= low|high >= max"
    if kind == "duplicate":
        index = frame.index.to_numpy().copy()
        index[row] = index[row - 1]
        frame.index = pd.DatetimeIndex(index, name="datetime")
        return frame, "unique timestamps"
    index = frame.index.to_numpy().copy()  # unsorted
    index[row], index[row + 1] = index[row + 1], index[row]
    frame.index = pd.DatetimeIndex(index, name="datetime")
    return frame, "strictly increasing"


@SETTINGS
@given(kind=st.sampled_from(["nan", "price", "high_low", "duplicate", "unsorted"]), row=rows,
       value=st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_corrupted_frames_are_refused_with_the_rule(kind, row, value):
    frame, rule = _corrupt(kind, row, value)
    with pytest.raises(DataError, match=rule):
        validate_ohlcv(frame, source="test")


def _write(tmp_path, text: str):
    path = tmp_path / "bars.csv"
    path.write_text(text)
    return path


def _csv_lines() -> list[str]:
    frame = BARS.copy()
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame.to_csv(index_label="datetime").splitlines()


@SETTINGS
@given(row=rows, col=st.integers(1, 5), text=st.sampled_from(["abc", "1,5", "--", "nan?"]))
def test_text_in_numeric_columns(tmp_path, row, col, text):
    lines = _csv_lines()
    fields = lines[row + 1].split(",")
    fields[col] = text.replace(",", ";")
    lines[row + 1] = ",".join(fields)
    with pytest.raises(DataError, match="no NaN or non-numeric"):
        load_file(_write(tmp_path, "\n".join(lines)))


@SETTINGS
@given(row=rows, keep=st.integers(1, 4))
def test_truncated_last_line(tmp_path, row, keep):
    lines = _csv_lines()[: row + 2]
    lines[-1] = ",".join(lines[-1].split(",")[:keep])
    with pytest.raises(DataError, match=f"line {row + 2} has {keep} of 6 fields, a short"):
        load_file(_write(tmp_path, "\n".join(lines)))


@SETTINGS
@given(row=rows, offset=st.sampled_from(["+01:00", "-05:00", "+09:30"]))
def test_mixed_timezones(tmp_path, row, offset):
    lines = _csv_lines()
    lines[row + 1] = lines[row + 1].replace("Z,", offset + ",", 1)
    with pytest.raises(DataError, match="mixed timezones|strictly increasing|unique"):
        load_file(_write(tmp_path, "\n".join(lines)))


@pytest.mark.parametrize(("text", "rule"), [
    ("", "cannot be read"),
    ("datetime,open,high,low,close,volume\n", "no bars"),
    ("a,b,c\n1,2,3\n", "lack|not a bar layout|no time column"),
])
def test_empty_header_only_and_foreign_files(tmp_path, text, rule):
    with pytest.raises(DataError, match=rule):
        load_file(_write(tmp_path, text))


def test_repair_drops_exact_duplicates_keeps_last_of_clashes_and_sorts():
    frame = pd.concat([BARS.iloc[:10], BARS.iloc[[3]], BARS.iloc[10:20].iloc[::-1]])
    clash = BARS.iloc[[5]].copy()
    clash["volume"] += 1.0
    frame = pd.concat([frame, clash])
    fixed, report = check_ohlcv(frame, source="t", repair=True)
    assert fixed.index.equals(BARS.index[:20])
    assert fixed.loc[BARS.index[5], "volume"] == clash["volume"].iloc[0]  # kept the last
    assert len(report.repairs) == 3
    with pytest.raises(DataError):
        check_ohlcv(frame, source="t")  # strict by default


def test_repair_drops_the_forming_candle_only():
    now = BARS.index[-1] + pd.Timedelta(minutes=30)
    fixed, report = check_ohlcv(BARS, source="t", repair=True, timeframe="1h", now=now)
    assert fixed.index.equals(BARS.index[:-1])
    assert "forming candle" in report.repairs[0]
    closed, report = check_ohlcv(BARS, source="t", repair=True, timeframe="1h",
                                 now=BARS.index[-1] + pd.Timedelta(hours=1))
    assert len(closed) == len(BARS) and report.repairs == ()


def test_naive_timestamps_are_refused_with_the_fix():
    with pytest.raises(DataError, match="naive"):
        validate_ohlcv(BARS.tz_convert(None), source="t")


@SETTINGS
@given(data=st.data())
def test_any_byte_corruption_is_a_data_error_or_valid_bars(tmp_path, data):
    """Overwrite, delete or insert characters anywhere in a real CSV: the loader either
    returns bars that meet the contract or raises DataError; never another exception."""
    text = "\n".join(_csv_lines()[:12])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        junk = data.draw(st.text(alphabet=st.sampled_from(list(",.-:+eEZT x\n\"0159")),
                                 max_size=3))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + junk + text[at + cut:]
    try:
        bars = load_file(_write(tmp_path, text))
    except DataError:
        return
    validate_ohlcv(bars, source="re-check")  # whatever got through meets the contract


@SETTINGS
@given(row=rows, col=st.integers(0, 4), sign=st.sampled_from([1.0, -1.0]))
def test_infinite_values_are_refused(row, col, sign):
    frame = BARS.copy()
    frame.iloc[row, col] = sign * np.inf
    with pytest.raises(DataError, match="no NaN or non-numeric|prices > 0|high >= |low <="):
        validate_ohlcv(frame, source="t")


@SETTINGS
@given(row=rows, zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Tokyo"]))
def test_mixed_timezones_in_a_frame_index(row, zone):
    stamps = list(BARS.index)
    stamps[row] = stamps[row].tz_convert(zone).tz_localize(None)  # one naive stamp among UTC
    frame = BARS.copy()
    frame.index = pd.Index(stamps, dtype=object)
    with pytest.raises(DataError, match="one timezone-aware DatetimeIndex"):
        validate_ohlcv(frame, source="t")


def test_missing_timestamps_are_refused(tmp_path):
    lines = _csv_lines()
    lines[5] = "," + lines[5].split(",", 1)[1]
    with pytest.raises(DataError, match="no missing timestamps.*line 6"):  # header is line 1
        load_file(_write(tmp_path, "\n".join(lines)))


def test_text_names_the_line_and_the_value(tmp_path):
    lines = _csv_lines()
    fields = lines[7].split(",")
    lines[7] = ",".join([fields[0], "oops", *fields[2:]])
    with pytest.raises(DataError, match=r"column 'open': text at 1 row\(s\): line 8 \('oops'\)"):
        load_file(_write(tmp_path, "\n".join(lines)))


def test_rows_without_values_are_dropped_only_when_repairing(tmp_path):
    lines = _csv_lines()
    lines.insert(4, "2017-11-30T00:30:00Z,null,null,null,null,null")  # Yahoo's "null" rows
    path = _write(tmp_path, "\n".join(lines))
    with pytest.raises(DataError, match="no NaN"):
        load_file(path)
    bars, report = load_file_checked(path, repair=True)
    assert bars.index.equals(BARS.index)
    assert report.repairs[0].startswith("dropped 1 row(s) without any value")
