"""How the web shows the service's answers: the one place times are put in the
configured zone. :func:`shown` turns :mod:`molehunt.models` objects (and the dicts,
lists and tuples inside them) into plain JSON-able data for the API's models and the
page templates: every ``datetime`` in ISO form in ``zone``, every ``date`` as
``YYYY-MM-DD``, tuples as lists, and the field ``as_`` as ``as``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import Any


def shown(value: Any, zone: tzinfo) -> Any:
    """``value`` as the web shows it (see the module docstring)."""
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name.rstrip("_"): shown(getattr(value, f.name), zone)
            for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(k): shown(v, zone) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shown(v, zone) for v in value]
    return value


def shown_dict(value: Any, zone: tzinfo) -> dict[str, Any]:
    """:func:`shown` of a dataclass or mapping: a dict."""
    out = shown(value, zone)
    assert isinstance(out, dict)
    return out
