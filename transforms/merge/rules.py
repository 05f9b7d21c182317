"""The released script's ISMN matching rules, as pure functions.

From an example's ``sensor_id`` (``<network>__<station>__<sensor type>``) and
timestamp to one ISMN reading, as ``../shared/reference-notes.md`` states them:

* ``resolve_station`` / ``choose_sensor``: the station and 0.05 m soil
  moisture sensor rules, from the id's parts (the catalog of a download, its
  0.05 m sensors and the +-tolerance window rule are the ground floor's:
  ``transforms.insitu.listing`` and ``transforms.insitu.window``).

Decisions (the reference is silent on them):

* Stations are considered in sorted order (the ``ismn`` package sorts them
  by network and station name); sensors in the catalog's order
  (``transforms.insitu.listing``).
* "Every part occurs in the station name, or in it with ``-`` removed" is
  applied per part.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Tuple

from transforms.insitu.listing import depth_sensors


def station_matches(id_station: str, ismn_station: str) -> bool:
    """Every ``_`` part of ``id_station`` occurs in ``ismn_station`` or in it with ``-`` removed."""
    undashed = ismn_station.replace("-", "")
    return all(p in ismn_station or p in undashed for p in id_station.split("_"))


def resolve_station(id_station: str, candidates: Iterable[str]) -> List[str]:
    """All ISMN stations matching ``id_station``, sorted; the first is the one used."""
    return [s for s in sorted(candidates) if station_matches(id_station, s)]


def _squash(name: str) -> str:
    return "".join(c for c in name.lower() if c.isalnum())


def instrument_matches(id_sensor_type: str, instrument: str) -> bool:
    """The id's sensor type names this instrument: equal, or one contains the
    other, ignoring case and everything but letters and digits."""
    a, b = _squash(id_sensor_type), _squash(instrument)
    return bool(a and b) and (a in b or b in a)


def choose_sensor(sensors: Iterable[str], instruments: Dict[str, str], id_sensor_type: str,
                  match_sensor_type: bool = False) -> Tuple[Optional[str], bool]:
    """``(sensor, type_mismatch)``.

    The released choice (``resolve_sensor``), or with ``match_sensor_type``
    the first candidate whose instrument matches the id's sensor type when
    one does. ``type_mismatch``: the chosen sensor's instrument does not match
    the id's sensor type.
    """
    candidates = depth_sensors(sensors)
    if not candidates:
        return None, False
    same = [s for s in candidates if instrument_matches(id_sensor_type, instruments.get(s, s))]
    chosen = same[0] if match_sensor_type and same else candidates[0]
    return chosen, not instrument_matches(id_sensor_type, instruments.get(chosen, chosen))
