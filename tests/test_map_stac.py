"""Scenes from STAC (issue #30, item 4): a static ItemCollection or Catalog
(``--scene_path scene.json``) or a STAC API search (``--stac_api``) is read
as the scene folder of the same files is.

Mapped by ``predict_map`` (in this process, ``main(argv)``), an
ItemCollection of COGs, a band split over two items (adjacent halves), and a
Catalog with relative hrefs each give the folder's map bit for bit; a band
map (shipped: Earth Search's keys) names the bands; relative hrefs resolve
against the file (local or ``gs://``); a band's files keep the item order
(the mosaic order). A search (a fake API on localhost) finds the same files
as the static ItemCollection, through ``cut_examples`` too. Bad input is one
line and exit 2 (flags, band maps) or 1 (an unusable STAC file, an API not
reached within seconds), leaving nothing under the output name.
"""

import datetime
import gzip
import http.server
import io
import json
import os
import shutil
import socket
import threading
import time
import zipfile

import pytest

from transforms import runtime
from transforms.mapping import SceneSettings
from transforms.mapping.scene import ALL_BANDS, SceneError, read_scene, stac
from transforms.synthetic.scene import SceneConfig, make_scene

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEIGHT, WIDTH, STRIDE = 320, 384, 32
CLOUD = (150, 172, 356, 372)  # nodata in sentinel_2_B4, across the split row (160)
WHEN = datetime.datetime(2021, 6, 1, 10, 30, tzinfo=datetime.timezone.utc)
EARTH_SEARCH = {"sentinel_2_B4": "red", "sentinel_2_B3": "green", "sentinel_2_B2": "blue",
                "sentinel_2_B8": "nir", "sentinel_2_B11": "swir16", "sentinel_2_B12": "swir22"}


def write_cog(source, target, rows=None):
    """``source`` (a GeoTIFF) as a COG at ``target``, or its ``rows``
    ``(start, stop)`` only, georeferenced where they lie."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    os.makedirs(os.path.dirname(target), exist_ok=True)
    with rasterio.open(source) as ds:
        window = Window(0, rows[0], ds.width, rows[1] - rows[0]) if rows else None
        data = ds.read(window=window)
        profile = {"driver": "COG", "dtype": ds.dtypes[0], "count": ds.count,
                   "height": data.shape[1], "width": data.shape[2], "crs": ds.crs,
                   "nodata": ds.nodata, "compress": "deflate",
                   "transform": ds.transform @ Affine.translation(0, rows[0] if rows else 0)}
        with rasterio.open(target, "w", **profile) as out:
            out.write(data)
            out.set_band_description(1, ds.descriptions[0] or "")
    return target


def item(name, assets, collection=None):
    """A STAC item ``name`` holding ``assets`` (key -> href)."""
    import pystac

    found = pystac.Item(name, None, None, WHEN, {}, collection=collection)
    for key, href in assets.items():
        found.add_asset(key, pystac.Asset(href, media_type=pystac.MediaType.COG))
    return found


def write_collection(path, items):
    """An ItemCollection of ``items`` saved (by pystac) at ``path``."""
    import pystac

    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    pystac.ItemCollection(items).save_object(str(path))
    return str(path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("stac") / "scene")
    make_scene(SceneConfig(folder, HEIGHT, WIDTH, seed=5, nodata_box=CLOUD))
    return folder


@pytest.fixture(scope="module")
def cogs(scene):
    """Band -> the band as a COG, beside the scene folder."""
    root = os.path.join(os.path.dirname(scene), "cogs")
    return {b: write_cog(os.path.join(scene, f"{b}.tif"), os.path.join(root, f"{b}.tif"))
            for b in ALL_BANDS}


def map_scene(model, scene_path, out, *extra):
    """``predict_map`` on ``scene_path``: ``(exit status, (map values,
    transform, CRS), summary counts)``."""
    import rasterio

    from pipelines import predict_map

    rc = predict_map.main(["--scene_path", str(scene_path), "--exported_model_dir", model,
                           "--output_path", str(out), "--stride", str(STRIDE), "--edge_mode",
                           "pad", *extra])
    if rc:
        return rc, None, None
    with rasterio.open(str(out)) as ds:
        values = (ds.read(1).tobytes(), tuple(ds.transform), ds.crs.to_string())
    summary = json.load(open(str(out)[:-len(".tif")] + ".summary.json"))
    return rc, values, {k: summary[k] for k in ("predicted", "nodata", "rows", "columns")}


@pytest.fixture(scope="module")
def folder_map(scene, reference_model, tmp_path_factory):
    """The folder scene's map: ``(values, summary)``."""
    rc, values, summary = map_scene(reference_model, scene,
                                    tmp_path_factory.mktemp("maps") / "folder.tif")
    assert rc == 0 and summary["predicted"] and sum(summary["nodata"].values())
    return values, summary


def test_an_item_collection_of_cogs_maps_as_the_folder_bit_for_bit(folder_map, cogs, tmp_path,
                                                                   reference_model):
    images = {b: cogs[b] for b in ALL_BANDS[:-2]}
    aux = {b: cogs[b] for b in ALL_BANDS[-2:]}  # items hold only some bands
    path = write_collection(tmp_path / "stac" / "scene.json",
                            [item("images", images), item("aux", aux)])
    rc, values, summary = map_scene(reference_model, path, tmp_path / "maps" / "map.tif")
    assert rc == 0 and (values, summary) == folder_map


def test_a_band_split_over_two_items_maps_without_a_seam(folder_map, scene, cogs, tmp_path,
                                                         reference_model):
    halves = [write_cog(os.path.join(scene, "sentinel_2_B4.tif"),
                        str(tmp_path / "halves" / f"{name}.tif"), rows)
              for name, rows in (("north", (0, HEIGHT // 2)), ("south", (HEIGHT // 2, HEIGHT)))]
    rest = {b: cogs[b] for b in ALL_BANDS if b != "sentinel_2_B4"}
    path = write_collection(tmp_path / "split.json", [
        item("north", {**rest, "sentinel_2_B4": halves[0]}),
        item("south", {"sentinel_2_B4": halves[1]})])
    assert stac.stac_band_files(path, None)["sentinel_2_B4"] == halves
    rc, values, summary = map_scene(reference_model, path, tmp_path / "maps" / "map.tif")
    assert rc == 0 and (values, summary) == folder_map


def write_catalog(root, cogs, bands_at_root=()):
    """A self-contained Catalog at ``root/catalog.json`` (relative links and
    asset hrefs) with a child Collection: one item for ``bands_at_root``
    under the catalog itself, one item per other band under the child."""
    import pystac

    catalog = pystac.Catalog("scene", "a scene as a catalog")
    extent = pystac.Extent(pystac.SpatialExtent([[-180, -90, 180, 90]]),
                           pystac.TemporalExtent([[WHEN, None]]))
    child = pystac.Collection("bands", "the other bands", extent)
    catalog.add_child(child)
    if bands_at_root:
        catalog.add_item(item("root", {b: cogs[b] for b in bands_at_root}))
    for band in ALL_BANDS:
        if band not in bands_at_root:
            child.add_item(item(band, {band: cogs[band]}))
    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return os.path.join(str(root), "catalog.json")


def test_a_catalog_with_relative_hrefs_maps_as_the_folder(folder_map, cogs, tmp_path,
                                                          monkeypatch, reference_model):
    path = write_catalog(tmp_path / "catalog", cogs)
    some_item = json.load(open(os.path.join(os.path.dirname(path), "bands", "smap_sm",
                                            "smap_sm.json")))
    assert some_item["assets"]["smap_sm"]["href"].startswith("../")  # relative, as saved
    monkeypatch.chdir(tmp_path)  # the hrefs resolve against the files, not here
    rc, values, summary = map_scene(reference_model, os.path.relpath(path),
                                    tmp_path / "maps" / "map.tif")
    assert rc == 0 and (values, summary) == folder_map


def test_a_shipped_band_map_names_earth_search_assets(folder_map, cogs, tmp_path,
                                                      reference_model):
    assert stac.read_band_map("earth-search-sentinel-2-l2a") == {
        key: band for band, key in EARTH_SEARCH.items()}
    assets = {EARTH_SEARCH.get(b, b): href for b, href in cogs.items()}
    path = write_collection(tmp_path / "earth_search.json", [item("s2", assets)])
    with pytest.raises(SceneError, match="sentinel_2_B4.*red.*--band_map"):
        stac.stac_band_files(path, None)  # without the map these assets name no band
    found = stac.stac_band_files(path, stac.read_band_map("earth-search-sentinel-2-l2a"))
    assert found == {b: [cogs[b]] for b in ALL_BANDS}
    rc, values, summary = map_scene(reference_model, path, tmp_path / "maps" / "map.tif",
                                    "--band_map", "earth-search-sentinel-2-l2a")
    assert rc == 0 and (values, summary) == folder_map


def test_every_shipped_band_map_names_bands_of_the_model():
    maps = {name: stac.read_band_map(name) for name in stac.shipped_band_maps()}
    assert set(maps) == {"earth-search-sentinel-2-l2a", "planetary-computer-sentinel-2-l2a",
                         "planetary-computer-sentinel-1-rtc"}
    assert maps["planetary-computer-sentinel-2-l2a"] == {
        "B04": "sentinel_2_B4", "B03": "sentinel_2_B3", "B02": "sentinel_2_B2",
        "B08": "sentinel_2_B8", "B11": "sentinel_2_B11", "B12": "sentinel_2_B12"}
    assert maps["planetary-computer-sentinel-1-rtc"] == {"vv": "sentinel_1_VV",
                                                         "vh": "sentinel_1_VH"}
    both = stac.read_band_map("planetary-computer-sentinel-1-rtc,"
                              "planetary-computer-sentinel-2-l2a")
    assert both == {**maps["planetary-computer-sentinel-1-rtc"],
                    **maps["planetary-computer-sentinel-2-l2a"]}


def test_the_wheel_ships_the_band_maps(project_wheel):
    names = set(zipfile.ZipFile(project_wheel).namelist())
    assert {f"transforms/mapping/scene/band_maps/{n}.json" for n in stac.shipped_band_maps()} \
        <= names


# the mosaic order and hrefs, without a map

def test_a_bands_files_keep_the_item_order(cogs, tmp_path):
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    rest = {band: cogs[band] for band in ALL_BANDS if band != "sentinel_2_B4"}
    forward = write_collection(tmp_path / "f.json", [item("a", {**rest, "sentinel_2_B4": a}),
                                                     item("b", {"sentinel_2_B4": b})])
    backward = write_collection(tmp_path / "b.json", [item("b", {"sentinel_2_B4": b}),
                                                      item("a", {**rest, "sentinel_2_B4": a})])
    assert stac.stac_band_files(forward, None)["sentinel_2_B4"] == [a, b]
    assert stac.stac_band_files(backward, None)["sentinel_2_B4"] == [b, a]
    # a Catalog: its own items first, then each child's (pystac's traversal)
    path = write_catalog(tmp_path / "catalog", cogs, bands_at_root=("sentinel_2_B4",))
    with open(os.path.join(os.path.dirname(path), "bands", "sentinel_1_VV",
                           "sentinel_1_VV.json")) as f:
        child_item = json.load(f)
    child_item["assets"]["sentinel_2_B4"] = {"href": b}
    with open(os.path.join(os.path.dirname(path), "bands", "sentinel_1_VV",
                           "sentinel_1_VV.json"), "w") as f:
        json.dump(child_item, f)
    assert stac.stac_band_files(path, None)["sentinel_2_B4"] == [cogs["sentinel_2_B4"], b]


def test_relative_hrefs_resolve_against_the_file(tmp_path, monkeypatch):
    here = tmp_path / "scenes" / "s1"
    write_collection(here / "scene.json", [item("x", {b: f"../cogs/{b}.tif" for b in ALL_BANDS})])
    monkeypatch.chdir(tmp_path / "scenes")
    found = stac.stac_band_files(os.path.join("s1", "scene.json"), None)
    assert found == {b: [str(tmp_path / "scenes" / "cogs" / f"{b}.tif")] for b in ALL_BANDS}
    assert stac.stac_files("s1/scene.json")[0] == str(here / "scene.json")


def test_a_gs_item_collection_is_read_through_filesystems(tmp_path, monkeypatch):
    from apache_beam.io.filesystems import FileSystems

    collection = {"type": "FeatureCollection", "features": [
        item("x", {b: f"../cogs/{b}.tif" for b in ALL_BANDS}).to_dict(include_self_link=False)]}
    stored = {"gs://bucket/scenes/s1/scene.json": json.dumps(collection).encode()}
    opened = []

    def fake_open(path, *args, **kwargs):
        opened.append(path)
        return io.BytesIO(stored[path])

    monkeypatch.setattr(FileSystems, "open", fake_open)
    found = stac.stac_band_files("gs://bucket/scenes/s1/scene.json", None)
    assert opened == ["gs://bucket/scenes/s1/scene.json"]
    assert found == {b: [f"gs://bucket/scenes/cogs/{b}.tif"] for b in ALL_BANDS}


# bad input: one line, the right exit status, nothing under the output name

def _json(tmp_path, content, name="scene.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _collection(tmp_path, cogs, **assets):
    return write_collection(tmp_path / "scene.json", [item("x", {**{b: cogs[b] for b in ALL_BANDS},
                                                                **assets})])


BAD = {  # name -> (builder(tmp_path, cogs) -> argv, exit status, words of the line)
    "not JSON": (lambda t, c: ["--scene_path", _json(t, "{not json")], 1,
                 ["scene.json is not JSON"]),
    "a JSON list": (lambda t, c: ["--scene_path", _json(t, [1])], 1,
                    ["not a STAC ItemCollection or Catalog", "list"]),
    "a single Item": (lambda t, c: ["--scene_path", _json(t, item(
        "x", {}).to_dict(include_self_link=False))], 1, ["not a STAC ItemCollection or Catalog",
                                                         "Item"]),
    "no items": (lambda t, c: ["--scene_path", _json(t, {"type": "FeatureCollection",
                                                         "features": []})], 1,
                 ["holds no STAC item"]),
    "a band no item has": (lambda t, c: ["--scene_path", write_collection(
        t / "scene.json", [item("x", {EARTH_SEARCH.get(b, b): h for b, h in c.items()})])], 1,
        ["no item has an asset of the bands sentinel_2_B4", "blue, gldas_sm", "--band_map",
         "earth-search-sentinel-2-l2a"]),
    "two assets of one band": (lambda t, c: ["--scene_path", _collection(
        t, c, B04=c["sentinel_2_B3"]), "--band_map", "planetary-computer-sentinel-2-l2a"], 1,
        ["item x has two assets of band sentinel_2_B4", "B04"]),
    "a STAC file that is missing": (lambda t, c: ["--scene_path", str(t / "none.json")], 2,
                                    ["none.json"]),
    "a band map naming no band": (lambda t, c: ["--scene_path", _collection(t, c), "--band_map",
                                                _json(t, {"vv": "sentinel_1_XX"}, "m.json")], 2,
                                  ["--band_map", "m.json", "'vv'", "sentinel_1_XX"]),
    "a band map that is no object": (lambda t, c: ["--scene_path", _collection(t, c),
                                                   "--band_map", _json(t, ["vv"], "m.json")], 2,
                                     ["--band_map", "m.json", "object"]),
    "a band map that cannot be read": (lambda t, c: ["--scene_path", _collection(t, c),
                                                     "--band_map", str(t / "none.json")], 2,
                                       ["--band_map", "none.json", "cannot be read"]),
    "a band map not shipped": (lambda t, c: ["--scene_path", _collection(t, c), "--band_map",
                                             "earth-search"], 2,
                               ["'earth-search'", "earth-search-sentinel-2-l2a"]),
    "a band map with a folder": (lambda t, c: ["--scene_path", os.path.dirname(
        c["smap_sm"]), "--band_map", "earth-search-sentinel-2-l2a"], 2, ["--band_map", "folder"]),
    "scene and search": (lambda t, c: ["--scene_path", _collection(t, c), "--stac_api",
                                       "http://127.0.0.1:9/"], 2,
                         ["--scene_path and --stac_api"]),
    "search flags without a search": (lambda t, c: ["--scene_path", _collection(t, c),
                                                    "--collections", "a"], 2,
                                      ["--collections belong with --stac_api"]),
    "a search without a bbox": (lambda t, c: ["--stac_api", "http://127.0.0.1:9/",
                                              "--collections", "a"], 2, ["needs --bbox"]),
    "a bbox of three numbers": (lambda t, c: ["--stac_api", "http://127.0.0.1:9/",
                                              "--collections", "a", "--bbox", "1,2,3"], 2,
                                ["--bbox '1,2,3'", "W,S,E,N"]),
    "a bbox south of itself": (lambda t, c: ["--stac_api", "http://127.0.0.1:9/",
                                             "--collections", "a", "--bbox", "1,50,2,40"], 2,
                               ["--bbox '1,50,2,40'", "S must be below N"]),
    "a datetime that is none": (lambda t, c: ["--stac_api", "http://127.0.0.1:9/",
                                              "--collections", "a", "--bbox", "1,2,3,4",
                                              "--datetime", "2021-13-01"], 2,
                                ["--datetime '2021-13-01'", "month"]),
    "a range ending before it starts": (lambda t, c: [
        "--stac_api", "http://127.0.0.1:9/", "--collections", "a", "--bbox", "1,2,3,4",
        "--datetime", "2021-06-02/2021-06-01"], 2, ["ends before it starts"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_with_its_exit_status(case, cogs, reference_model, tmp_path,
                                                    capfd):
    from pipelines import predict_map

    build, status, words = BAD[case]
    out = tmp_path / "maps" / "map.tif"
    capfd.readouterr()
    rc = predict_map.main([*build(tmp_path, cogs), "--exported_model_dir", reference_model,
                           "--output_path", str(out)])
    lines = [line for line in capfd.readouterr().err.splitlines() if "predict_map: error" in line]
    assert rc == status and len(lines) == 1, (rc, lines)
    assert all(w in lines[0] for w in words), lines[0]
    assert "run again with -v" not in lines[0]  # a refusal, not an unforeseen failure
    assert not (tmp_path / "maps").exists() or not os.listdir(tmp_path / "maps")


def test_an_output_over_an_asset_is_refused(cogs, reference_model, tmp_path, capfd):
    from pipelines import predict_map

    assets = {EARTH_SEARCH.get(b, b): shutil.copy(cogs[b], tmp_path / f"{b}.tif")
              for b in ALL_BANDS}
    path = write_collection(tmp_path / "stac" / "scene.json", [item("x", assets)])
    before = open(assets["red"], "rb").read()
    capfd.readouterr()
    rc = predict_map.main(["--scene_path", path, "--band_map", "earth-search-sentinel-2-l2a",
                           "--exported_model_dir", reference_model, "--output_path",
                           str(assets["red"])])
    lines = [line for line in capfd.readouterr().err.splitlines() if "predict_map: error" in line]
    assert rc == 2 and len(lines) == 1 and "sentinel_2_B4.tif" in lines[0], lines
    assert open(assets["red"], "rb").read() == before


# a STAC API search (a fake API on localhost)

class FakeApi:
    """A STAC API serving ``features`` (item dicts) to every search, on a
    free localhost port; ``searches`` holds each search's body."""

    def __init__(self, features):
        self.features, self.searches = features, []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, content):
                body = json.dumps(content).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                root = f"http://127.0.0.1:{self.server.server_port}"
                self.answer({"type": "Catalog", "id": "fake", "stac_version": "1.0.0",
                             "description": "a fake STAC API", "conformsTo": [
                                 "https://api.stacspec.org/v1.0.0/core",
                                 "https://api.stacspec.org/v1.0.0/item-search"],
                             "links": [{"rel": "self", "href": root + "/"},
                                       {"rel": "root", "href": root + "/"},
                                       {"rel": "search", "href": root + "/search",
                                        "method": "POST", "type": "application/geo+json"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.searches.append(body)
                self.answer({"type": "FeatureCollection", "links": [], "features": [
                    f for f in api.features if f.get("collection") in body["collections"]]})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api(cogs, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    features = [item("images", {b: cogs[b] for b in ALL_BANDS[:-2]}, "scene").to_dict(),
                item("aux", {b: cogs[b] for b in ALL_BANDS[-2:]}, "scene").to_dict(),
                item("elsewhere", {"sentinel_1_VV": cogs["smap_sm"]}, "other").to_dict()]
    found = FakeApi(features)
    yield found
    found.close()


def search(api_url, **flags):
    return SceneSettings(stac_api=api_url, collections=flags.get("collections", "scene"),
                         bbox=flags.get("bbox", "15.0,47.8,15.1,47.9"),
                         datetime=flags.get("datetime", "2021-06-01"))


def test_a_search_is_read_as_the_static_item_collection(api, cogs, tmp_path):
    static = read_scene(write_collection(tmp_path / "scene.json", [
        item("images", {b: cogs[b] for b in ALL_BANDS[:-2]}),
        item("aux", {b: cogs[b] for b in ALL_BANDS[-2:]})]))
    found = search(api.url).open_scene()
    assert (found.bands, found.aux, found.grid) == (static.bands, static.aux, static.grid)
    assert found.path == (f"{api.url} search (collections scene, bbox 15.0,47.8,15.1,47.9, "
                          f"datetime 2021-06-01)")
    assert api.searches[0]["collections"] == ["scene"]
    assert api.searches[0]["bbox"] == [15.0, 47.8, 15.1, 47.9]
    assert api.searches[0]["datetime"] == "2021-06-01T00:00:00Z/2021-06-01T23:59:59Z"


def test_cut_examples_from_a_search_equal_those_from_the_folder(api, scene, tmp_path, capfd):
    import rasterio
    from pyproj import Transformer

    from pipelines import cut_examples

    with rasterio.open(os.path.join(scene, "sentinel_1_VV.tif")) as ds:
        lon, lat = Transformer.from_crs(ds.crs, 4326, always_xy=True).transform(
            *(ds.transform @ (200, 100)))
    points = tmp_path / "points.csv"
    points.write_text(f"sensor_id,lat,lon\nNET__A__X,{lat!r},{lon!r}\n")
    common = ["--points", str(points), "--timestamp", "2021-06-01T10:30:00Z", "--size", "32"]
    assert cut_examples.main(["--scene_path", scene, *common, "--output_dir",
                              str(tmp_path / "folder")]) == 0
    assert cut_examples.main(["--stac_api", api.url, "--collections", "scene", "--bbox",
                              f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}",
                              *common, "--output_dir", str(tmp_path / "search")]) == 0
    shard = "data-00000-of-00001.tfrecord.gz"
    examples = [gzip.open(tmp_path / run / shard).read() for run in ("folder", "search")]
    assert examples[0] and examples[0] == examples[1]


def test_an_unreachable_api_is_one_line_within_seconds(tmp_path, capfd, monkeypatch):
    from pipelines import cut_examples

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    points = tmp_path / "points.csv"
    points.write_text("sensor_id,lat,lon\nNET__A__X,47.85,15.05\n")
    capfd.readouterr()
    started = time.time()
    rc = cut_examples.main(["--stac_api", f"http://127.0.0.1:{port}/", "--collections", "a",
                            "--bbox", "15.0,47.8,15.1,47.9", "--points", str(points),
                            "--timestamp", "2021-06-01T10:30:00Z",
                            "--output_dir", str(tmp_path / "out")])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert rc == 1 and time.time() - started < 10
    assert len(lines) == 1 and lines[0].startswith(
        f"cut_examples: error: the STAC API http://127.0.0.1:{port}/ cannot be searched"), lines
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_an_api_that_does_not_answer_times_out(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(stac, "READ_SECONDS", 1.0)
    raised = []

    def open_scene(url):
        try:
            search(url).open_scene()
        except Exception as e:
            raised.append(e)

    with socket.socket() as s:  # connections are taken, never answered
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        started = time.time()
        thread = threading.Thread(target=open_scene, daemon=True,
                                  args=(f"http://127.0.0.1:{s.getsockname()[1]}/",))
        thread.start()
        thread.join(20)  # without a timeout it would wait for ever
        assert not thread.is_alive() and time.time() - started < 5
    assert isinstance(raised[0], runtime.InputError), raised
    assert "cannot be searched" in str(raised[0]) and "timed out" in str(raised[0]).lower()


def test_a_search_finding_nothing_or_too_much_is_refused(api, monkeypatch):
    with pytest.raises(runtime.InputError, match="search .*collections none.* found no item"):
        search(api.url, collections="none").open_scene()
    monkeypatch.setattr(stac, "MAX_SEARCH_ITEMS", 1)
    with pytest.raises(runtime.InputError, match="finds more than 1 items: narrow --bbox"):
        search(api.url).open_scene()


def test_search_flags_are_checked_before_anything_is_read():
    for flags, words in ((dict(bbox="200,0,201,1"), "-180..180"),
                         (dict(bbox="nan,1,2,3"), "four numbers"),
                         (dict(datetime="../.."), "names no time"),
                         (dict(collections=" , "), "needs --collections")):
        with pytest.raises(runtime.UsageError, match=words):
            search("http://127.0.0.1:9/", **flags).check_scene_flags()
    with pytest.raises(runtime.UsageError, match="no http"):
        SceneSettings(stac_api="ftp://x/", collections="a", bbox="1,2,3,4").check_scene_flags()
    assert stac.parse_bbox("170,-10,-170,10") == (170, -10, -170, 10)  # across the antimeridian
    assert stac.parse_datetime("2021-06-01T10:30:00Z/..") == "2021-06-01T10:30:00Z/.."


# predict_map --stac_api

def test_a_map_of_a_search_equals_the_folders(api, folder_map, reference_model, tmp_path):
    from pipelines import predict_map

    out = tmp_path / "maps" / "map.tif"
    rc = predict_map.main(["--stac_api", api.url, "--collections", "scene",
                           "--bbox=15.0,47.8,15.1,47.9", "--exported_model_dir", reference_model,
                           "--output_path", str(out), "--stride", str(STRIDE), "--edge_mode",
                           "pad"])
    assert rc == 0
    import rasterio

    with rasterio.open(str(out)) as ds:
        values = (ds.read(1).tobytes(), tuple(ds.transform), ds.crs.to_string())
        tags = ds.tags()
    summary = json.load(open(tmp_path / "maps" / "map.summary.json"))
    assert values == folder_map[0]
    assert {k: summary[k] for k in folder_map[1]} == folder_map[1]
    assert summary["scene_path"] == tags["scene"] == (
        f"{api.url} search (collections scene, bbox 15.0,47.8,15.1,47.9)")


def test_predict_map_says_an_unreachable_api_in_one_line(reference_model, tmp_path, capfd,
                                                         monkeypatch):
    from pipelines import predict_map

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    capfd.readouterr()
    started = time.time()
    rc = predict_map.main(["--stac_api", f"http://127.0.0.1:{port}/", "--collections", "a",
                           "--bbox", "15.0,47.8,15.1,47.9", "--exported_model_dir",
                           reference_model, "--output_path", str(tmp_path / "maps" / "m.tif")])
    lines = [line for line in capfd.readouterr().err.splitlines() if "predict_map: error" in line]
    assert rc == 1 and time.time() - started < 10 and len(lines) == 1, lines
    assert f"the STAC API http://127.0.0.1:{port}/ cannot be searched" in lines[0]
    assert not (tmp_path / "maps").exists() or not os.listdir(tmp_path / "maps")


def test_an_api_answering_an_http_error_is_named_by_its_status(monkeypatch):
    """A 404 with an empty body: the line says the status, not a bare
    ``APIError`` and no timeout it did not run into."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(runtime.InputError) as e:
            search(f"http://127.0.0.1:{server.server_port}/").open_scene()
    finally:
        server.shutdown()
        server.server_close()
    assert "answered HTTP 404" in str(e.value) and "timeout" not in str(e.value), str(e.value)


def test_a_catalog_whose_links_form_a_cycle_is_one_line(tmp_path):
    def catalog(ident, child):
        return {"type": "Catalog", "stac_version": "1.0.0", "id": ident, "description": ident,
                "links": [{"rel": "child", "href": child, "type": "application/json"}]}

    (tmp_path / "sub").mkdir()
    (tmp_path / "catalog.json").write_text(json.dumps(catalog("root", "sub/catalog.json")))
    (tmp_path / "sub" / "catalog.json").write_text(json.dumps(catalog("sub", "../catalog.json")))
    with pytest.raises(SceneError, match="child links form a cycle") as e:
        read_scene(str(tmp_path / "catalog.json"))
    assert "\n" not in str(e.value)
