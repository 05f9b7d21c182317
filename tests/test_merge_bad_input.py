"""The merge under damaged and hostile input, run from the command line as a user runs it.

Each test is named by the behaviour it guards: inputs are never modified,
nothing is lost, every failure names its file, and nothing is written outside
the output folder and the temporary directory.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import tensorflow as tf

from transforms.dataset import example_proto, schema, tfrecord_io
from support import read_failures as _failures, read_truth as _truth

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(argv, env=None):
    proc = subprocess.run([sys.executable, "-m", "pipelines.combine_ismn_data", *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


def _args(shards_glob, ismn_path, out):
    return ["--input_data_path", str(shards_glob), "--ismn_data_path", str(ismn_path),
            "--output_dir", str(out)]


def _copy_sample(paths, tmp_path):
    root = tmp_path / "sample"
    shutil.copytree(os.path.dirname(os.path.dirname(paths.shards[0])), root)
    return root


def _digests(folder):
    return {p: hashlib.sha256((folder / p).read_bytes()).hexdigest() for p in os.listdir(folder)}


def test_output_dir_equal_to_input_dir_is_refused_and_inputs_stay_intact(sample_ceop_zip, tmp_path):
    root = _copy_sample(sample_ceop_zip, tmp_path)
    shards = root / "shards"
    before = _digests(shards)
    for out in (shards, f"{shards}/", root / "shards" / ".." / "shards"):
        rc, _, stderr = run_cli(_args(shards / "*.tfrecord.gz", sample_ceop_zip.ismn_path, out))
        assert rc == 2
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "would replace input shard" in lines[0]
        assert str(shards) in lines[0]
        assert _digests(shards) == before


def test_output_dir_reached_through_a_symlink_is_refused(sample_ceop_zip, tmp_path):
    root = _copy_sample(sample_ceop_zip, tmp_path)
    link = tmp_path / "link"
    link.symlink_to(root / "shards")
    before = _digests(root / "shards")
    rc, _, stderr = run_cli(_args(root / "shards" / "*.gz", sample_ceop_zip.ismn_path, link))
    assert rc == 2 and "would replace input shard" in stderr
    assert _digests(root / "shards") == before


def test_two_input_shards_with_one_file_name_are_refused(sample_ceop_zip, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        shutil.copy(sample_ceop_zip.shards[0], d)
    out = tmp_path / "out"
    rc, _, stderr = run_cli(_args(tmp_path / "*" / "*.tfrecord.gz", sample_ceop_zip.ismn_path, out))
    assert rc == 2
    name = os.path.basename(sample_ceop_zip.shards[0])
    assert str(a / name) in stderr and str(b / name) in stderr
    assert not out.exists()


def _small_records_shard(path, n, template):
    """``n`` distinct unlabelled-or-labelled examples: many small records so a
    cut leaves a real readable head."""
    records = []
    for i in range(n):
        records.append(example_proto.append_float_feature(template, "filler", float(i)))
    tfrecord_io.write_shard(str(path), records)
    return records


def _tf_count(path):
    n = 0
    try:
        for _ in tf.data.TFRecordDataset(str(path), "GZIP"):
            n += 1
    except tf.errors.DataLossError:
        pass
    return n


def test_cut_shard_keeps_its_readable_head_and_counts_add_up(sample_ceop_zip, tmp_path):
    truth = _truth(sample_ceop_zip)
    prelabelled = next(r for r in truth if r["outcome"] == "prelabelled")
    shard = next(p for p in sample_ceop_zip.shards if os.path.basename(p) == prelabelled["shard"])
    template = list(tfrecord_io.read_shard(shard))[prelabelled["index"]]
    folder = tmp_path / "in"
    folder.mkdir()
    path = folder / "data-00000-of-00001.tfrecord.gz"
    records = _small_records_shard(path, 60, template)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.8)])
    readable = _tf_count(path)
    assert 0 < readable < 60
    out = tmp_path / "out"
    rc, stdout, stderr = run_cli(_args(folder / "*.gz", sample_ceop_zip.ismn_path, out))
    assert rc == 1
    written = list(tfrecord_io.read_shard(str(out / path.name)))
    assert len(written) >= readable and written == records[:len(written)]
    (corrupt,) = [f for f in _failures(out) if f["kind"] == "corrupt"]
    assert corrupt["index"] == len(written) and corrupt["shard"] == path.name
    summary = json.load(open(out / "summary.json"))
    assert summary["examples_written"] == len(written)
    assert summary["examples_read"] == len(written) + 1  # the records read, and the unreadable tail
    assert summary["accounted"] and summary["incomplete_shards"] == [str(path)]


def _rewrite_zip(src, dst, change):
    """Copy zip ``src`` to ``dst``, passing each (name, data) through ``change``
    (which returns a list of (name, data) to write)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            for name, data in change(info.filename, zin.read(info.filename)):
                zout.writestr(name, data)


def test_a_bad_line_in_one_ismn_file_fails_only_its_examples(sample_ceop_zip, tmp_path):
    truth = _truth(sample_ceop_zip)
    target = next(r for r in truth if r["outcome"] == "success")
    net, station, sensor = target["ismn_network"], target["ismn_station"], target["ismn_sensor"]
    instrument = sensor.split("_soil_moisture_")[0]
    victim = {}

    def change(name, data):
        base = os.path.basename(name)
        if (name.startswith(f"{net}/{station}/") and f"_{instrument}_" in base
                and "_sm_0.05" in base and name.endswith(".stm")):
            lines = data.split(b"\r\n")
            fields = lines[5].split(b" ")
            fields[12] = b"abc"
            lines[5] = b" ".join(fields)
            victim["name"] = name
            return [(name, b"\r\n".join(lines))]
        return [(name, data)]

    bad_zip = tmp_path / "ISMN_bad.zip"
    _rewrite_zip(sample_ceop_zip.ismn_path, bad_zip, change)
    out = tmp_path / "out"
    rc, stdout, stderr = run_cli(_args(sample_ceop_zip.shards_glob, bad_zip, out))
    assert rc == 1
    assert victim["name"] in stderr
    summary = json.load(open(out / "summary.json"))
    assert summary["unreadable_ismn_files"] == [victim["name"]]
    assert summary["accounted"]
    need = {(r["shard"], r["index"]) for r in truth
            if r.get("ismn_network") == net and r.get("ismn_station") == station
            and r.get("ismn_sensor") == sensor}
    failed = {(f["shard"], f["index"]): f for f in _failures(out)}
    for key in need:
        assert failed[key]["kind"] == "lookup"
        assert victim["name"] in failed[key]["reason"] and "line 6" in failed[key]["reason"]
    # every other ISMN example is labelled as in a clean run
    others = [r for r in truth if r["outcome"] == "success" and (r["shard"], r["index"]) not in need]
    assert summary["merged_from_ismn"] == len(others) > 0
    assert not [p for p in os.listdir(out) if p.startswith("beam-temp-") or ".tmp-" in p]


def test_timestamp_that_is_no_datetime_is_a_malformed_failure(sample_ceop_zip, tmp_path):
    truth = _truth(sample_ceop_zip)
    target = next(r for r in truth if r["outcome"] == "success")
    shard = next(p for p in sample_ceop_zip.shards if os.path.basename(p) == target["shard"])
    records = list(tfrecord_io.read_shard(shard))
    ex = tf.train.Example.FromString(records[target["index"]])
    ex.features.feature[schema.TIMESTAMP].float_list.value[0] = 3e38
    records[target["index"]] = ex.SerializeToString()
    folder = tmp_path / "in"
    folder.mkdir()
    tfrecord_io.write_shard(str(folder / target["shard"]), records)
    out = tmp_path / "out"
    rc, _, stderr = run_cli(_args(folder / "*.gz", sample_ceop_zip.ismn_path, out))
    assert rc == 0, stderr[-2000:]
    (bad,) = [f for f in _failures(out) if f["index"] == target["index"]]
    assert bad["kind"] == "malformed" and "3e+38" in bad["reason"].replace("3.0000000054977558e+38", "3e+38")
    summary = json.load(open(out / "summary.json"))
    n = sum(r["shard"] == target["shard"] and r["outcome"] in ("success", "prelabelled") for r in truth)
    assert summary["examples_written"] == n - 1 and summary["accounted"]


@pytest.mark.parametrize("layout", ["empty_zip", "flat_zip", "flat_folder", "empty_folder"])
def test_download_without_the_ismn_layout_is_an_error(sample_ceop_zip, tmp_path, layout):
    if layout.endswith("zip"):
        ismn_path = tmp_path / "ISMN.zip"
        with zipfile.ZipFile(sample_ceop_zip.ismn_path) as zin, zipfile.ZipFile(ismn_path, "w") as z:
            if layout == "flat_zip":
                for name in zin.namelist():
                    z.writestr(os.path.basename(name), zin.read(name))
    else:
        ismn_path = tmp_path / "ISMN"
        ismn_path.mkdir()
        if layout == "flat_folder":
            with zipfile.ZipFile(sample_ceop_zip.ismn_path) as zin:
                for name in zin.namelist():
                    (ismn_path / os.path.basename(name)).write_bytes(zin.read(name))
    out = tmp_path / "out"
    rc, _, stderr = run_cli(_args(sample_ceop_zip.shards_glob, ismn_path, out))
    assert rc == 1
    assert f"ISMN download {ismn_path}: no ISMN data file found in the layout NETWORK/STATION/" in stderr
    assert json.load(open(out / "summary.json"))["accounted"]


def test_folder_with_an_extra_top_level_gives_the_same_labels(sample_hv_dir, tmp_path):
    nested = tmp_path / "download"
    shutil.copytree(sample_hv_dir.ismn_path, nested / "ISMN_2015_2022")
    plain_out, nested_out = tmp_path / "plain", tmp_path / "nested"
    rc1, _, e1 = run_cli(_args(sample_hv_dir.shards_glob, sample_hv_dir.ismn_path, plain_out))
    rc2, _, e2 = run_cli(_args(sample_hv_dir.shards_glob, nested, nested_out))
    assert rc1 == rc2 == 0, (e1[-2000:], e2[-2000:])
    for p in sample_hv_dir.shards:
        name = os.path.basename(p)
        assert (plain_out / name).read_bytes() == (nested_out / name).read_bytes()


def test_zip_member_climbing_out_is_ignored_and_nothing_is_written_outside_tmp(
        sample_ceop_zip, tmp_path):
    truth = _truth(sample_ceop_zip)
    target = next(r for r in truth if r["outcome"] == "success")
    net, station = target["ismn_network"], target["ismn_station"]
    instrument = target["ismn_sensor"].split("_soil_moisture_")[0]
    moved = {}

    def change(name, data):
        base = os.path.basename(name)
        if name.startswith(f"{net}/{station}/") and f"_{instrument}_" in base and "_sm_0.05" in base:
            moved["base"] = base
            return [(f"../../{net}/{station}/{base}", data)]  # only reachable by climbing out
        return [(name, data)]

    evil = tmp_path / "ISMN_evil.zip"
    _rewrite_zip(sample_ceop_zip.ismn_path, evil, change)
    tmpdir = tmp_path / "tmp" / "a" / "b"
    tmpdir.mkdir(parents=True)
    out = tmp_path / "out"
    rc, _, stderr = run_cli(_args(sample_ceop_zip.shards_glob, evil, out), env={"TMPDIR": str(tmpdir)})
    assert rc == 0, stderr[-2000:]
    assert "points outside the archive; ignored" in stderr
    # nothing at the climbed-to path, relative to TMPDIR or to the working directory
    for base in (tmpdir, tmp_path / "tmp", tmp_path, REPO):
        assert not os.path.exists(os.path.join(base, net, station, moved["base"]))
    failed = {(f["shard"], f["index"]): f["kind"] for f in _failures(out)}
    assert failed[(target["shard"], target["index"])] == "lookup"  # never labelled from it


def test_rerun_cleans_killed_runs_and_lists_stale_outputs(sample_ceop_zip, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "beam-temp-failures-0123").mkdir()
    (out / "beam-temp-failures-0123" / "part").write_text("left by a killed run")
    stale = out / "data-00007-of-00009.tfrecord.gz"
    tfrecord_io.write_shard(str(stale), [b"x"])
    rc, _, stderr = run_cli(_args(sample_ceop_zip.shards_glob, sample_ceop_zip.ismn_path, out))
    assert rc == 0, stderr[-2000:]
    assert not [p for p in os.listdir(out) if p.startswith("beam-temp-")]
    summary = json.load(open(out / "summary.json"))
    assert summary["stale_outputs"] == [str(stale)]
    assert stale.exists()  # listed, never deleted


def test_summary_records_the_ismn_snapshot(sample_ceop_zip, sample_hv_dir, tmp_path):
    rc, _, stderr = run_cli(_args(sample_ceop_zip.shards_glob, sample_ceop_zip.ismn_path,
                                  tmp_path / "z"))
    assert rc == 0, stderr[-2000:]
    prov = json.load(open(tmp_path / "z" / "summary.json"))["ismn_provenance"]
    with open(sample_ceop_zip.ismn_path, "rb") as f:
        assert prov["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert prov["size_bytes"] == os.path.getsize(sample_ceop_zip.ismn_path)
    assert prov["modified_unix"] == pytest.approx(os.path.getmtime(sample_ceop_zip.ismn_path), abs=1)
    with zipfile.ZipFile(sample_ceop_zip.ismn_path) as z:
        assert prov["data_files"] == sum(n.endswith(".stm") for n in z.namelist())
    from importlib import metadata
    assert prov["ismn_package_version"] == metadata.version("ismn")
    summary = json.load(open(tmp_path / "z" / "summary.json"))
    assert summary["project_version"] == metadata.version("soil-moisture-pipelines")

    rc, _, stderr = run_cli(_args(sample_hv_dir.shards_glob, sample_hv_dir.ismn_path,
                                  tmp_path / "d"))
    assert rc == 0, stderr[-2000:]
    prov = json.load(open(tmp_path / "d" / "summary.json"))["ismn_provenance"]
    listing = sorted((os.path.relpath(os.path.join(d, f), sample_hv_dir.ismn_path),
                      os.path.getsize(os.path.join(d, f)))
                     for d, _, files in os.walk(sample_hv_dir.ismn_path) for f in files)
    expected = hashlib.sha256("".join(f"{p}\t{s}\n" for p, s in listing).encode()).hexdigest()
    assert prov["sha256_of_listing"] == expected and prov["kind"] == "folder"
