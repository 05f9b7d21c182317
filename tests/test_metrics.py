"""Metric formulas and the sensor split, in memory (fast enough to run per mutant).

The oracles are numpy (``support.numpy_metrics``) and the split rule
re-computed here from its statement: sha256, first 8 bytes big-endian, / 2**64.
"""

import hashlib
import math

import numpy as np
import pytest

from support import assert_metrics_equal, numpy_metrics
from transforms.dataset import splits
from transforms.evaluation import metrics


def stats_of(p, y):
    s = metrics.PairStats()
    for pi, yi in zip(p, y):
        s.add(float(pi), float(yi))
    return s


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pair_stats_equal_numpy_in_any_merge_order(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    y = rng.uniform(0.05, 0.5, n)
    p = 0.6 * y + rng.normal(0, 0.05, n) + 0.1
    cuts = sorted(rng.choice(np.arange(1, n), size=min(5, n - 1), replace=False))
    parts = []
    for a, b in zip([0, *cuts], [*cuts, n]):
        s = metrics.PairStats()
        for pi, yi in zip(p[a:b], y[a:b]):
            s.add(pi, yi)
        parts.append(s)
    merged = metrics.PairStatsFn().merge_accumulators(parts[::-1])
    assert_metrics_equal(merged.metrics(), numpy_metrics(p, y))


def test_constant_and_single_pairs_give_no_nan():
    const = metrics.PairStats()
    for yi in (0.1, 0.2, 0.3):
        const.add(0.25, yi)
    m = const.metrics()
    assert m["r"] is None and m["rmse"] == pytest.approx(numpy_metrics([0.25] * 3, [0.1, 0.2, 0.3])["rmse"])
    one = metrics.PairStats().add(0.3, 0.1).metrics()
    assert one["r"] is None and one["rmse"] == pytest.approx(0.2) and one["ubrmse"] == pytest.approx(0)
    assert metrics.PairStats().metrics()["rmse"] is None


def test_sensor_split_is_stable_and_proportional():
    # fixed forever: every run and every tool must agree on these
    assert [splits.sensor_split(s) for s in (
        "SCAN__AdamsRanch_1__X", "HOBE__CST_01__CS655", "USCRN__Kenai_29_ENE__S", "B")] == [
        "validation", "train", "validation", "test"]
    drawn = [splits.sensor_split(f"NET__S{i}__X") for i in range(20000)]
    assert drawn.count("train") / 20000 == pytest.approx(0.7, abs=0.02)
    assert drawn.count("validation") / 20000 == pytest.approx(0.15, abs=0.02)
    assert splits.sensor_split("X", 0.5, 0.5) in ("train", "validation")


def test_split_file():
    mapping = splits.read_split_file("sensor_id,split\nA__B__C,test\nD__E__F,train\n")
    assert mapping == {"A__B__C": "test", "D__E__F": "train"}
    with pytest.raises(ValueError, match="expected sensor_id"):
        splits.read_split_file("A__B__C,holdout\n")


def test_perfect_and_anticorrelated_predictions():
    y = np.linspace(0.1, 0.4, 7)
    assert stats_of(y, y).metrics() == {"n": 7, "bias": 0.0, "rmse": 0.0, "ubrmse": 0.0,
                                        "r": pytest.approx(1.0)}
    m = stats_of(0.5 - y, y).metrics()
    assert m["r"] == pytest.approx(-1.0) and -1.0 <= m["r"]
    shifted = stats_of(y + 0.05, y).metrics()
    assert shifted["bias"] == pytest.approx(0.05) and shifted["ubrmse"] == pytest.approx(0, abs=1e-12)
    assert shifted["rmse"] == pytest.approx(0.05)


def test_two_pairs_are_enough_for_r_and_one_is_not():
    assert stats_of([0.1, 0.3], [0.2, 0.25]).metrics()["r"] == pytest.approx(1.0)
    assert stats_of([0.1], [0.2]).metrics()["r"] is None


def test_merge_with_empty_and_copy_semantics():
    a = stats_of([0.1, 0.2, 0.4], [0.15, 0.1, 0.3])
    empty = metrics.PairStats()
    assert a.merge(empty) is a
    merged = empty.merge(a)
    assert merged == a and merged is not a  # a copy: merging into it leaves ``a`` alone
    merged.add(0.9, 0.9)
    assert a.n == 3


@pytest.mark.parametrize("seed", [4, 5])
def test_merge_stats_fn_equals_stats_of_all_pairs(seed):
    rng = np.random.default_rng(seed)
    p, y = rng.uniform(0, 0.6, 90), rng.uniform(0, 0.6, 90)
    fn = metrics.MergeStatsFn()
    acc = fn.create_accumulator()
    for a, b in ((0, 20), (20, 21), (21, 90)):
        acc = fn.add_input(acc, stats_of(p[a:b], y[a:b]))
    other = fn.add_input(fn.create_accumulator(), metrics.PairStats())
    assert_metrics_equal(fn.extract_output(fn.merge_accumulators([acc, other])).metrics(),
                         numpy_metrics(p, y))


def test_density_grid_bins_labels_as_rows_and_predictions_as_columns():
    fn = metrics.Hist2dFn()
    acc = fn.create_accumulator()
    bins = metrics.HIST_BINS
    for pair in [(0.0, 1.0), (0.999, 0.0), (-0.5, 2.0), (0.5, 0.5), (1.0 / bins, 0.0)]:
        acc = fn.add_input(acc, pair)
    assert acc.shape == (bins, bins) and acc.sum() == 5
    assert acc[bins - 1, 0] == 2  # label 1.0 and 2.0 clamp to the last row, prediction to column 0
    assert acc[0, bins - 1] == 1
    assert acc[bins // 2, bins // 2] == 1
    assert acc[0, 1] == 1  # a value on a bin edge goes to the bin above it
    merged = fn.merge_accumulators([acc, acc])
    assert fn.extract_output(merged).sum() == 10


def test_per_sensor_summary_uses_sensors_with_at_least_min_samples():
    rows = [{"n": n, "r": r, "ubrmse": u, "rmse": u + 0.01, "bias": 0.0}
            for n, r, u in [(9, 0.1, 0.01), (10, 0.5, 0.02), (11, None, 0.04), (30, 0.9, 0.05)]]
    out = metrics.summarise_sensors(rows, min_samples=10)
    assert (out["sensors"], out["sensors_used"], out["sensors_excluded_min_samples"]) == (4, 3, 1)
    assert out["r_mean"] == pytest.approx(np.mean([0.5, 0.9])) and out["r_sensors"] == 2
    assert out["r_median"] == pytest.approx(0.7)
    assert out["ubrmse_mean"] == pytest.approx(np.mean([0.02, 0.04, 0.05]))
    assert out["ubrmse_median"] == pytest.approx(0.04) and out["ubrmse_sensors"] == 3
    nobody = metrics.summarise_sensors(rows, min_samples=31)
    assert nobody["r_mean"] is None and nobody["r_median"] is None and nobody["sensors_used"] == 0


def _u(sensor_id):
    return int.from_bytes(hashlib.sha256(sensor_id.encode()).digest()[:8], "big") / 2.0 ** 64


@pytest.mark.parametrize("sensor_id", ["SCAN__AdamsRanch_1__X", "B", "NET__S7__X"])
def test_split_thresholds_are_strict(sensor_id):
    u = _u(sensor_id)
    above = math.nextafter(u, 1.0)
    assert splits.sensor_split(sensor_id, above, 0.0) == "train"
    assert splits.sensor_split(sensor_id, u, 1.0) == "validation"  # u < u is false
    assert splits.sensor_split(sensor_id, 0.0, above) == "validation"
    assert splits.sensor_split(sensor_id, 0.0, u) == "test"
    assert splits.sensor_split(sensor_id, u / 2, u / 2) == "test"
    assert splits.sensor_split(sensor_id, u / 2, math.nextafter(u / 2, 1.0) + u / 2) in (
        "validation", "test")


def test_split_file_lines():
    assert splits.read_split_file("\nA__B__C,validation\n\n") == {"A__B__C": "validation"}
    for bad in ("A__B__C\n", "A__B__C,train,extra\n", "A__B__C,Train\n"):
        with pytest.raises(ValueError, match="split file line"):
            splits.read_split_file(bad)


def test_split_config_precedence():
    by_file = splits.SplitConfig(by_sensor_file={"A__B__C": "test"})
    assert by_file.split("A__B__C") == "test" and by_file.split("X__Y__Z") is None
    assert splits.SplitConfig(single_split="all").split("A__B__C") == "all"
    both = splits.SplitConfig(by_sensor_file={"A__B__C": "test"}, single_split="all")
    assert both.split("A__B__C") == "all"
    hashed = splits.SplitConfig(0.2, 0.3)
    assert hashed.split("NET__S7__X") == splits.sensor_split("NET__S7__X", 0.2, 0.3)


def test_network_is_the_first_part_of_the_sensor_id():
    assert splits.network_of("SCAN__AdamsRanch_1__X") == "SCAN"
    assert splits.network_of("SMAP-LittleWashita__LW01__CS655") == "SMAP-LittleWashita"


def test_pair_stats_combiner_from_pairs():
    rng = np.random.default_rng(9)
    p, y = rng.uniform(0, 0.6, 30), rng.uniform(0, 0.6, 30)
    fn = metrics.PairStatsFn()
    parts = []
    for a, b in ((0, 10), (10, 30)):
        acc = fn.create_accumulator()
        for pair in zip(p[a:b], y[a:b]):
            acc = fn.add_input(acc, pair)
        parts.append(acc)
    assert_metrics_equal(fn.extract_output(fn.merge_accumulators(parts)).metrics(),
                         numpy_metrics(p, y))
    assert fn.extract_output(fn.create_accumulator()).metrics()["n"] == 0


def test_time_split_by_the_utc_year_of_the_timestamp():
    from transforms.dataset.splits import SplitConfig, year_of

    config = SplitConfig(test_years=(2021,), validation_years=(2019, 2020))
    new_year = 1609459200000.0  # 2021-01-01T00:00:00Z
    assert config.split("A__B__C", new_year) == "test"
    assert config.split("A__B__C", new_year - 1) == "validation"  # 2020-12-31T23:59:59.999Z
    assert config.split("A__B__C", 1.5e12) == "train"  # 2017
    assert config.split("A__B__C", 1.55e12) == "validation"  # 2019
    assert config.split("A__B__C") is None and config.split("A__B__C", float("nan")) is None
    assert SplitConfig(test_years=(2017,)).split("x", 1.5e12) == "test"
    assert SplitConfig(test_years=()).split("x", 1.5e12) == "train"  # no test year: all train
    assert SplitConfig(single_split="all", test_years=(2017,)).split("x", 1.5e12) == "all"
    assert [year_of(t) for t in (0.0, new_year, -1.0, None, float("inf"), 1e20)] == [
        1970, 2021, 1969, None, None, None]
