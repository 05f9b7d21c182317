# The two set-up commands: `make test` and `make demo`. Both create (or
# refresh) .venv at the repo root from setup.py + constraints.txt, with the
# first of Python 3.11, 3.12, 3.13 found (3.11 preferred; PYTHON=... to choose).
PYTHON ?= $(shell for v in 3.11 3.12 3.13; do p=$$(command -v python$$v) && $$p -c pass 2>/dev/null && echo $$p && break; done || true)
ifeq ($(strip $(PYTHON)),)
PYTHON := python3
endif
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SAMPLE := sample_data
PIP_VERSION := 26.3
NOX_VERSION := 2026.10.20

.PHONY: venv test test-all-pythons mutate demo bench constraints clean

$(STAMP): setup.py constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip==$(PIP_VERSION)"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

test: venv
	$(PY) -m pytest -q tests

# The suite on every supported Python found (nox; sessions for missing ones are skipped).
test-all-pythons:
	@test -x .nox-venv/bin/nox || ($(PYTHON) -m venv .nox-venv && \
	    .nox-venv/bin/python -m pip install --quiet --disable-pip-version-check "nox==$(NOX_VERSION)")
	.nox-venv/bin/nox -s missing tests

# Mutation testing of the rule modules (tests/mutate.py; about 45 minutes on 2 cores).
mutate: venv
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,mutate]'
	$(PY) tests/mutate.py

demo: venv
	$(PY) -m pipelines.make_sample_data --output_dir $(SAMPLE) --num_shards 2 \
	    --examples_per_shard 120 --image_size 32 --seed 0 --ismn_format ceop --ismn_layout zip \
	    --scene_size 768 --native_scene_size 768 --scene_series 3
	$(PY) -m pipelines.combine_ismn_data \
	    --input_data_path '$(SAMPLE)/shards/data-*-of-00002.tfrecord.gz' \
	    --ismn_data_path $(SAMPLE)/ismn/ISMN_sample.zip --output_dir $(SAMPLE)/merged \
	    --direct_num_workers 2 --direct_running_mode multi_processing
	rm -rf $(SAMPLE)/training
	$(PY) -m pipelines.train --input_data_path '$(SAMPLE)/merged/data-*-of-00002.tfrecord.gz' \
	    --output_dir $(SAMPLE)/training --image_size 32 --epochs 30
	$(PY) -m pipelines.run_inference \
	    --input_data_path '$(SAMPLE)/merged/data-*-of-00002.tfrecord.gz' \
	    --exported_model_dir $(SAMPLE)/training/model --num_inference_samples 5
	$(PY) -m pipelines.run_inference \
	    --input_data_path '$(SAMPLE)/merged/data-*-of-00002.tfrecord.gz' \
	    --exported_model_dir $(SAMPLE)/training/model \
	    --output_path $(SAMPLE)/predictions/pred
	$(PY) -m pipelines.evaluate --predictions '$(SAMPLE)/predictions/pred-*.csv' \
	    --output_dir $(SAMPLE)/evaluation --min_samples_per_sensor 3
	$(PY) -m pipelines.predict_map --scene_path $(SAMPLE)/scene \
	    --exported_model_dir $(SAMPLE)/training/model --stride 32 \
	    --output_path $(SAMPLE)/maps/map.tif
	$(PY) -m pipelines.predict_map --scene_path $(SAMPLE)/native_scene \
	    --encoding $(SAMPLE)/native_scene/encoding.json \
	    --exported_model_dir $(SAMPLE)/training/model --stride 32 \
	    --output_path $(SAMPLE)/maps/native_map.tif
	$(PY) -m pipelines.predict_map --scene_path $(SAMPLE)/native_scene/items.json \
	    --encoding $(SAMPLE)/native_scene/encoding.json \
	    --exported_model_dir $(SAMPLE)/training/model --stride 32 \
	    --output_path $(SAMPLE)/maps/native_stac_map.tif
	$(PY) -m pipelines.predict_map --scene_path '$(SAMPLE)/series/scene_*' \
	    --exported_model_dir $(SAMPLE)/training/model --stride 32 \
	    --output_path $(SAMPLE)/maps/cube.zarr
	$(PY) -m pipelines.validate_map --map $(SAMPLE)/maps/cube.zarr \
	    --ismn_data_path $(SAMPLE)/series/ISMN_series.zip --output_dir $(SAMPLE)/map_validation \
	    --min_samples_per_sensor 2

bench: venv
	$(PY) benchmarks/combine_benchmark.py --work_dir bench_data
	$(PY) benchmarks/inference_benchmark.py --work_dir bench_data/inference
	$(PY) benchmarks/train_benchmark.py --work_dir bench_data/train
	$(PY) benchmarks/map_benchmark.py --work_dir bench_data/maps --sizes 2048,8192 --stride 64
	$(PY) benchmarks/cube_benchmark.py --work_dir bench_data/cubes --size 2048 --times 5 \
	    --memory_size 1024 --memory_times 5,20 --stride 64
	$(PY) benchmarks/validate_benchmark.py --work_dir bench_data/validate

constraints: venv
	$(PY) -m pip freeze --exclude-editable | grep -v '^soil-moisture' \
	    | (echo "# Pinned transitive set the tests ran with (Python 3.11, Linux x86_64)."; \
	       echo "# Regenerate: make constraints"; cat) > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .nox-venv .nox $(SAMPLE) *.egg-info
