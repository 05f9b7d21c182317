import os
import re

import numpy as np
import pytest
import tensorflow as tf

from transforms.dataset import schema

SEED_README = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "seed", "README.md")


def published_field_names():
    """Field names from the published README's field list."""
    with open(SEED_README) as f:
        text = f.read()
    section = text.split("The following fields are present in a TFExample datapoint:")[1]
    section = section.split("The sm_0_5 field is only present")[0]
    return {m.group(1) for m in re.finditer(r"^  - ([A-Za-z0-9_\-]+)", section, re.M)}


@pytest.mark.skipif(not os.path.exists(SEED_README), reason="shared/seed/README.md not beside the repo")
def test_schema_lists_exactly_the_published_fields():
    published = published_field_names()
    assert len(published) > 100
    assert set(schema.FIELDS_BY_NAME) == published | {schema.SM_5_5}


def test_documented_kinds_match_reference_notes():
    f = schema.FIELDS_BY_NAME
    assert f["sensor_id"].kind is schema.Kind.BYTES
    for name in ("center_lat", "center_long", "timestamp", "sm_0_5", "sm_5_5"):
        assert f[name].kind is schema.Kind.FLOAT and f[name].shape is schema.Shape.SCALAR
    for name in ("smap_sm", "gldas_sm"):
        assert f[name].kind is schema.Kind.INT64 and f[name].shape is schema.Shape.SCALAR
    for name in (*schema.IMAGE_BANDS, *schema.LOW_RES_BANDS):
        assert f[name].kind is schema.Kind.INT64 and f[name].shape is schema.Shape.IMAGE
    assert {n for n, fl in f.items() if fl.optional} == set(schema.LABEL_KEYS)


def test_model_band_order():
    assert schema.IMAGE_BANDS == (
        "sentinel_1_VV", "sentinel_1_VH", "sentinel_1_angle", "sentinel_2_B4",
        "sentinel_2_B3", "sentinel_2_B2", "sentinel_2_B8", "sentinel_2_B11",
        "sentinel_2_B12", "nasa_dem_elevation")
    assert schema.LOW_RES_BANDS == (
        "soil_grids_sand_sand_0-5cm_mean", "soil_grids_silt_silt_0-5cm_mean",
        "soil_grids_clay_clay_0-5cm_mean", "soil_grids_bd_bdod_0-5cm_mean")
    assert schema.AUX_FIELDS == ("smap_sm", "gldas_sm")


def test_parsing_spec_shapes():
    spec = schema.parsing_spec(8)
    assert spec["nasa_dem_elevation"].shape == [64]
    assert spec["timestamp"].shape == []
    assert isinstance(spec["utm_easting_northing_image_polygon"], tf.io.VarLenFeature)
    assert np.isnan(spec["sm_0_5"].default_value)


@pytest.mark.parametrize("sid,parts", [
    ("SCAN__AdamsRanch_1__Hydraprobe", ("SCAN", "AdamsRanch_1", "Hydraprobe")),
    ("FR_Aqui__Lamothe__ThetaProbe", ("FR_Aqui", "Lamothe", "ThetaProbe")),
])
def test_split_sensor_id(sid, parts):
    assert schema.split_sensor_id(sid) == parts


@pytest.mark.parametrize("sid", ["SCAN_AdamsRanch_1_x", "A__B", "A__B__C__D", ""])
def test_split_sensor_id_rejects(sid):
    with pytest.raises(ValueError, match="NETWORK"):
        schema.split_sensor_id(sid)
