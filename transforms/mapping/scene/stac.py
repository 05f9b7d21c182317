"""A scene from STAC (README: "Scenes from STAC"): each band's files, named by
the assets of a static ItemCollection or Catalog (``.json``, local or
``gs://``) or of the items a STAC API search finds. Only metadata is read.

* **Which asset is which band**: an asset whose key is a band's name
  (``sentinel_1_VV``) is that band, and so is one a band map names
  (``--band_map``: ``{asset key: band}``, a file or a shipped map); other
  assets are ignored. An item with two assets of one band is refused.
* **Mosaic order**: a band's files in item order: an ItemCollection's (a
  search's: the API's), a Catalog's in pystac's traversal order (its own
  items in link order, then each child's, depth first). An item may hold
  only some bands (``sources``: at each point the first file with a value).
* **Hrefs**: a relative one resolves against the file that names it (the
  item's own JSON, else the ItemCollection's); local paths become absolute.

STAC files are read through Beam's ``FileSystems`` (``http(s)://``: urllib)
and parsed by pystac; a search is pystac-client's.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, Iterable, List, Optional, Tuple

import pystac
from pystac.utils import is_absolute_href, make_absolute_href

from transforms.mapping.scene.bands import ALL_BANDS
from transforms.mapping.scene.files import SceneError, read_flag_file, strict_json
from transforms.runtime.errors import UsageError

#: seconds to connect to, and then to hear from, a STAC API or http(s) STAC file
CONNECT_SECONDS, READ_SECONDS = 5.0, 60.0
#: the most items a search may find: a scene, not an archive (narrow the search)
MAX_SEARCH_ITEMS = 500
BAND_MAP_FOLDER = "band_maps"


def _line(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, cut to ``limit`` characters."""
    return " ".join(str(error).split())[:limit] or type(error).__name__


class FileSystemsStacIO(pystac.StacIO):
    """pystac's reads through Beam's ``FileSystems`` (local and ``gs://``;
    ``http(s)://`` through urllib, with a timeout). A failed read or a file
    that is not JSON is a ``SceneError`` naming the file."""

    def read_text(self, source, *args, **kwargs) -> str:
        """The text of ``source`` (an href), as UTF-8."""
        href = str(source)
        try:
            if href.startswith(("http://", "https://")):
                from urllib.request import urlopen

                with urlopen(href, timeout=CONNECT_SECONDS + READ_SECONDS) as f:
                    return f.read().decode("utf-8-sig")
            from apache_beam.io.filesystems import FileSystems

            with FileSystems.open(href, compression_type="uncompressed") as f:
                return f.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SceneError(f"{href} is not JSON (not UTF-8 text)") from None
        except Exception as e:  # FileSystems and urllib wrap every failure in their own errors
            raise SceneError(f"{href} cannot be read: {_line(e)}") from None

    def read_json(self, source, *args, **kwargs):
        """The JSON of ``source``; SceneError naming it when it is not JSON."""
        text = self.read_text(source)
        try:
            return json.loads(text)
        except ValueError as e:
            raise SceneError(f"{source} is not JSON: {_line(e)}") from None

    def write_text(self, dest, txt, *args, **kwargs) -> None:
        """Never called: a scene's STAC is only read."""
        raise NotImplementedError(f"a scene's STAC is only read, not written ({dest})")


def shipped_band_maps() -> List[str]:
    """The names of the band maps shipped with the package (``band_maps/``),
    sorted: ``--band_map earth-search-sentinel-2-l2a``."""
    from importlib import resources

    folder = resources.files(__package__) / BAND_MAP_FOLDER
    return sorted(p.name[:-len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def parse_band_map(where: str, text: str) -> Dict[str, str]:
    """The band map a JSON ``text`` holds.

    Args:
        where: the file or shipped map, for the errors.
        text: its content: ``{asset key: band}``.

    Returns:
        Asset key -> band name.

    Raises:
        UsageError: naming ``where`` (and the key): not JSON, a key given
            twice, not a non-empty object, a value that is no band of the model.
    """
    content = strict_json("--band_map", where, text)
    if not isinstance(content, dict) or not content:
        raise UsageError(f"--band_map {where} must hold an object of asset keys and bands, "
                         f'e.g. {{"vv": "sentinel_1_VV"}}')
    for key, band in content.items():
        if band not in ALL_BANDS:
            raise UsageError(f"--band_map {where}: {key!r} maps to {json.dumps(band)}, no band "
                             f"of the model (the bands: {', '.join(ALL_BANDS)})")
    return dict(content)


def read_band_map(value: str) -> Dict[str, str]:
    """``--band_map``: one or more band maps, comma-separated, merged; each a
    file (local or ``gs://``: a value ending in ``.json`` or holding a
    ``/``) or a shipped map's name (``shipped_band_maps``).

    Args:
        value: the flag's value.

    Returns:
        Asset key -> band name.

    Raises:
        UsageError: naming the map: a name that is no shipped map, a file
            that cannot be read, two maps giving one key different bands,
            or see ``parse_band_map``.
    """
    from importlib import resources

    merged: Dict[str, str] = {}
    for name in (part.strip() for part in value.split(",")):
        if name.lower().endswith(".json") or "/" in name:
            text = read_flag_file("--band_map", name)
        elif name in shipped_band_maps():
            shipped = resources.files(__package__) / BAND_MAP_FOLDER / f"{name}.json"
            text = shipped.read_text("utf-8")
        else:
            raise UsageError(f"--band_map {name!r} is neither a JSON file (.json) nor a shipped "
                             f"band map ({', '.join(shipped_band_maps())})")
        for key, band in parse_band_map(name, text).items():
            if merged.get(key, band) != band:
                raise UsageError(f"--band_map {value}: asset {key!r} is {merged[key]} in one "
                                 f"map and {band} in {name}")
            merged[key] = band
    return merged


def load_items(path: str) -> List[pystac.Item]:
    """The items of the static STAC file ``path``, in mosaic order.

    Raises:
        SceneError: not an ItemCollection or Catalog, malformed, or a
            Catalog whose child links form a cycle, naming ``path``.
    """
    io = FileSystemsStacIO()
    content = io.read_json(path)
    if not isinstance(content, dict):
        raise SceneError(f"{path} is not a STAC ItemCollection or Catalog (its JSON is a "
                         f"{type(content).__name__}, not an object)")
    try:
        if pystac.ItemCollection.is_item_collection(content):
            return list(pystac.ItemCollection.from_dict(content, preserve_dict=False))
        kind = pystac.serialization.identify_stac_object_type(content)
        if kind not in (pystac.STACObjectType.CATALOG, pystac.STACObjectType.COLLECTION):
            named = f"a STAC {kind.value}" if kind else f"type {content.get('type')!r}"
            raise SceneError(f"{path} is not a STAC ItemCollection or Catalog ({named}; "
                             f"a single Item: put it in an ItemCollection)")
        catalog = io.stac_object_from_dict(content, href=path, preserve_dict=False)
        return list(catalog.get_items(recursive=True))
    except SceneError:
        raise
    except RecursionError:  # pystac follows child links for ever round a cycle
        raise SceneError(f"{path}: its catalog's child links form a cycle (a child links back "
                         f"to a catalog above it)") from None
    except Exception as e:  # pystac's KeyError, TypeError, STACError ... on a malformed object
        raise SceneError(f"{path} is not a valid STAC ItemCollection or Catalog: "
                         f"{type(e).__name__}: {_line(e)}") from None


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)  # a URL as it is


def asset_href(item: pystac.Item, key: str, base: Optional[str], where: str) -> str:
    """The absolute href of ``item``'s asset ``key``: a relative one resolved
    against the item's own file, else ``base`` (the ItemCollection's).

    Raises:
        SceneError: a relative href with nothing to resolve it against.
    """
    asset = item.assets[key]
    href = asset.href
    if not is_absolute_href(href):
        own = item.get_self_href()
        start = own if own and is_absolute_href(own) else base
        if start is None:
            raise SceneError(f"{where}: item {item.id}: asset {key} has the relative href "
                             f"{href} and no file to resolve it against")
        href = make_absolute_href(href, start)
    return _absolute(href)


def item_band_files(items: Iterable[pystac.Item], band_map: Optional[Dict[str, str]],
                    where: str, base: Optional[str] = None) -> Dict[str, List[str]]:
    """Each band's asset hrefs over ``items``, in item order (the mosaic order).

    Args:
        items: the items, in mosaic order.
        band_map: asset key -> band (None: assets are bands by their key).
        where: the STAC file or search, for the errors.
        base: the file relative hrefs of items without one of their own
            resolve against (an ItemCollection's), or None.

    Returns:
        Band name -> absolute hrefs, every band of ``bands.ALL_BANDS``, in
        its order.

    Raises:
        SceneError: naming ``where``: no items, an item with two assets of
            one band, a band no item has an asset for (with the asset keys
            the items have, and the ``--band_map`` hint), a relative href
            with nothing to resolve it against.
    """
    band_map, items = band_map or {}, list(items)
    if not items:
        raise SceneError(f"{where} holds no STAC item")
    found: Dict[str, List[str]] = {}
    for item in items:
        seen: Dict[str, str] = {}
        for key in item.assets:
            band = band_map.get(key, key if key in ALL_BANDS else None)
            if band in seen:
                raise SceneError(f"{where}: item {item.id} has two assets of band {band} "
                                 f"({seen[band]} and {key}): which to read cannot be told")
            if band is not None:
                seen[band] = key
                found.setdefault(band, []).append(asset_href(item, key, base, where))
    missing = [b for b in ALL_BANDS if b not in found]
    if missing:
        keys = sorted({key for item in items for key in item.assets})
        shown = ", ".join(keys[:24]) + (f" (+{len(keys) - 24} more)" if len(keys) > 24 else "")
        raise SceneError(
            f"{where}: no item has an asset of the band{'s' * (len(missing) > 1)} "
            f"{', '.join(missing)} (the {len(items)} item{'s' * (len(items) > 1)}' asset keys: "
            f"{shown or 'none'}); an asset is a band by its key (e.g. {ALL_BANDS[0]}) or by "
            f"--band_map FILE.json {{asset key: band}} or a shipped map "
            f"({', '.join(shipped_band_maps())})")
    return {b: found[b] for b in ALL_BANDS}


def stac_band_files(path: str, band_map: Optional[Dict[str, str]]) -> Dict[str, List[str]]:
    """Each band's asset hrefs in the static STAC file ``path``, in mosaic order.

    Args:
        path: a STAC ItemCollection or Catalog (or Collection) JSON file,
            local or ``gs://``.
        band_map: asset key -> band (None: assets are bands by their key).

    Returns:
        Band name -> absolute hrefs (``item_band_files``).

    Raises:
        SceneError: one line naming the file (and item or band): it cannot
            be read, is not JSON, not a STAC ItemCollection or Catalog, holds
            no items, lacks a band; see ``item_band_files``.
    """
    path = _absolute(path)
    return item_band_files(load_items(path), band_map, path, base=path)


def stac_files(path: str) -> List[str]:
    """The static STAC file ``path`` and the hrefs of every asset of its
    items (band or not): what an output must not overwrite.

    Raises:
        SceneError: see ``stac_band_files``.
    """
    path = _absolute(path)
    return [path, *(asset_href(item, key, path, path) for item in load_items(path)
                    for key in item.assets)]


def parse_bbox(text: str) -> Tuple[float, float, float, float]:
    """``--bbox W,S,E,N``: WGS84 degrees (``W > E`` crosses the antimeridian).

    Raises:
        ValueError: the reason (not four finite numbers, out of range,
            ``S >= N``, ``W == E``).
    """
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError("give four numbers W,S,E,N in WGS84 degrees, e.g. 15.0,47.8,15.1,47.9")
    west, south, east, north = values
    if not all(-180 <= v <= 180 for v in (west, east)) or not all(-90 <= v <= 90
                                                                 for v in (south, north)):
        raise ValueError("longitudes are within -180..180 and latitudes within -90..90")
    if south >= north or west == east:
        raise ValueError("S must be below N, and W differ from E")
    return west, south, east, north


def parse_datetime(text: str) -> str:
    """``--datetime``: an RFC 3339 time or date (``2021-06-01``, ``2021-06``,
    ``2021``: the whole day, month, year) or a range ``A/B`` (``..``: open).

    Returns:
        The search's ``datetime`` as pystac-client sends it.

    Raises:
        ValueError: the reason.
    """
    from datetime import datetime

    from pystac_client.item_search import ItemSearch

    advice = "give a time, a date or a range, e.g. 2021-06-01 or 2021-06-01T00:00:00Z/.."
    try:  # no request: the search is only built
        sent = ItemSearch("http://localhost/search", datetime=text).get_parameters()["datetime"]
        parts = sent.split("/")
        if all(part == ".." for part in parts):
            raise ValueError(f"{text!r} names no time")
        times = [datetime.fromisoformat(part.replace("Z", "+00:00").replace("z", "+00:00"))
                 for part in parts if part != ".."]
        if len(times) == 2 and times[0] > times[1]:
            raise ValueError(f"{text!r} ends before it starts")
    except Exception as e:  # pystac-client raises plain Exception on a malformed value
        raise ValueError(f"{_line(e, 120)}; {advice}") from None
    return sent


def search_name(api: str, collections: str, bbox: str, datetime: Optional[str]) -> str:
    """How messages, tags and the summary name a search: the API and query."""
    when = f", datetime {datetime}" if datetime else ""
    return f"{api} search (collections {collections}, bbox {bbox}{when})"


def search_items(api: str, collections: str, bbox: str,
                 datetime: Optional[str]) -> List[pystac.Item]:
    """The items a STAC API search finds, in the API's order.

    Args:
        api: the API's root URL.
        collections: the collections searched, comma-separated.
        bbox: ``W,S,E,N`` (``parse_bbox``).
        datetime: a time or range (``parse_datetime``), or None.

    Returns:
        The items (at most ``MAX_SEARCH_ITEMS``).

    Raises:
        SceneError: naming the API: it cannot be reached within
            ``CONNECT_SECONDS`` (connecting is not retried) or does not
            answer within ``READ_SECONDS``, answers with an error, is no
            STAC API with item search, finds no item or more than
            ``MAX_SEARCH_ITEMS``.
    """
    import warnings

    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    where = search_name(api, collections, bbox, datetime)
    box = parse_bbox(bbox)
    retry = Retry(total=2, connect=0, read=0, backoff_factor=0.5, allowed_methods=None,
                  status_forcelist=(429, 502, 503, 504))
    timeout = (CONNECT_SECONDS, READ_SECONDS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pystac-client's conformance warnings
            # the timeout given to open too: it sets the StacApiIO's (None when not given)
            client = Client.open(api, stac_io=StacApiIO(timeout=timeout, max_retries=retry),
                                 timeout=timeout)
            items = list(client.search(
                collections=[c.strip() for c in collections.split(",")], bbox=box,
                datetime=datetime, max_items=MAX_SEARCH_ITEMS + 1).items())
    except Exception as e:  # requests', pystac-client's and pystac's errors alike
        status = getattr(e, "status_code", None)  # pystac-client's APIError: the HTTP answer
        why = (f"it answered HTTP {status}" + (f": {_line(e)}" if _line(e) else "")
               if status else f"{type(e).__name__}: {_line(e)} (connect timeout "
               f"{CONNECT_SECONDS:g} s, answer {READ_SECONDS:g} s)")
        raise SceneError(f"the STAC API {api} cannot be searched: {why}") from None
    if not items:
        raise SceneError(f"{where} found no item")
    if len(items) > MAX_SEARCH_ITEMS:
        raise SceneError(f"{where} finds more than {MAX_SEARCH_ITEMS} items: narrow --bbox or "
                         f"--datetime")
    return items
