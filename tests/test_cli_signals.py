"""Ctrl-C and SIGTERM end a command with one line, exit status 130 or 143
and no temporary file left, while it runs and while it starts (issue 29,
item 13). Signals need a process of their own: these tests run commands in
subprocesses (cut_examples, the quickest)."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

import support
from transforms.synthetic.scene import SceneConfig, make_scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINES = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}


@pytest.fixture(scope="module")
def long_cut(tmp_path_factory):
    """Arguments of a cut_examples run of many seconds (3000 points)."""
    import rasterio
    from pyproj import Transformer

    root = tmp_path_factory.mktemp("signals")
    scene = str(root / "scene")
    make_scene(SceneConfig(scene, 96, 128, seed=1))
    with rasterio.open(os.path.join(scene, "sentinel_1_VV.tif")) as ds:
        lon, lat = Transformer.from_crs(ds.crs, 4326, always_xy=True).transform(
            *(ds.transform @ (64, 48)))
    points = root / "points.csv"
    with open(points, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sensor_id", "lat", "lon"])
        writer.writerows([f"NET__P{i}__X", lat, lon] for i in range(3000))
    return ["--scene_path", scene, "--points", str(points), "--timestamp",
            "2021-06-01T10:30:00Z", "--size", "32"]


def temporaries(folder):
    return [name for _, _, names in os.walk(folder) for name in names if ".tmp-" in name]


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_run_is_one_line_and_leaves_nothing(long_cut, tmp_path, signum, status):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cut_examples", *long_cut,
                             "--output_dir", str(out)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, TMPDIR=str(tmp)))
    deadline = time.time() + 60
    while not out.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)  # the run has started once it made its output folder
    time.sleep(0.3)
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signum)  # Ctrl-C: the terminal signals the whole group
    else:
        os.kill(proc.pid, signum)  # kill, a batch system: this process alone
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr[-2000:]
    assert stderr.splitlines() == [f"cut_examples: {LINES[signum]}; the temporary files of its "
                                   f"outputs were removed"], stderr[-2000:]
    assert stdout == "" and temporaries(out) == [] and os.listdir(tmp) == []
    assert not (out / "data-00000-of-00001.tfrecord.gz").exists()


def test_sigterm_is_passed_on_to_the_processes_below():
    """Ctrl-C reaches a process group; SIGTERM (kill) only the command,
    whose Beam workers would keep it waiting: it passes the signal on."""
    probe = ("import os, signal, subprocess, time\n"
             "from transforms.runtime.interrupt import Interrupt, descendants\n"
             "child = subprocess.Popen(['sleep', '60'])\n"
             "assert child.pid in descendants(os.getpid())\n"
             "interrupt = Interrupt('probe', None).install()\n"
             "try:\n"
             "    os.kill(os.getpid(), signal.SIGTERM)\n"
             "    time.sleep(10)\n"
             "except KeyboardInterrupt:\n"
             "    status = interrupt.report([])\n"
             "print(status, child.wait(timeout=10))\n")
    words, err = support.fresh_python(probe)
    assert words == ["143", str(-signal.SIGTERM)], err
    assert err.strip().endswith("probe: terminated (SIGTERM); the temporary files of its "
                                "outputs were removed"), err


def loaded(pid, library):
    try:
        with open(f"/proc/{pid}/maps") as f:
            return library in f.read()
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc")
@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_command_starts_is_one_line(signum, status):
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cut_examples", "--help"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not loaded(proc.pid, "_multiarray_umath") and proc.poll() is None:
        time.sleep(0.002)  # numpy is imported: the command's imports are under way
    os.kill(proc.pid, signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr[-2000:]
    assert stderr.splitlines() == [f"cut_examples: {LINES[signum]} while starting"], stderr


def test_the_local_folder_of_a_pipeline_that_never_ran_is_removed(tmp_path, monkeypatch):
    """Beam's Pipeline makes TMPDIR/beam-pipeline-temp* when it is made and
    removes it when its run ends: a signal between the two left it."""
    import tempfile

    import apache_beam as beam

    from transforms.runtime.interrupt import Interrupt

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pipeline = beam.Pipeline()
    assert os.listdir(tmp_path) == [os.path.basename(pipeline.local_tempdir)]
    assert Interrupt("probe", None).report([]) == 130  # a KeyboardInterrupt: Ctrl-C's status
    assert os.listdir(tmp_path) == []
