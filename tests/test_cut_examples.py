"""cut_examples as a command (issue 29, items 3, 8, 11, 13): counts in
words, an even positive --size, a plausible --timestamp, a CSV's problems and
a scene's as one line with the right exit status, --compare_with that
compares nothing as exit 1 naming both extents, r within [-1, 1].

The command runs in this process (``main(argv)``) on a 96 x 128 scene."""

import csv
import gzip
import json
import os
import shutil

import numpy as np
import pytest

from pipelines import cut_examples
from transforms.dataset import example_proto, schema, tfrecord_io
from transforms.mapping.examples import correlation
from transforms.synthetic.scene import SceneConfig, make_scene

WHEN = "2021-06-01T10:30:00Z"
WHEN_MS = 1622543400000


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """``(scene, far scene, points in it)``: two small scenes 100 km apart,
    and three points of the first (two whose 32 x 32 example fits, one
    too near its edge)."""
    import rasterio
    from pyproj import Transformer

    root = tmp_path_factory.mktemp("cut")
    scene, far = str(root / "scene"), str(root / "far")
    make_scene(SceneConfig(scene, 96, 128, seed=1))
    make_scene(SceneConfig(far, 96, 128, seed=2, origin=(600000.0, 5400000.0)))
    with rasterio.open(os.path.join(scene, "sentinel_1_VV.tif")) as ds:
        transform, crs = ds.transform, ds.crs
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    points = []
    for name, (col, row) in (("NET__A__X", (64, 48)), ("NET__B__X", (40, 40)),
                             ("NET__EDGE__X", (10, 10))):
        lon, lat = to_lonlat.transform(*(transform @ (col, row)))
        points.append((name, lat, lon))
    return scene, far, points


def write_points(path, rows, header="sensor_id,lat,lon", encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        f.write(header + "\n")
        csv.writer(f).writerows(rows)
    return str(path)


def run(capfd, *argv):
    """``(exit status, stdout, the non-empty stderr lines)`` of the command."""
    rc = cut_examples.main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return rc, out, [line for line in err.splitlines() if line.strip()]


def one_line(rc, out, err, expected_rc):
    assert rc == expected_rc, (out, err)
    assert len(err) == 1 and err[0].startswith("cut_examples: error: "), err
    assert "run again with -v" not in err[0]  # a refusal, not an unforeseen failure
    return err[0]


def test_examples_are_cut_and_counted_in_words(scenes, tmp_path, capfd):
    scene, _, points = scenes
    out = tmp_path / "out"
    rc, stdout, err = run(capfd, "--scene_path", scene, "--points",
                          write_points(tmp_path / "p.csv", points), "--timestamp", WHEN,
                          "--output_dir", out, "--size", 32)
    assert rc == 0 and err == [], err
    assert "cut 2 examples of 3 points" in stdout and "1 point could not be cut" in stdout
    failures = [json.loads(line) for line in open(out / "failures.jsonl")]
    assert [(f["sensor_id"], f["reason"]) for f in failures] == [("NET__EDGE__X", "outside_scene")]
    records = list(tfrecord_io.read_shard(str(out / "data-00000-of-00001.tfrecord.gz")))
    found = example_proto.read_features(records[0], (schema.TIMESTAMP, schema.SIZE))
    # the release's float32 milliseconds: 131072 ms apart in 2021 (the --timestamp help)
    assert found[schema.TIMESTAMP][0] == float(np.float32(WHEN_MS))
    assert np.spacing(np.float32(WHEN_MS)) == 131072 and found[schema.SIZE] == [32]

    rc, stdout, _ = run(capfd, "--scene_path", scene, "--points",
                        write_points(tmp_path / "one.csv", points[:1]), "--timestamp",
                        "2021-06-01T12:30:00+02:00", "--output_dir", tmp_path / "one",
                        "--size", 32)
    assert rc == 0 and stdout.startswith("cut 1 example of 1 point into ")
    assert "could not" not in stdout


@pytest.mark.parametrize("argv,flag,words", [
    (["--size", "-4"], "--size", "positive even"),
    (["--size", "0"], "--size", "positive even"),
    (["--size", "31"], "--size", "positive even"),
    (["--timestamp", "nan"], "--timestamp", "not a time"),
    (["--timestamp", "inf"], "--timestamp", "not a time"),
    (["--timestamp", "1622543400"], "--timestamp", "looks like seconds"),
    (["--timestamp", "1622543400000000"], "--timestamp", "looks like microseconds"),
    (["--timestamp", "2013-12-31"], "--timestamp", "not between 2014-04-03"),
    (["--timestamp", "next week"], "--timestamp", "neither an ISO time"),
    (["--timestamp", ""], "--timestamp", "'' is neither an ISO time"),
    (["--compare_with", "x/*.gz"], "--points", "leave out --points and --timestamp"),
    (["--timestamp", None], "--points", "give --points and --timestamp"),
    (["--output_dir", None], "--output_dir", "--output_dir required"),
    (["--scene_pat", "x"], "--scene_path", "did you mean --scene_path?"),
    (["--scene_path", "no/such/scene"], "--scene_path", "is not a folder"),
])
def test_flags_no_run_can_mean_are_one_line_and_exit_2(scenes, tmp_path, capfd, argv, flag,
                                                        words):
    scene, _, points = scenes
    given = {"--scene_path": scene, "--points": write_points(tmp_path / "p.csv", points),
             "--timestamp": WHEN, "--output_dir": str(tmp_path / "out")}
    given.update(zip(argv[::2], argv[1::2]))
    line = one_line(*run(capfd, *[a for k, v in given.items() if v is not None
                                  for a in (k, v)]), 2)
    assert flag in line and words in line, line
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_an_output_dir_that_is_a_file_is_exit_2(scenes, tmp_path, capfd):
    scene, _, points = scenes
    line = one_line(*run(capfd, "--scene_path", scene, "--points",
                         write_points(tmp_path / "p.csv", points), "--timestamp", WHEN,
                         "--output_dir", tmp_path / "p.csv"), 2)
    assert f"--output_dir {tmp_path / 'p.csv'} is a file" in line


@pytest.mark.parametrize("rows,header,words", [
    ([("A", "95", "15.0")], "sensor_id,lat,lon", "line 2: lat 95.0 is not between -90 and 90"),
    ([("A", "47.8", "15.0"), ("B", "nan", "15.0")], "sensor_id,lat,lon",
     "line 3: lat nan is not between"),
    ([("A", "47.8", "200")], "sensor_id,lat,lon", "lon 200.0 is not between -180 and 180"),
    ([("A", "north", "15.0")], "sensor_id,lat,lon", "must be numbers"),
    ([("A", "47.8", "15.0")], "id,latitude,lon", "lacks the columns sensor_id,lat"),
    ([], "sensor_id,lat,lon", "holds no point"),
])
def test_a_points_csv_that_cannot_be_used_is_one_line_naming_it_and_exit_1(
        scenes, tmp_path, capfd, rows, header, words):
    scene, _, _ = scenes
    path = write_points(tmp_path / "p.csv", rows, header)
    line = one_line(*run(capfd, "--scene_path", scene, "--points", path, "--timestamp", WHEN,
                         "--output_dir", tmp_path / "out", "--size", 32), 1)
    assert path in line and words in line, line


def test_a_points_csv_with_a_byte_order_mark_is_read(scenes, tmp_path, capfd):
    scene, _, points = scenes
    path = write_points(tmp_path / "bom.csv", points, encoding="utf-8-sig")
    assert open(path, "rb").read(3) == b"\xef\xbb\xbf"
    rc, stdout, err = run(capfd, "--scene_path", scene, "--points", path, "--timestamp", WHEN,
                          "--output_dir", tmp_path / "out", "--size", 32)
    assert rc == 0 and "cut 2 examples of 3 points" in stdout, err


@pytest.fixture(scope="module")
def examples(scenes, tmp_path_factory):
    """The two examples cut from the first scene (a shard's glob)."""
    scene, _, points = scenes
    out = tmp_path_factory.mktemp("examples")
    path = write_points(out / "p.csv", points)
    assert cut_examples.main(["--scene_path", scene, "--points", path, "--timestamp", WHEN,
                              "--output_dir", str(out), "--size", "32"]) == 0
    return str(out / "*.tfrecord.gz")


def test_compare_with_its_own_scene_gives_0_and_r_1_within_bounds(scenes, examples, tmp_path,
                                                                   capfd):
    rc, stdout, err = run(capfd, "--scene_path", scenes[0], "--compare_with", examples,
                          "--output_dir", tmp_path / "c")
    assert rc == 0 and err == [] and stdout.startswith("2 examples compared (skipped: none)")
    found = json.load(open(tmp_path / "c" / "compare.json"))
    assert found["examples"] == 2 and found["skipped"] == 0
    for band, m in found["bands"].items():
        assert m["mean_abs_diff"] == 0 and -1 <= m["r"] <= 1 and m["r"] == pytest.approx(1), band


def test_compare_with_nothing_in_the_scene_is_exit_1_naming_both_extents(scenes, examples,
                                                                          tmp_path, capfd):
    far = scenes[1]
    line = one_line(*run(capfd, "--scene_path", far, "--compare_with", examples,
                         "--output_dir", tmp_path / "c"), 1)
    assert f"the scene {far} spans lat 48." in line and "lon 16." in line
    assert "the 2 examples' centres span lat 47.8" in line and "lon 15.0" in line
    assert "2 outside scene" in line
    assert not (tmp_path / "c" / "compare.json").exists()


def test_no_point_in_the_scene_is_exit_1_naming_both_extents(scenes, tmp_path, capfd):
    _, far, points = scenes
    line = one_line(*run(capfd, "--scene_path", far, "--points",
                         write_points(tmp_path / "p.csv", points), "--timestamp", WHEN,
                         "--output_dir", tmp_path / "out", "--size", 32), 1)
    assert "no point of" in line and "the 3 points span lat 47.8" in line
    assert f"the scene {far} spans lat 48." in line
    assert len(open(tmp_path / "out" / "failures.jsonl").readlines()) == 3


def test_shards_compare_with_cannot_use_are_one_line(scenes, examples, tmp_path, capfd):
    scene = scenes[0]
    shard = examples.replace("*.tfrecord.gz", "data-00000-of-00001.tfrecord.gz")
    bad = tmp_path / "bad"
    bad.mkdir()
    data = open(shard, "rb").read()
    (bad / "truncated.tfrecord.gz").write_bytes(data[:len(data) // 2])
    record = example_proto.encode_example({schema.SENSOR_ID: ("bytes", [b"NET__A__X"])})
    tfrecord_io.write_shard(str(tmp_path / "no_centre.tfrecord.gz"), [record])
    (tmp_path / "junk.tfrecord.gz").write_bytes(gzip.compress(b"not a tfrecord at all"))
    for pattern, rc, words in [
            (str(bad), 2, "is a folder"), (str(tmp_path / "none*.gz"), 2, "no input shards"),
            (str(bad / "*.gz"), 1, "truncated.tfrecord.gz: record 0"),
            (str(tmp_path / "no_centre*.gz"), 1, "record 0 has no center_lat"),
            (str(tmp_path / "junk*.gz"), 1, "junk.tfrecord.gz")]:
        line = one_line(*run(capfd, "--scene_path", scene, "--compare_with", pattern,
                             "--output_dir", tmp_path / "c"), rc)
        assert words in line and "--compare_with" in line, line


def test_a_truncated_band_file_is_one_line_naming_it_and_exit_1(scenes, tmp_path, capfd):
    scene, _, points = scenes
    broken = str(tmp_path / "broken")
    shutil.copytree(scene, broken)
    band = os.path.join(broken, "sentinel_2_B4.tif")
    with open(band, "r+b") as f:
        f.truncate(os.path.getsize(band) // 2)
    line = one_line(*run(capfd, "--scene_path", broken, "--points",
                         write_points(tmp_path / "p.csv", points), "--timestamp", WHEN,
                         "--output_dir", tmp_path / "out", "--size", 32), 1)
    assert band in line, line
    assert not (tmp_path / "out" / "data-00000-of-00001.tfrecord.gz").exists()


def test_r_is_clipped_to_one_when_rounding_overshoots():
    # the same 100 values on both sides, large and nearly constant
    a = np.repeat([3732.0, 3733.0, 3734.0], [2, 95, 3])
    sums = (a.size, a.sum(), a.sum(), (a * a).sum(), (a * a).sum(), (a * a).sum())
    n, sa, sb, saa, sbb, sab = sums
    raw = (sab / n - sa / n * sb / n) / np.sqrt((saa / n - (sa / n) ** 2) *
                                                (sbb / n - (sb / n) ** 2))
    assert raw > 1  # what the pooled sums give without the clip
    assert correlation(*sums) == 1.0
    opposite = correlation(n, sa, -sb, saa, sbb, -sab)
    assert -1 <= opposite and opposite == pytest.approx(-1)
    assert correlation(3, 3.0, 6.0, 3.0, 14.0, 6.0) is None  # one side constant


def test_an_ambiguous_csv_is_refused_naming_the_file_and_line(tmp_path):
    from transforms.mapping.points import read_points
    from transforms.runtime import InputError

    twice = tmp_path / "twice.csv"
    twice.write_text("sensor_id,lat,lon,lat\nA,1,15.05,47.8\n")
    with pytest.raises(InputError, match=r"twice.csv: its header names lat more than once"):
        read_points(str(twice))
    longer = tmp_path / "longer.csv"
    longer.write_text("sensor_id,lat,lon\nA,47.8,15.05\nB,47.8,15.05,extra\n")
    with pytest.raises(InputError, match=r"longer.csv: line 3: 4 fields, the header names 3"):
        read_points(str(longer))
