"""Progress lines of local runs: files written by workers, a line read by the driver."""

import os
import subprocess
import sys

from transforms.dataset import progress

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_board_sums_shards_and_throttles_writes(tmp_path):
    a = progress.ShardProgress(str(tmp_path), "read", "gs://b/data-0.gz")
    b = progress.ShardProgress(str(tmp_path), "read", "gs://b/data-1.gz")
    a.update(5, 1000)  # first update writes
    a.update(6, 2000)  # within two seconds: not written
    b.update(3, 500, done=True)
    board = progress.read_board(str(tmp_path))
    assert board == {"read": {"shards_done": 1, "examples": 8, "bytes": 1500}}
    a.update(7, 3000, done=True)  # done always writes
    assert progress.read_board(str(tmp_path))["read"] == {"shards_done": 2, "examples": 10,
                                                          "bytes": 3500}
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_progress_line_counts_every_pass_in_the_eta():
    board = {"read": {"shards_done": 4, "examples": 100, "bytes": 400_000_000},
             "write": {"shards_done": 1, "examples": 20, "bytes": 100_000_000}}
    line = progress.progress_line(board, ("read", "write"), 4, 400_000_000, seconds=10)
    # 500 MB of 800 MB in 10 s: 50 MB/s, 300 MB left: 6 s
    assert line == "progress: read 4/4 shards, write 1/4 shards; 100 examples; 50.0 MB/s; ETA 00:00:06"
    assert "ETA unknown" in progress.progress_line({}, ("read",), 2, 10, seconds=1)


def test_a_local_merge_logs_progress_lines(sample_ceop_zip, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.combine_ismn_data", "--input_data_path",
         sample_ceop_zip.shards_glob, "--ismn_data_path", sample_ceop_zip.ismn_path,
         "--output_dir", str(tmp_path / "out"), "--progress_seconds", "0.2",
         "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if "progress: " in l]
    assert lines, proc.stderr[-2000:]
    # the last line, logged after the run, has every shard through both passes
    assert "progress: read 3/3 shards, write 3/3 shards; 36 examples;" in lines[-1]
