# Worker (SDK harness) image for Dataflow custom containers
# (--sdk_container_image) and Flink's DOCKER environment (--environment_config).
# The base image's Beam and Python versions must equal the pins in setup.py
# (apache-beam 2.77.0, Python 3.11): a mismatch fails jobs at start-up, and
# tests/test_cluster.py checks it.
#
# It stays root: the Beam boot entrypoint installs staged packages into the
# image's site-packages and writes under /opt/apache/beam at start-up, which the
# SDK image only allows as root.
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/soil-moisture
COPY setup.py constraints.txt README.md ./
COPY pipelines ./pipelines
COPY transforms ./transforms
COPY model_runner ./model_runner
# The same pins as CI; nothing is compiled (pure-Python sdists at most), so no
# build tools are installed or left behind.
RUN pip install --no-cache-dir -c constraints.txt .

# ENTRYPOINT stays the base image's /opt/apache/beam/boot.
