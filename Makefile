# The two set-up commands: `make test` and `make demo`. Both create (or
# refresh) .venv at the repo root from setup.py + constraints.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SAMPLE := sample_data
PIP_VERSION := 26.3

.PHONY: venv test demo bench constraints clean

$(STAMP): setup.py constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

test: venv
	$(PY) -m pytest -q tests

demo: venv
	$(PY) -m pipelines.make_sample_data --output_dir $(SAMPLE) --num_shards 2 \
	    --examples_per_shard 16 --image_size 64 --seed 0 --ismn_format ceop --ismn_layout zip
	$(PY) -m pipelines.combine_ismn_data \
	    --input_data_path '$(SAMPLE)/shards/data-*-of-00002.tfrecord.gz' \
	    --ismn_data_path $(SAMPLE)/ismn/ISMN_sample.zip --output_dir $(SAMPLE)/merged \
	    --direct_num_workers 2 --direct_running_mode multi_processing
	rm -rf $(SAMPLE)/model
	$(PY) -m model_runner.export_reference_model --output_dir $(SAMPLE)/model --frozen
	$(PY) -m pipelines.run_inference \
	    --input_data_path '$(SAMPLE)/merged/data-*-of-00002.tfrecord.gz' \
	    --exported_model_dir $(SAMPLE)/model --image_size 64 --num_inference_samples 5
	$(PY) -m pipelines.run_inference \
	    --input_data_path '$(SAMPLE)/merged/data-*-of-00002.tfrecord.gz' \
	    --exported_model_dir $(SAMPLE)/model --image_size 64 \
	    --output_path $(SAMPLE)/predictions/pred
	$(PY) -m pipelines.evaluate --predictions '$(SAMPLE)/predictions/pred-*.csv' \
	    --output_dir $(SAMPLE)/evaluation --split_by none --min_samples_per_sensor 3

bench: venv
	$(PY) benchmarks/combine_benchmark.py --work_dir bench_data
	$(PY) benchmarks/inference_benchmark.py --work_dir bench_data

constraints: venv
	$(PY) -m pip freeze --exclude-editable | grep -v '^soil-moisture' \
	    | (echo "# Pinned transitive set the tests ran with (Python 3.11, Linux x86_64)."; \
	       echo "# Regenerate: make constraints"; cat) > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) $(SAMPLE) *.egg-info
