"""predict_map's progress: by windows predicted, every --progress_seconds."""

import logging

from pipelines import predict_map
from transforms.mapping.pipeline import ProgressFn, progress_line
from transforms.runtime import pipeline_help


def test_the_progress_line_counts_windows_and_their_rate():
    assert progress_line(1200, 4096, 15.0) == (
        "progress: 1,200 windows predicted (29% of 4,096 map pixels), 80 windows/s")
    assert progress_line(0, 0, 0.0) == (
        "progress: 0 windows predicted (0% of 0 map pixels), 0 windows/s")


def _run(fn, elements, clock, monkeypatch, caplog):
    times = iter(clock)
    monkeypatch.setattr("transforms.mapping.pipeline.time.monotonic", lambda: next(times))
    with caplog.at_level(logging.INFO, logger="transforms.mapping.pipeline"):
        fn.setup()
        passed = [out for e in elements for out in fn.process(e)]
    return passed, [r.getMessage() for r in caplog.records]


def test_a_line_every_progress_seconds_between_batches(monkeypatch, caplog):
    """Lines come from batches predicted, not tiles read: a single large
    tile still logs as its windows go through the model."""
    batches = [((0, 0, 1, 1), [((0, k), 0.2)] * 8) for k in range(4)]
    # setup at 0 s, then one clock reading per batch: 4 s, 11 s, 12 s, 25 s
    passed, lines = _run(ProgressFn(100, 10.0), batches, [0.0, 4.0, 11.0, 12.0, 25.0],
                         monkeypatch, caplog)
    assert passed == batches
    assert lines == [progress_line(16, 100, 11.0), progress_line(32, 100, 25.0)]


def test_no_line_with_progress_seconds_0(monkeypatch, caplog):
    batches = [((0, 0, 1, 1), [((0, 0), 0.2)])] * 3
    passed, lines = _run(ProgressFn(100, 0), batches, [0.0, 50.0, 100.0, 200.0], monkeypatch,
                         caplog)
    assert passed == batches and lines == []


def test_progress_seconds_is_a_flag_of_predict_map():
    text = pipeline_help("predict_map", "", predict_map.OPTION_CLASSES)
    assert "--progress_seconds" in text
