"""evaluate on unusable input: one clear line naming the file, exit 1; bad rows counted."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "sensor_id,timestamp,prediction,label,smap_sm,gldas_sm,center_lat,center_long,shard,index"


def run_cli(argv):
    proc = subprocess.run([sys.executable, "-m", "pipelines.evaluate", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def _rows(n, sensors=3):
    out = []
    for i in range(n):
        label = 0.1 + 0.01 * (i % 17)
        out.append(f"NET__S{i % sensors}__T,{1.5e12 + 3.6e6 * i},{label + 0.02 * (i % 3)},{label},"
                   f"{40 + i % 50},{60 + i % 30},1.0,2.0,data-00000-of-00001.tfrecord.gz,{i}")
    return out


@pytest.mark.parametrize("content,expected", [
    ("", "is empty: expected a header line"),
    (HEADER + "\n", "a header but no rows"),
    ("a,b,c\n1,2,3\n", "header lacks the columns sensor_id, timestamp, label"),
    ("\n".join(_rows(5)) + "\n", "header lacks the columns"),  # no header
])
def test_unusable_csv_is_one_line_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "pred-00000-of-00001.csv"
    path.write_text(content)
    rc, _, stderr = run_cli(["--predictions", str(tmp_path / "pred-*.csv"),
                             "--output_dir", str(tmp_path / "ev")])
    assert rc == 1
    (line,) = stderr.strip().splitlines()
    assert str(path) in line and expected in line


def test_glob_matching_nothing_is_an_error(tmp_path):
    rc, _, stderr = run_cli(["--predictions", str(tmp_path / "none-*.csv"),
                             "--output_dir", str(tmp_path / "ev")])
    assert rc == 1 and f"no files match {tmp_path / 'none-*.csv'}" in stderr


def test_non_numeric_rows_are_counted_and_named_not_fatal(tmp_path):
    rows = _rows(60)
    parts = rows[6].split(",")
    parts[2] = "oops"  # a prediction that is no number
    rows[6] = ",".join(parts)
    rows[20] = rows[20].split(",", 1)[0] + ",not-a-time," + rows[20].split(",", 2)[2]
    path = tmp_path / "pred-00000-of-00001.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    rc, _, stderr = run_cli(["--predictions", str(path), "--output_dir", str(tmp_path / "ev"),
                             "--split_by", "none", "--min_samples_per_sensor", "3"])
    assert rc == 0, stderr[-2000:]
    assert "2 rows could not be parsed" in stderr
    assert f"{path}:8: prediction 'oops' is not a number" in stderr  # line 8: header + 7th row
    assert f"{path}:22: timestamp 'not-a-time' is not a number" in stderr
    metrics = json.load(open(tmp_path / "ev" / "metrics.json"))
    assert metrics["pooled"]["all"]["model"]["n"] == 58


def test_nothing_left_after_bad_rows_is_an_error(tmp_path):
    rows = [r.replace(",0.1", ",oops", 1) for r in _rows(4) if ",0.1" in r]
    path = tmp_path / "pred.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    rc, stdout, stderr = run_cli(["--predictions", str(path), "--output_dir",
                                  str(tmp_path / "ev"), "--split_by", "none"])
    assert rc == 1 and "has a label and a prediction to evaluate" in stderr
    # no empty tables or plots that would pass for a result: why, and the rows left out
    assert stdout == "" and sorted(os.listdir(tmp_path / "ev")) == ["bad_rows.jsonl",
                                                                   "metrics.json"]
