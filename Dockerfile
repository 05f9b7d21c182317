# Worker (SDK harness) image for Dataflow custom containers and Flink's DOCKER
# environment. The base image's Beam and Python versions must equal the pins
# in setup.py (apache-beam 2.77.0, Python 3.11).
FROM apache/beam_python3.11_sdk:2.77.0

WORKDIR /opt/soil-moisture
COPY setup.py constraints.txt README.md ./
COPY pipelines ./pipelines
COPY transforms ./transforms
COPY model_runner ./model_runner
RUN pip install --no-cache-dir -c constraints.txt . \
    && rm -rf /root/.cache

# The SDK harness entrypoint of the base image stays as it is.
