"""What a finished command prints: figures rounded to what they mean, counts
in words with the right number (issue 29, item 8). cut_examples' lines are
tested in test_cut_examples.py."""

from transforms.training.job import report_lines


def report(train=120, nonfinite=0, rmse=0.0123456789, baseline=0.0654321987):
    return {"preprocessing": {"skipped": {"nonfinite_label_skipped": nonfinite}},
            "examples": {"train": train}, "train_seconds": 12.6,
            "rmse": {"validation": rmse}, "rmse_train_mean": {"validation": baseline},
            "model_dir": "t/model"}


def test_train_prints_rmse_to_4_significant_digits():
    (line,) = report_lines(report())
    assert line == ("trained on 120 examples in 13 s; validation RMSE 0.01235, train-mean "
                    "baseline 0.06543; model: t/model")
    (line,) = report_lines(report(rmse=None, baseline=123.456789))
    assert "validation RMSE -, train-mean baseline 123.5;" in line  # no validation split


def test_train_counts_in_words():
    lines = report_lines(report(train=1, nonfinite=1))
    assert lines[0] == "train: 1 example with a NaN or infinite label was left out"
    assert lines[1].startswith("trained on 1 example in ")
    lines = report_lines(report(nonfinite=3))
    assert lines[0] == "train: 3 examples with a NaN or infinite label were left out"
