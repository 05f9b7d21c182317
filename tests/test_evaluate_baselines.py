"""evaluate --baselines: which baselines are evaluated beside the model, and
so which values every row must have (all predictors of a table still on the
same pairs)."""

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import evaluate
from transforms import runtime
from transforms.evaluation import EvaluationConfig
from transforms.evaluation import inputs

ROW = {"sensor_id": "N__S__X", "timestamp": "1.6e12", "prediction": "0.2", "label": "0.25",
       "smap_sm": "", "gldas_sm": "40"}


def config(*flags):
    options = PipelineOptions(["--predictions", "p.csv", "--output_dir", "o", *flags])
    for cls in evaluate.OPTION_CLASSES:
        options.view_as(cls)
    return EvaluationConfig.from_options(options)


def test_a_row_without_a_baseline_left_out_is_a_pair_for_the_others():
    assert config().baseline_names == ("smap", "gldas")
    assert inputs.pair_problem(ROW, inputs.predictor_columns((), True))[0] == "incomplete"
    kept = config("--baselines", "gldas").baseline_names
    assert kept == ("gldas",)
    assert inputs.pair_problem(ROW, inputs.predictor_columns((), True, kept)) is None
    none = config("--baselines", "none").baseline_names
    assert none == () and inputs.predictor_columns((), True, none) == ("prediction",)


def test_a_baseline_left_out_is_not_evaluated_even_where_a_row_has_it():
    row = inputs.without_baselines({**ROW, "smap_sm": "30"}, ["smap", "gldas"])
    assert "smap_sm" not in row and "gldas_sm" not in row
    assert inputs.predictor_values(row, ()) == {"model": 0.2}
    assert set(inputs.predictor_values(inputs.without_baselines(ROW, ["smap"]), ())) == {
        "model", "gldas"}


@pytest.mark.parametrize("value", ["sm", "smap,era5", "", "none,smap"])
def test_an_unknown_baseline_is_a_usage_error(value):
    with pytest.raises(runtime.UsageError, match="--baselines"):
        config("--baselines", value)


def test_the_reference_predictor_must_be_evaluated():
    with pytest.raises(runtime.UsageError, match="--reference_predictor smap"):
        config("--baselines", "gldas", "--reference_predictor", "smap")
