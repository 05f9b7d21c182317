"""Failure accounting in memory: the failure record, the shard walk, the merge's
scan of each record and its per-shard sums (fast enough to run per mutant)."""

import dataclasses
import gzip
import json
import os

import numpy as np
import pytest

from transforms.dataset import counters, example_proto, failures, keys, schema, tfrecord_io
from transforms.dataset.walks import ConcurrentWalks, ShardReader
from transforms.merge import accounting, scan


def example(**features):
    """A serialized example from ``name=(kind, values)``."""
    return example_proto.encode_example(features)


def ismn_example(sensor_id="SCAN__AdamsRanch_1__X", timestamp=1.5e12):
    return example(sensor_id=("bytes", [sensor_id.encode()]), timestamp=("float", [timestamp]))


def write(path, payloads, cut_at=None):
    """A gzipped shard of ``payloads``; ``cut_at``: keep only this share of its bytes."""
    tfrecord_io.write_shard(str(path), payloads)
    if cut_at is not None:
        data = open(path, "rb").read()
        open(path, "wb").write(data[:int(len(data) * cut_at)])
    return str(path)


def noisy(rng, n, size=3000):
    """Incompressible records, so a cut file ends mid-stream after a readable head."""
    return [example(sensor_id=("bytes", [f"NET__S{i}__X".encode()]), timestamp=("float", [1.5e12]),
                    pad=("bytes", [bytes(rng.integers(0, 256, size, dtype=np.uint8))]))
            for i in range(n)]


def test_failure_record_fields():
    f = failures.Failure("gs://b/in/data-1.tfrecord.gz", 7, "lookup", "why", "A__B__C", 1.0)
    assert json.loads(f.to_json()) == f.to_dict() == {"shard": "data-1.tfrecord.gz", "path": "gs://b/in/data-1.tfrecord.gz",
                 "index": 7, "sensor_id": "A__B__C", "timestamp": 1.0, "kind": "lookup",
                 "reason": "why"}
    assert failures.Failure("s", 0, "lookup", "r", ismn_file="N/S/f.stm").to_dict()["ismn_file"] == "N/S/f.stm"
    assert f.to_json() == json.dumps(f.to_dict(), sort_keys=True)  # the line failures.jsonl holds
    with pytest.raises(ValueError):
        failures.Failure("s", 0, "oops", "r")
    m = failures.malformed("s", 3, ValueError("bad tag"))
    assert (m.kind, m.index, m.reason) == ("malformed", 3,
                                                    "not a tf.train.Example: bad tag")


def test_label_prefers_sm_0_5_and_sensor_id_must_be_bytes():
    both = example(sm_0_5=("float", [0.25]), sm_5_5=("float", [0.5]))
    assert keys.label_of(keys.first_values(both, schema.LABEL_KEYS)) == 0.25
    deep = example(sm_5_5=("float", [0.5]))
    assert keys.label_of(keys.first_values(deep, schema.LABEL_KEYS)) == 0.5
    assert keys.label_of(keys.first_values(example(), schema.LABEL_KEYS)) is None
    zero = example(sm_0_5=("float", [0.0]), sm_5_5=("float", [0.5]))
    assert keys.label_of(keys.first_values(zero, schema.LABEL_KEYS)) == 0.0
    assert keys.sensor_id_of({schema.SENSOR_ID: 5}) is None
    assert keys.sensor_id_of({schema.SENSOR_ID: b"A__B__\xff"}) == "A__B__\ufffd"
    assert keys.first_values(example(sensor_id=("bytes", [])), [schema.SENSOR_ID]) == {}


def test_example_key_and_its_row():
    record = example(sensor_id=("bytes", [b"A__B__C"]), timestamp=("float", [2.0]),
                     sm_5_5=("float", [0.5]), smap_sm=("int64", [7]), gldas_sm=("int64", [9]),
                     center_lat=("float", [1.5]), center_long=("float", [-2.5]))
    key = keys.example_key("in/data-3.gz", 4, record)
    assert key == keys.ExampleKey("in/data-3.gz", 4, "A__B__C", 2.0, 0.5, 7, 9, 1.5, -2.5)
    row = keys.row(key, 0.3).to_dict()
    assert tuple(row) == schema.ROW_COLUMNS
    assert (row["shard"], row["index"], row["prediction"], row["label"]) == ("data-3.gz", 4, 0.3, 0.5)
    with pytest.raises(example_proto.MalformedExampleError):
        keys.example_key("s", 0, b"\xff\xff")


def test_shard_reader_walks_a_whole_shard(tmp_path):
    payloads = [b"a", b"", b"c" * 100]
    reader = ShardReader(write(tmp_path / "s.gz", payloads))
    assert list(reader) == list(enumerate(payloads))
    assert (reader.records, reader.examples_read, reader.corrupt) == (3, 3, None)


def test_shard_reader_keeps_the_head_of_a_cut_shard(tmp_path):
    payloads = noisy(np.random.default_rng(0), 40)
    path = write(tmp_path / "cut.gz", payloads, cut_at=0.5)
    reader = ShardReader(path)
    head = list(reader)
    assert 5 < len(head) < 40
    assert [r for _, r in head] == payloads[:len(head)]
    assert reader.corrupt.kind == "corrupt" and reader.corrupt.index == len(head)
    assert reader.corrupt.path == path and reader.error.index == len(head)
    assert reader.examples_read == len(head) + 1


def test_classify_record():
    assert scan.classify_record("s", 0, example(sm_0_5=("float", [0.2]))) == ("labelled", None)
    assert scan.classify_record("s", 0, example(sm_5_5=("float", []))) == ("labelled", None)
    kind, ref = scan.classify_record("s", 4, ismn_example())
    assert kind == "ref" and ref == scan.ExampleRef("s", 4, "SCAN__AdamsRanch_1__X",
                                                    float(np.float32(1.5e12)))
    cases = {
        b"\xff\xff": "not a tf.train.Example",
        example(timestamp=("float", [1.0])): "missing or non-bytes sensor_id",
        example(sensor_id=("int64", [3]), timestamp=("float", [1.0])): "missing or non-bytes sensor_id",
        example(sensor_id=("bytes", [b"A__B__C"])): "missing or non-float timestamp",
        example(sensor_id=("bytes", [b"A__B__C"]), timestamp=("int64", [5])):
            "missing or non-float timestamp",
        ismn_example("A__B"): "is not <NETWORK>__<STATION>__<SENSOR_TYPE>",
        ismn_example(timestamp=3e38): "outside years 1-9999",
    }
    for record, reason in cases.items():
        kind, fail = scan.classify_record("s", 9, record)
        assert kind == "malformed" and reason in fail.reason and fail.index == 9


def test_scan_of_a_shard_with_every_outcome_and_a_cut_tail(tmp_path):
    rng = np.random.default_rng(1)
    head = [example(sm_0_5=("float", [0.2])), b"\xff\xff", ismn_example(),
            ismn_example("A__B"), *noisy(rng, 30)]
    path = write(tmp_path / "shard.gz", head, cut_at=0.6)
    out = list(scan.ScanShardFn().process(path))
    refs = [o for o in out if isinstance(o, scan.ExampleRef)]
    tagged = [o for o in out if not isinstance(o, scan.ExampleRef)]
    failed = [o.value for o in tagged if o.tag == "failures"]
    (report,) = [dataclasses.asdict(o.value) for o in tagged if o.tag == "reports"]
    read = report["records"]
    assert 10 < read < len(head)
    assert [r.index for r in refs] == [2, *range(4, read)]
    assert [(f.kind, f.index) for f in failed] == [
        ("malformed", 1), ("malformed", 3), ("corrupt", read)]
    assert (report["complete"], report["already_labelled"], report["ismn_examples"]) == (
        False, 1, len(refs))
    assert report["error"].startswith(path)
    whole = list(scan.ScanShardFn().process(write(tmp_path / "ok.gz", head[:3])))
    (ok,) = [o.value for o in whole if getattr(o, "tag", None) == "reports"]
    assert ok.complete and ok.error is None and ok.records == 3


def _report(records_read, complete, written, merged, failed, mismatches=0):
    scan_report = accounting.ScanReport("s.gz", "in/s.gz", complete, records_read, 0, 0, 0.0,
                                        None if complete else "cut")
    report = accounting.shard_report(("in/s.gz", {
        "scan": [scan_report], "write": [accounting.ShardWrite("out/s.gz", written, merged)],
        "failed": failed, "mismatch": [1] * mismatches}))
    assert json.loads(report.to_json()) == report.to_dict()  # the line shards.jsonl holds
    return report.to_dict()


def test_shard_report_adds_up():
    failed = [("lookup", None), ("lookup", "N/S/b.stm"), ("value", None), ("corrupt", None),
              ("lookup", "N/S/a.stm"), ("lookup", "N/S/b.stm")]
    r = _report(records_read=10, complete=False, written=5, merged=3, failed=failed, mismatches=2)
    assert r["examples_read"] == 11 and r["accounted"]
    assert r["failures"] == {"lookup": 4, "value": 1, "corrupt": 1}
    assert list(r["failures"]) == ["lookup", "value", "corrupt"]  # FAILURE_KINDS order
    assert (r["written"], r["success"], r["sensor_type_mismatch"]) == (5, 3, 2)
    assert r["unreadable_ismn_files"] == ["N/S/a.stm", "N/S/b.stm"]
    whole = _report(records_read=4, complete=True, written=4, merged=0, failed=[])
    assert whole["examples_read"] == 4 and whole["accounted"] and whole["failures"] == {}
    lost = _report(records_read=4, complete=True, written=3, merged=0, failed=[])
    assert not lost["accounted"]


def test_each_flow_counts_in_its_own_namespace():
    counter = counters.FlowCounters("combine_ismn_data")("examples_read")
    assert (counter.metric_name.namespace, counter.metric_name.name) == (
        "combine_ismn_data", "examples_read")
    assert accounting.COUNTERS.namespace == accounting.NAMESPACE == "combine_ismn_data"
    assert set(accounting.FAILURE_KINDS) <= set(failures.FAILURE_KINDS)


def test_gzip_of_the_written_shard_is_standard(tmp_path):
    path = write(tmp_path / "s.gz", [b"x"])
    assert gzip.decompress(open(path, "rb").read())[12:13] == b"x"
    assert os.path.getsize(path) > 0


def test_shard_reader_in_a_background_walk_keeps_the_corrupt_tail(tmp_path):
    payloads = noisy(np.random.default_rng(3), 40)
    reader = ShardReader(write(tmp_path / "cut.gz", payloads, cut_at=0.5))
    walks = ConcurrentWalks(depth=2)
    walks.start("cut", reader)
    head = [item for _, item in walks.take() if item is not ConcurrentWalks.END]
    assert [r for _, r in head] == payloads[:len(head)]
    assert reader.corrupt.index == len(head) and reader.examples_read == len(head) + 1


def test_shard_reader_reports_its_progress(tmp_path):
    from transforms.dataset import progress

    board_dir = tmp_path / "board"
    board_dir.mkdir()
    payloads = noisy(np.random.default_rng(4), 12)
    path = write(tmp_path / "s.gz", payloads)
    assert len(list(ShardReader(path, str(board_dir), stage="write"))) == 12
    board = progress.read_board(str(board_dir))
    assert board["write"]["shards_done"] == 1 and board["write"]["examples"] == 12
    assert board["write"]["bytes"] == os.path.getsize(path)  # compressed bytes read, all of them
    cut = write(tmp_path / "cut.gz", payloads, cut_at=0.5)
    reader = ShardReader(cut, str(board_dir))
    head = list(reader)
    board = progress.read_board(str(board_dir))
    assert board["read"]["shards_done"] == 1 and board["read"]["examples"] == len(head)
    assert ShardReader(path).progress.folder is None


class FakeMetrics:
    """Stands in for Beam's ``Metrics``: counters that add up in a dict."""

    def __init__(self):
        self.values = {}

    def counter(self, namespace, name):
        values = self.values

        class Counter:
            def inc(self, n=1):
                values[(namespace, name)] = values.get((namespace, name), 0) + n

        return Counter()


def test_scan_counters_add_up_to_the_records_read(tmp_path, monkeypatch):
    fake = FakeMetrics()
    monkeypatch.setattr(counters, "Metrics", fake)
    rng = np.random.default_rng(5)
    head = [example(sm_0_5=("float", [0.2])), b"\xff\xff", ismn_example(), *noisy(rng, 30)]
    path = write(tmp_path / "shard.gz", head, cut_at=0.6)
    out = list(scan.ScanShardFn().process(path))
    assert {ns for ns, _ in fake.values} == {"combine_ismn_data"}
    counted = {name: value for (_, name), value in fake.values.items()}
    (report,) = [o.value for o in out if getattr(o, "tag", None) == "reports"]
    read = report.records
    assert counted == {"examples_read": read + 1, "already_labelled": 1,
                        "ismn_examples": read - 2, "malformed": 1, "corrupt": 1,
                        "shards_read": 1, "shards_incomplete": 1}
    assert counted["examples_read"] == (counted["already_labelled"] + counted["ismn_examples"]
                                        + counted["malformed"] + counted["corrupt"])


def test_concurrent_walks_merge_every_walk_in_order_and_raise_after_their_items():
    walks = ConcurrentWalks(depth=3)
    walks.start("a", iter(range(30)))
    walks.start("b", iter(range(100, 120)))
    got = {"a": [], "b": []}
    ended = []
    for key, item in walks.take(until="b"):
        if item is ConcurrentWalks.END:
            ended.append(key)
        else:
            got[key].append(item)
    assert ended[-1] == "b" and got["b"] == list(range(100, 120))
    assert walks.running == (0 if "a" in ended else 1)
    for key, item in walks.take_all():
        if item is ConcurrentWalks.END:
            ended.append(key)
        else:
            got[key].append(item)
    assert got["a"] == list(range(30)) and sorted(ended) == ["a", "b"] and walks.running == 0

    def failing():
        yield 1
        raise tfrecord_io.CorruptShardError("s", 1, "cut")

    walks.start("c", failing())
    seen = []
    with pytest.raises(tfrecord_io.CorruptShardError, match="record 1: cut"):
        for key, item in walks.take():
            seen.append(item)
    assert seen == [1]


def test_concurrent_walks_stay_within_depth_and_close_stops_them():
    import time

    produced = []

    def endless(tag):
        i = 0
        while True:
            produced.append((tag, i))
            yield i
            i += 1

    walks = ConcurrentWalks(depth=4)
    walks.start(0, endless(0))
    walks.start(1, endless(1))
    taken = walks.take()
    for _ in range(5):
        next(taken)
    time.sleep(0.2)  # both producers run ahead as far as they may
    assert len(produced) <= 5 + 4 + 2  # taken + queued + one blocked put each
    walks.close()
    assert walks.running == 0


def test_example_key_carries_land_cover_at_the_centre_and_the_input_ages():
    size = 5
    classes = np.arange(size * size) * 10  # the centre pixel (2, 2) is value 12 * 10
    record = example(sensor_id=("bytes", [b"A__B__C"]),
                     cgls_lc_discrete_classification=("int64", classes),
                     sentinel_1_time_millis_diff=("float", [-3.6e6]),
                     sentinel_2_time_millis_diff=("float", [8.64e7]))
    key = keys.example_key("s", 0, record)
    assert (key.land_cover, key.sentinel_1_age, key.sentinel_2_age) == (120, -3.6e6, 8.64e7)
    row = keys.row(key, None).to_dict()
    assert (row["land_cover"], row["sentinel_1_time_millis_diff"]) == (120, -3.6e6)
    even = example(cgls_lc_discrete_classification=("int64", np.arange(16) + 300))
    assert keys.land_cover_of(even) == 300 + 2 * 4 + 2  # (size // 2, size // 2) of 4x4
    assert keys.land_cover_of(example(cgls_lc_discrete_classification=("int64", [7]))) == 7
    # absent, not a square, or stored as floats: no class
    assert keys.land_cover_of(example()) is None
    assert keys.land_cover_of(example(cgls_lc_discrete_classification=("int64", [1] * 24))) is None
    assert keys.land_cover_of(example(cgls_lc_discrete_classification=("float", [1.0] * 25))) is None
    assert keys.example_key("s", 0, example(sentinel_1_time_millis_diff=("bytes", [b"x"]))
                               ).sentinel_1_age is None


def _applied_labels(pipeline):
    found = set()

    def walk(node):
        found.add(node.full_label)
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    return found


def test_scan_shards_in_a_pipeline_and_its_log_line(tmp_path, caplog):
    import logging

    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from transforms import runtime

    head = [example(sm_0_5=("float", [0.2])), b"\xff\xff", ismn_example(), ismn_example("A__B")]
    path = write(tmp_path / "s.gz", head)
    with caplog.at_level(logging.INFO, logger="transforms.merge.scan"):
        with beam.Pipeline(runtime.LOCAL_RUNNER) as p:
            out = p | beam.Create([path]) | scan.ScanShards()
            stored = float(np.float32(1.5e12))  # the timestamp as a float32 holds it
            assert_that(out.refs, equal_to([scan.ExampleRef(path, 2, "SCAN__AdamsRanch_1__X", stored)]),
                        label="refs")
            assert_that(out.failures | beam.Map(lambda f: (f.index, f.kind)),
                        equal_to([(1, "malformed"), (3, "malformed")]), label="failures")
            assert_that(out.reports | beam.Map(lambda r: (r.shard, r.records, r.complete,
                                                           r.already_labelled, r.ismn_examples)),
                        equal_to([("s.gz", 4, True, 1, 1)]), label="reports")
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scanned")]
    assert line.startswith(f"scanned {path}: 4 records, 1 already labelled, 1 to merge (")
    assert 0 <= float(line.rsplit("(", 1)[1].split(" s)")[0]) < 60  # its seconds
    # the steps keep their readable labels (what a runner's monitoring shows)
    with beam.Pipeline(runtime.LOCAL_RUNNER) as q:
        _ = q | beam.Create([path]) | "Scan" >> scan.ScanShards(str(tmp_path))
        names = _applied_labels(q)
    assert {"Scan/Spread shards", "Scan/Walk records"} <= names


def test_malformed_records_are_reported_whole():
    """The failure record names what was found: the reason in full, and the
    sensor id and timestamp when they could be read."""
    stored = float(np.float32(1.5e12))
    cases = [
        (example(timestamp=("float", [1.0])),
         ("missing or non-bytes sensor_id", None, 1.0)),
        (example(sensor_id=("bytes", [b"A__B__C"])),
         ("missing or non-float timestamp", "A__B__C", None)),
        (ismn_example("A__B"), ("sensor_id 'A__B' is not <NETWORK>__<STATION>__<SENSOR_TYPE>",
                                "A__B", stored)),
    ]
    for record, (reason, sensor_id, timestamp) in cases:
        _, fail = scan.classify_record("in/s.gz", 7, record)
        fail = fail.to_dict()
        assert (fail["shard"], fail["path"], fail["index"], fail["kind"]) == ("s.gz", "in/s.gz", 7,
                                                                              "malformed")
        assert (fail["sensor_id"], fail["timestamp"], fail["reason"]) == (sensor_id, timestamp, reason)
    _, fail = scan.classify_record("s", 0, b"\xff\xff")
    fail = fail.to_dict()
    assert fail["reason"].startswith("not a tf.train.Example: ") and len(fail["reason"]) > 26


def test_scan_counts_every_labelled_example_and_reports_progress(tmp_path):
    from transforms.dataset import progress

    board = tmp_path / "board"
    board.mkdir()
    head = [example(sm_0_5=("float", [0.2])), example(sm_5_5=("float", [0.3])), ismn_example()]
    out = list(scan.ScanShardFn(str(board)).process(write(tmp_path / "s.gz", head)))
    (report,) = [dataclasses.asdict(o.value) for o in out if getattr(o, "tag", None) == "reports"]
    assert (report["already_labelled"], report["ismn_examples"], report["records"]) == (2, 1, 3)
    assert isinstance(report["seconds"], float) and 0 <= report["seconds"] < 60
    assert progress.read_board(str(board))["read"]["shards_done"] == 1
