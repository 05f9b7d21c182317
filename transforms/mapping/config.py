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
                                      SceneError, read_encoding, read_scene)
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class SceneSettings:
    """Where a scene is and how its bands reach the map's grid.

    Attributes:
        scene_path: the scene folder (GeoTIFFs and band folders; see
            ``scene``), or a STAC ItemCollection or Catalog (``.json``).
        grid_like: a band held in one file, or a GeoTIFF: the map's grid.
        encoding: a JSON file of band encodings (``scene.read_encoding``),
            or None: every band holds the dataset's integers.
        resampling: ``nearest`` or ``bilinear``, for bands not on the grid.
    """

    scene_path: str
    grid_like: str = DEFAULT_GRID_LIKE
    encoding: Optional[str] = None
    resampling: str = "nearest"

    def check_scene_flags(self) -> None:
        """The scene's flags alone, before anything is read.

        Raises:
            UsageError: a resampling not offered, a ``--grid_like`` that is
                neither a band nor a GeoTIFF (``.tif``) that exists.
        """
        if self.resampling not in RESAMPLINGS:
            raise runtime.UsageError(f"--resampling is one of {', '.join(RESAMPLINGS)}, not "
                                     f"{self.resampling!r}")
        like = self.grid_like
        if like not in ALL_BANDS and not (like.lower().endswith((".tif", ".tiff")) and (
                "://" in like or os.path.isfile(like))):
            raise runtime.UsageError(f"--grid_like {like!r} is neither a band of the model "
                                     f"(e.g. {DEFAULT_GRID_LIKE}) nor a GeoTIFF (.tif) that "
                                     f"exists")

    def open_scene(self) -> Scene:
        """The scene, its encoding file read first.

        Returns:
            ``scene.read_scene``'s scene.

        Raises:
            UsageError: ``check_scene_flags``' errors; an encoding file that
                cannot be read or is wrong (``scene.read_encoding``).
            InputError: a scene that cannot be mapped (``scene.SceneError``),
                naming the file or band.
        """
        self.check_scene_flags()
        encoding = read_encoding(self.encoding) if self.encoding else None
        try:
            return read_scene(self.scene_path, self.grid_like, encoding, self.resampling)
        except SceneError as e:
            raise runtime.InputError(str(e)) from e


@dataclasses.dataclass(frozen=True, kw_only=True)
class MapConfig(ModelSettings, SceneSettings):
    """Everything ``predict_map`` does differently from run to run (the
    model's settings are ``ModelSettings``', the scene's ``SceneSettings``';
    ``batch_size`` and
    ``tensorflow_threads`` settled by ``ModelSettings.settled_defaults``).

    Attributes:
        output_path: the map, a Cloud-Optimized GeoTIFF (``.tif``); its
            quicklook and ``summary.json`` are written beside it.
        stride: scene pixels per map pixel (even; 32 = 320 m at 10 m pixels).
        edge_mode: ``nan``: a window reaching outside the scene is a NaN
            pixel; ``pad``: the outside is zeros, as the model's own crop-or-pad.
        tile_size: map pixels per tile side (a tile is one Beam element);
            None: ``default_tile_size(stride)`` (``tile_side``).
        progress_seconds: how often each local worker logs the windows it
            has predicted (0: never).
    """

    output_path: str
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
                   if not values[n]]
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
        if not config.output_path.lower().endswith((".tif", ".tiff")):
            raise runtime.UsageError(f"--output_path {config.output_path}: the map is a "
                                     f"GeoTIFF, name it .tif")
        return config

    @property
    def tile_side(self) -> int:
        """Map pixels per tile side: ``tile_size``, else the default for the stride."""
        return self.tile_size or default_tile_size(self.stride)
