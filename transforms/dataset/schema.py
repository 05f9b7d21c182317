"""The dataset schema: one source of truth for every field of the released shards.

Each ``tf.train.Example`` of the released dataset (``data-NNNNN-of-00500.tfrecord.gz``)
carries the fields listed in the published README. This module lists them all,
with their kind, shape and meaning; parsing specs, the sample-data generator and
the model decoding derive from it, so no other module spells a field name out.

Kinds: only some are *documented* by the release's own parsing code
(``sensor_id`` bytes; ``center_lat``, ``center_long``, ``timestamp``, labels
float; ``smap_sm``, ``gldas_sm`` int64; image bands int64). The others
(``*_timestamp``, ``*_time_millis_diff``, UTM polygon and zone, orbit pass,
cloud percentage, the GLDAS scalars other than ``gldas_sm``) are not published:
``documented=False`` marks them. The generator writes them with the kind given
here, but pipeline code must never depend on them: it reads only documented
fields and carries every other field through byte for byte.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Dict, Iterable, List, Optional, Tuple


class Kind(str, enum.Enum):
    """The ``tf.train.Feature`` list a field is stored in."""

    BYTES = "bytes"
    FLOAT = "float"
    INT64 = "int64"


class Shape(str, enum.Enum):
    """How many values a field holds."""

    SCALAR = "scalar"  # exactly one value
    LIST = "list"  # a short list of variable length
    IMAGE = "image"  # size * size values, row-major


@dataclasses.dataclass(frozen=True)
class Field:
    """One feature of a dataset example."""

    name: str
    kind: Kind
    shape: Shape
    group: str
    description: str
    documented: bool = False  # kind known from the release's own code
    optional: bool = False  # absent from some examples (the labels)


# Names used by code paths (kept as constants so typos fail at import time).
SENSOR_ID = "sensor_id"
TIMESTAMP = "timestamp"
CENTER_LAT = "center_lat"
CENTER_LONG = "center_long"
SIZE = "size"
SMAP_SM = "smap_sm"
GLDAS_SM = "gldas_sm"
SM_0_5 = "sm_0_5"
SM_5_5 = "sm_5_5"
NASA_DEM_ELEVATION = "nasa_dem_elevation"

#: Keys whose presence means an example is already labelled.
LABEL_KEYS: Tuple[str, ...] = (SM_0_5, SM_5_5)
#: The key the ISMN merge writes.
MERGED_LABEL_KEY = SM_0_5
#: Separator inside ``sensor_id``: ``<NETWORK>__<STATION>__<SENSOR_TYPE>``.
SENSOR_ID_SEPARATOR = "__"
#: Image side length in the release.
RELEASED_IMAGE_SIZE = 512

#: The splits every tool agrees on (``transforms.dataset.splits``).
SPLITS: Tuple[str, ...] = ("train", "validation", "test")

# Prediction rows (``run_inference``'s output, ``evaluate``'s input): the
# example's own fields above plus these columns.
PREDICTION = "prediction"
LABEL = "label"  # sm_0_5, else sm_5_5
SHARD = "shard"  # the input shard's file name
INDEX = "index"  # the example's position in its shard
#: What evaluation breaks skill down by, carried when the example has it:
#: the land-cover class at the centre pixel (the sensor's), and the age of
#: the Sentinel-1 and Sentinel-2 inputs (milliseconds from the label's time).
LAND_COVER = "land_cover"
LAND_COVER_BAND = "cgls_lc_discrete_classification"
SENTINEL_1_AGE = "sentinel_1_time_millis_diff"
SENTINEL_2_AGE = "sentinel_2_time_millis_diff"
#: Columns of a prediction row, in output order.
ROW_COLUMNS: Tuple[str, ...] = (SENSOR_ID, TIMESTAMP, PREDICTION, LABEL, SMAP_SM, GLDAS_SM,
                                CENTER_LAT, CENTER_LONG, SHARD, INDEX, LAND_COVER,
                                SENTINEL_1_AGE, SENTINEL_2_AGE)
#: Copernicus Global Land Service LC100 discrete classes (the band's values).
LAND_COVER_CLASSES: Dict[int, str] = {
    0: "Unknown", 20: "Shrubs", 30: "Herbaceous vegetation", 40: "Cropland", 50: "Urban / built up",
    60: "Bare / sparse vegetation", 70: "Snow and ice", 80: "Permanent water bodies",
    90: "Herbaceous wetland", 100: "Moss and lichen",
    111: "Closed forest, evergreen needle leaf", 112: "Closed forest, evergreen broad leaf",
    113: "Closed forest, deciduous needle leaf", 114: "Closed forest, deciduous broad leaf",
    115: "Closed forest, mixed", 116: "Closed forest, other",
    121: "Open forest, evergreen needle leaf", 122: "Open forest, evergreen broad leaf",
    123: "Open forest, deciduous needle leaf", 124: "Open forest, deciduous broad leaf",
    125: "Open forest, mixed", 126: "Open forest, other", 200: "Oceans, seas"}


def _img(name: str, group: str, description: str) -> Field:
    return Field(name, Kind.INT64, Shape.IMAGE, group, description, documented=True)


def _time_fields(prefix: str, group: str, what: str) -> List[Field]:
    return [
        Field(f"{prefix}_time_millis_diff", Kind.FLOAT, Shape.SCALAR, group,
              f"{what} time delta from the in-situ label, milliseconds"),
        Field(f"{prefix}_timestamp", Kind.FLOAT, Shape.SCALAR, group,
              f"timestamp of the {what} data, Unix milliseconds"),
    ]


_S2_BANDS = ("B11", "B12", "B2", "B3", "B4", "B5", "B6", "B7", "B8")
_S1_BANDS = ("VH", "VV", "angle")


def _build_fields() -> List[Field]:
    f: List[Field] = [
        # Properties
        Field(CENTER_LAT, Kind.FLOAT, Shape.SCALAR, "properties",
              "latitude of the in-situ sensor, degrees", documented=True),
        Field(CENTER_LONG, Kind.FLOAT, Shape.SCALAR, "properties",
              "longitude of the in-situ sensor, degrees", documented=True),
        Field(SENSOR_ID, Kind.BYTES, Shape.SCALAR, "properties",
              "<SENSOR_NETWORK>__<STATION_NAME>__<SENSOR_TYPE>", documented=True),
        Field(SIZE, Kind.INT64, Shape.SCALAR, "properties",
              "number of pixels in the height/width of the images"),
        Field(TIMESTAMP, Kind.FLOAT, Shape.SCALAR, "properties",
              "time of the in-situ reading, Unix milliseconds stored as float32",
              documented=True),
        Field("utm_easting_northing_image_polygon", Kind.FLOAT, Shape.LIST, "properties",
              "bounding polygon in UTM easting/northing (x0, y0, x1, y1, ...)"),
        Field("utm_zone", Kind.BYTES, Shape.SCALAR, "properties", "the UTM zone as a string"),
        _img("mask", "properties", "validity mask of the image stack"),
        # ASTER
        _img("aster_B13", "aster", "ASTER band 13"),
        _img("aster_B14", "aster", "ASTER band 14"),
        *_time_fields("aster", "aster", "ASTER"),
        # Copernicus land cover
        _img("cgls_lc_crops-coverfraction", "cgls", "crops cover fraction, percent"),
        _img("cgls_lc_discrete_classification", "cgls", "discrete land cover class"),
        _img("cgls_lc_grass-coverfraction", "cgls", "grass cover fraction, percent"),
        _img("cgls_lc_moss-coverfraction", "cgls", "moss cover fraction, percent"),
        *_time_fields("cgls_lc", "cgls", "CGLS land cover"),
        # GLDAS
        Field("gldas_evaporation", Kind.INT64, Shape.SCALAR, "gldas", "GLDAS evaporation, 0-255"),
        Field("gldas_rainfall", Kind.INT64, Shape.SCALAR, "gldas", "GLDAS rainfall, 0-255"),
        Field(GLDAS_SM, Kind.INT64, Shape.SCALAR, "gldas",
              "GLDAS soil moisture, 0-255 (the model reads value/255)", documented=True),
        Field("gldas_snow_depth", Kind.INT64, Shape.SCALAR, "gldas", "GLDAS snow depth, 0-255"),
        Field("gldas_temp", Kind.INT64, Shape.SCALAR, "gldas", "GLDAS temperature, 0-255"),
        *_time_fields("gldas", "gldas", "GLDAS"),
        # MODIS leaf area index
        _img("modis_leaf_area_Fpar", "modis", "MODIS fraction of absorbed PAR"),
        _img("modis_leaf_area_Lai", "modis", "MODIS leaf area index"),
        *_time_fields("modis_leaf_area", "modis", "MODIS LAI"),
        # NASA DEM
        _img(NASA_DEM_ELEVATION, "nasa_dem", "elevation, metres"),
        *_time_fields("nasa_dem", "nasa_dem", "NASA DEM"),
    ]
    # Sentinel-1
    f += [_img(f"sentinel_1_{b}", "sentinel_1", f"Sentinel-1 {b}") for b in _S1_BANDS]
    for stat in ("max", "mean", "min"):
        f += [_img(f"sentinel_1_{stat}_{b}", "sentinel_1",
                   f"{stat} of Sentinel-1 {b} over the last year") for b in _S1_BANDS]
    f += [Field("sentinel_1_orbit_pass", Kind.BYTES, Shape.SCALAR, "sentinel_1",
                "orbit pass, ASCENDING or DESCENDING"),
          *_time_fields("sentinel_1", "sentinel_1", "Sentinel-1")]
    # Sentinel-2
    f += [_img(f"sentinel_2_{b}", "sentinel_2", f"Sentinel-2 {b}") for b in _S2_BANDS]
    f += [Field("sentinel_2_cloud_percentage", Kind.FLOAT, Shape.SCALAR, "sentinel_2",
                "cloud percentage of the Sentinel-2 scene")]
    for stat in ("max", "mean", "min"):
        f += [_img(f"sentinel_2_{stat}_{b}", "sentinel_2",
                   f"{stat} of Sentinel-2 {b} over the last year")
              for b in (*_S2_BANDS, "sen_2_mask")]
    f += [_img("sentinel_2_sen_2_mask", "sentinel_2", "Sentinel-2 cloud/validity mask"),
          *_time_fields("sentinel_2", "sentinel_2", "Sentinel-2")]
    # SMAP
    f += [Field(SMAP_SM, Kind.INT64, Shape.SCALAR, "smap",
                "SMAP soil moisture at the sensor, 0-255 (the model reads value/255)",
                documented=True),
          *_time_fields("smap", "smap", "SMAP")]
    # SoilGrids
    for short, long in (("bd", "bdod"), ("clay", "clay"), ("sand", "sand"), ("silt", "silt")):
        f += [_img(f"soil_grids_{short}_{long}_0-5cm_mean", "soil_grids",
                   f"SoilGrids {long} 0-5 cm mean"),
              *_time_fields(f"soil_grids_{short}", "soil_grids", f"SoilGrids {short}")]
    # Labels
    f += [
        Field(SM_0_5, Kind.FLOAT, Shape.SCALAR, "soil_moisture",
              "soil moisture at 5 cm, m3/m3 (non-ISMN sensors; added by the ISMN merge)",
              documented=True, optional=True),
        Field(SM_5_5, Kind.FLOAT, Shape.SCALAR, "soil_moisture",
              "soil moisture at 5 cm from some sensors, m3/m3",
              documented=True, optional=True),
    ]
    return f


FIELDS: Tuple[Field, ...] = tuple(_build_fields())
FIELDS_BY_NAME: Dict[str, Field] = {f.name: f for f in FIELDS}
assert len(FIELDS_BY_NAME) == len(FIELDS), "duplicate field names"

#: High-resolution model input, in the order of the last axis of ``ImageTensor:0``.
IMAGE_BANDS: Tuple[str, ...] = (
    "sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle",
    "sentinel_2_B4", "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8",
    "sentinel_2_B11", "sentinel_2_B12", NASA_DEM_ELEVATION,
)
#: Low-resolution model input, in the order of the last axis of ``LowResImageTensor:0``.
LOW_RES_BANDS: Tuple[str, ...] = (
    "soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
    "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean",
)
#: Scalars of ``AuxTensor:0``, each divided by ``AUX_SCALE``.
AUX_FIELDS: Tuple[str, ...] = (SMAP_SM, GLDAS_SM)
AUX_SCALE = 255.0
#: DEM rescaling before feeding: ``trunc(clip(elevation / 3000 * 255, 0, 255))``.
DEM_SCALE_METRES = 3000.0
DEM_MAX_VALUE = 255.0

for _name in (*IMAGE_BANDS, *LOW_RES_BANDS, *AUX_FIELDS):
    assert _name in FIELDS_BY_NAME, _name


def image_fields() -> List[Field]:
    return [f for f in FIELDS if f.shape is Shape.IMAGE]


def value_count(field: Field, size: int) -> Optional[int]:
    """Number of values a field holds for images of ``size``; None for lists."""
    if field.shape is Shape.SCALAR:
        return 1
    if field.shape is Shape.IMAGE:
        return size * size
    return None


_TF_DTYPES = {Kind.BYTES: "string", Kind.FLOAT: "float32", Kind.INT64: "int64"}


def parsing_spec(size: int, names: Optional[Iterable[str]] = None,
                 label_default: float = float("nan")):
    """A ``tf.io.parse_example`` feature spec for ``names`` (all fields by default).

    Scalars and images are ``FixedLenFeature`` (images flattened to
    ``size * size``), lists ``VarLenFeature``. Optional fields (the labels) get
    ``label_default`` when absent.
    """
    import tensorflow as tf  # imported lazily: schema users need not load TF

    spec = {}
    for name in (names if names is not None else FIELDS_BY_NAME):
        field = FIELDS_BY_NAME[name]
        dtype = getattr(tf, _TF_DTYPES[field.kind])
        if field.shape is Shape.LIST:
            spec[name] = tf.io.VarLenFeature(dtype)
        elif field.optional:
            spec[name] = tf.io.FixedLenFeature([], dtype, default_value=label_default)
        else:
            n = value_count(field, size)
            spec[name] = tf.io.FixedLenFeature([] if n == 1 else [n], dtype)
    return spec


def split_sensor_id(sensor_id: str) -> Tuple[str, str, str]:
    """``NETWORK__STATION__SENSOR_TYPE`` -> its three parts.

    Raises ValueError naming the id when it does not have exactly three parts.
    """
    parts = sensor_id.split(SENSOR_ID_SEPARATOR)
    if len(parts) != 3:
        raise ValueError(
            f"sensor_id {sensor_id!r} is not <NETWORK>__<STATION>__<SENSOR_TYPE>")
    return parts[0], parts[1], parts[2]
