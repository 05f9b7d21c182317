"""The map's settings: one frozen object whose fields are the command's flags
(the scene's flags, shared with ``cut_examples``: ``SceneSettings``)."""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from apache_beam.options.pipeline_options import PipelineOptions

from model_runner.settings import ModelSettings
from transforms import runtime
from transforms.dataset.model_interface import MODEL_INFO_NAME
from transforms.mapping.scene import (ALL_BANDS, DEFAULT_GRID_LIKE, RESAMPLINGS, Scene,
                                      SceneError, is_stac, read_encoding, read_scene)
from transforms.mapping.scene.times import is_glob
from transforms.mapping.tiles import EDGE_MODES
from transforms.runtime.settings import values_for


#: scene pixels a side a tile covers by default (its region adds the windows'
#: halo): ~40 MB of int16 bands a tile held while its windows are fed
TILE_SCENE_PIXELS = 1024


def default_tile_size(stride: int) -> int:
    """Map pixels per tile side when ``--tile_size`` is not given: tiles of
    about ``TILE_SCENE_PIXELS`` scene pixels a side (32 at stride 32)."""
    return max(1, TILE_SCENE_PIXELS // stride)


def add_scene_arguments(parser) -> None:
    """The scene's flags (``SceneSettings``' fields but ``scene_path``) on an
    argparse ``parser``."""
    parser.add_argument("--grid_like", default=DEFAULT_GRID_LIKE,
                        help="the map's grid: that of this band (held in one file) or of this "
                             "GeoTIFF; bands on other grids are resampled onto it (default "
                             f"{DEFAULT_GRID_LIKE})")
    parser.add_argument("--encoding", default=None,
                        help="JSON file: per band {\"scale\", \"offset\", \"min\", \"max\"}; "
                             "the dataset integer is clip(floor(value * scale + offset + 0.5), "
                             "min, max) (bands in their own units, floats; README: the "
                             "encoding file)")
    parser.add_argument("--resampling", choices=RESAMPLINGS, default="nearest",
                        help="how bands not on the map's grid reach it: nearest (the source "
                             "pixel holding each pixel's centre, exactly) or bilinear")
    parser.add_argument("--band_map", default=None,
                        help="STAC scenes: which asset is which band, a JSON file "
                             "{\"asset key\": \"band\"} or a shipped map's name "
                             "(earth-search-sentinel-2-l2a, planetary-computer-sentinel-2-l2a, "
                             "planetary-computer-sentinel-1-rtc), several comma-separated; an "
                             "asset the map does not name is the band its key names, if any")
    parser.add_argument("--stac_api", default=None,
                        help="a STAC API URL to search instead of --scene_path: the items "
                             "found (--collections, --bbox, --datetime) are the scene, "
                             "mosaicked in the API's order")
    parser.add_argument("--collections", default=None,
                        help="the collections --stac_api searches, comma-separated (it "
                             "needs them)")
    parser.add_argument("--bbox", default=None,
                        help="the area --stac_api searches (it needs one): W,S,E,N in WGS84 "
                             "degrees (write --bbox=-10,... when W is negative)")
    parser.add_argument("--datetime", default=None,
                        help="the time --stac_api searches: a time, a date or a range A/B "
                             "(.. for an open end), e.g. 2021-06-01/2021-06-03")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SceneSettings:
    """Where a scene is and how its bands reach the map's grid.

    Attributes:
        scene_path: the scene folder (GeoTIFFs and band folders; see
            ``scene``), or a STAC ItemCollection or Catalog (``.json``); None
            with ``stac_api``.
        grid_like: a band held in one file, or a GeoTIFF: the map's grid.
        encoding: a JSON file of band encodings (``scene.read_encoding``),
            or None: every band holds the dataset's integers.
        resampling: ``nearest`` or ``bilinear``, for bands not on the grid.
        band_map: STAC asset keys -> bands: JSON files or shipped maps'
            names, comma-separated (``scene.stac.read_band_map``), or None.
        stac_api: a STAC API URL whose search is the scene (instead of
            ``scene_path``), or None.
        collections: the search's collections, comma-separated.
        bbox: the search's ``W,S,E,N`` (WGS84 degrees).
        datetime: the search's time or range, or None.
    """

    scene_path: Optional[str] = None
    grid_like: str = DEFAULT_GRID_LIKE
    encoding: Optional[str] = None
    resampling: str = "nearest"
    band_map: Optional[str] = None
    stac_api: Optional[str] = None
    collections: Optional[str] = None
    bbox: Optional[str] = None
    datetime: Optional[str] = None

    @property
    def scene_name(self) -> str:
        """The scene as messages, the map's tags and summary name it:
        ``scene_path``, or the search (``scene.stac.search_name``)."""
        if not self.stac_api:
            return self.scene_path or ""
        from transforms.mapping.scene.stac import search_name

        return search_name(self.stac_api, self.collections, self.bbox, self.datetime)

    def check_scene_flags(self) -> None:
        """The scene's flags alone, before anything is read.

        Raises:
            UsageError: a resampling not offered, a ``--grid_like`` that is
                neither a band nor a GeoTIFF (``.tif``) that exists; see
                ``check_stac_flags``.
        """
        self.check_stac_flags()
        if self.resampling not in RESAMPLINGS:
            raise runtime.UsageError(f"--resampling is one of {', '.join(RESAMPLINGS)}, not "
                                     f"{self.resampling!r}")
        like = self.grid_like
        if like not in ALL_BANDS and not (like.lower().endswith((".tif", ".tiff")) and (
                "://" in like or os.path.isfile(like))):
            raise runtime.UsageError(f"--grid_like {like!r} is neither a band of the model "
                                     f"(e.g. {DEFAULT_GRID_LIKE}) nor a GeoTIFF (.tif) that "
                                     f"exists")

    def check_stac_flags(self) -> None:
        """The STAC flags, before anything is read.

        Raises:
            UsageError: both or neither of ``--scene_path`` and
                ``--stac_api``; a search flag without ``--stac_api``; an API
                that is no http(s) URL; ``--collections`` or ``--bbox``
                missing with it; a malformed ``--bbox`` or ``--datetime``;
                ``--band_map`` with a scene folder.
        """
        if self.scene_path and self.stac_api:
            raise runtime.UsageError("--scene_path and --stac_api: give one, a scene (a folder "
                                     "or STAC .json) or a STAC API search")
        if not self.scene_path and not self.stac_api:
            raise runtime.UsageError("--scene_path required (a scene folder or STAC .json; or "
                                     "--stac_api, a STAC API search)")
        search = [f"--{f}" for f in ("collections", "bbox", "datetime") if getattr(self, f)]
        if self.scene_path:
            if search:
                raise runtime.UsageError(f"{' and '.join(search)} belong with --stac_api (a "
                                         f"search), not with --scene_path")
            if self.band_map and not is_stac(self.scene_path):
                raise runtime.UsageError(f"--band_map names STAC assets: --scene_path "
                                         f"{self.scene_path} is a folder, not a STAC .json")
            return
        from transforms.mapping.scene import stac

        if not self.stac_api.startswith(("http://", "https://")):
            raise runtime.UsageError(f"--stac_api {self.stac_api} is no http(s) URL")
        named = [c for c in (self.collections or "").split(",") if c.strip()]
        missing = ([] if named else ["--collections"]) + ([] if self.bbox else ["--bbox"])
        if missing:
            raise runtime.UsageError(f"--stac_api needs {' and '.join(missing)} (e.g. "
                                     f"--collections sentinel-2-l2a --bbox=15.0,47.8,15.1,47.9)")
        for flag, parse in (("bbox", stac.parse_bbox), ("datetime", stac.parse_datetime)):
            if getattr(self, flag) is not None:
                try:
                    parse(getattr(self, flag))
                except ValueError as e:
                    raise runtime.UsageError(f"--{flag} {getattr(self, flag)!r}: {e}") from None

    def open_scene(self, raw: bool = False) -> Scene:
        """The scene, its encoding and band map files read first (and a
        ``stac_api``'s search run).

        Args:
            raw: read every band's own values, no encoding (``read_scene``).

        Returns:
            ``scene.read_scene``'s scene.

        Raises:
            UsageError: ``check_scene_flags``' errors; an encoding or band
                map file that cannot be read or is wrong
                (``scene.read_encoding``, ``scene.stac.read_band_map``).
            InputError: a scene that cannot be mapped (``scene.SceneError``),
                naming the file or band; a search that fails (an API not
                reached within seconds, no item found).
        """
        self.check_scene_flags()
        encoding = read_encoding(self.encoding) if self.encoding and not raw else None
        band_map = None
        if self.band_map:
            from transforms.mapping.scene.stac import read_band_map

            band_map = read_band_map(self.band_map)
        try:
            items = None
            if self.stac_api:
                from transforms.mapping.scene.stac import search_items

                items = search_items(self.stac_api, self.collections, self.bbox, self.datetime)
            return read_scene(self.scene_name, self.grid_like, encoding, self.resampling,
                              band_map=band_map, raw=raw, items=items)
        except SceneError as e:
            raise runtime.InputError(str(e)) from e


@dataclasses.dataclass(frozen=True, kw_only=True)
class MapConfig(ModelSettings, SceneSettings):
    """Everything ``predict_map`` does differently from run to run (the
    model's settings are ``ModelSettings``', the scene's ``SceneSettings``';
    ``batch_size`` and
    ``tensorflow_threads`` settled by ``ModelSettings.settled_defaults``).

    Attributes:
        output_path: the map, a Cloud-Optimized GeoTIFF (``.tif``; its
            quicklook and ``summary.json`` are written beside it); a cube
            through time (``.zarr``); or a folder (ending ``/``, or one
            that exists) of one COG per scene's time.
        append: add the scenes' times to the existing cube ``output_path``.
        stride: scene pixels per map pixel (even; 32 = 320 m at 10 m pixels).
        edge_mode: ``nan``: a window reaching outside the scene is a NaN
            pixel; ``pad``: the outside is zeros, as the model's own crop-or-pad.
        tile_size: map pixels per tile side (a tile is one Beam element);
            None: ``default_tile_size(stride)`` (``tile_side``).
        progress_seconds: how often each local worker logs the windows it
            has predicted (0: never).
    """

    output_path: str
    append: bool = False
    stride: int = 32
    edge_mode: str = "nan"
    tile_size: Optional[int] = None
    progress_seconds: float = 10.0

    @classmethod
    def from_options(cls, options: PipelineOptions) -> "MapConfig":
        """The settings of a parsed command line, the batch size settled.

        Raises:
            UsageError: a required flag missing, a scene flag wrong
                (``check_scene_flags``), a stride that is not a
                positive even number, an odd image size (windows are
                centred on a scene pixel corner), an ``--image_size`` that
                conflicts with the model's recorded one, an edge mode not
                offered, an output that is not a ``.tif``.
            InputError: the model's record of its image size is unreadable,
                or odd.
        """
        values = values_for(cls, options, **cls.settled_defaults(options))
        missing = [f"--{n}" for n in ("scene_path", "exported_model_dir", "output_path")
                   if not values[n] and not (n == "scene_path" and values["stac_api"])]
        if missing:
            raise runtime.UsageError(f"{' and '.join(missing)} required")
        config = cls(**values)
        config.check_scene_flags()
        if config.stride <= 0 or config.stride % 2:
            raise runtime.UsageError(f"--stride must be a positive even number, not "
                                     f"{config.stride}")
        if config.image_size % 2:
            why = "each window is centred on a scene pixel corner"
            if options.get_all_options().get("image_size") is None:  # the model's record
                raise runtime.InputError(
                    f"the model {config.exported_model_dir} records image_size "
                    f"{config.image_size} ({MODEL_INFO_NAME}): a map needs an even size ({why})")
            raise runtime.UsageError(
                f"--image_size must be even for a map, not {config.image_size}: {why}")
        if config.tile_size is not None and config.tile_size <= 0:
            raise runtime.UsageError(f"--tile_size must be 1 or more, not {config.tile_size}")
        if config.edge_mode not in EDGE_MODES:
            raise runtime.UsageError(f"--edge_mode is one of {', '.join(EDGE_MODES)}")
        kind = config.output_kind
        if kind is None:
            raise runtime.UsageError(f"--output_path {config.output_path}: a map is a GeoTIFF "
                                     f"(.tif), a cube through time a Zarr store (.zarr), a "
                                     f"folder of maps ends with /")
        if kind == "map" and config.scene_path and is_glob(config.scene_path):
            raise runtime.UsageError(f"--scene_path {config.scene_path} names several scenes: "
                                     f"write a cube (--output_path cube.zarr) or a folder of "
                                     f"maps (--output_path maps/)")
        if config.append and kind != "cube":
            raise runtime.UsageError("--append adds times to a cube: --output_path ends .zarr")
        return config

    @property
    def output_kind(self) -> Optional[str]:
        """``map`` (a ``.tif``), ``cube`` (a ``.zarr``), ``maps`` (a folder:
        ending ``/`` or existing), or None (none of these)."""
        out = self.output_path
        if out.lower().endswith((".tif", ".tiff")):
            return "map"
        if out.rstrip("/").lower().endswith(".zarr"):
            return "cube"
        if out.endswith("/") or ("://" not in out and os.path.isdir(out)):
            return "maps"
        return None

    @property
    def tile_side(self) -> int:
        """Map pixels per tile side: ``tile_size``, else the default for the stride."""
        return self.tile_size or default_tile_size(self.stride)
