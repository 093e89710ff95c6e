"""The contract every registered detector keeps."""

from __future__ import annotations

import re
from datetime import date

import pytest
from insurer import END, scenario

from molehunt.detect import DETECTORS, DetectContext, DetectionSettings
from molehunt.detect.base import SOURCE_FAMILIES
from molehunt.store import Store
from molehunt.store.schema import EVENT_TABLES

NAMES = sorted(DETECTORS)


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def test_registry_has_the_detectors_of_the_issues() -> None:
    # The thirteen of the detection issue, canary access (attribution) and client
    # records in endpoint files (scanner).
    assert len(DETECTORS) == 15


@pytest.mark.parametrize("name", NAMES)
def test_key_module_and_class_names_agree(name: str) -> None:
    cls = DETECTORS[name]
    assert cls.name == name
    assert cls.__module__ == f"molehunt.detect.{name}"
    assert cls.__name__ == f"{_camel(name)}Detector"


@pytest.mark.parametrize("name", NAMES)
def test_detector_says_what_it_finds(name: str) -> None:
    cls = DETECTORS[name]
    first = (cls.__doc__ or "").strip().splitlines()[0]
    assert re.match(r"^[A-Z][^:]+: .+", first), first
    assert 0 < cls.severity <= 100
    assert cls.description
    assert cls.source in SOURCE_FAMILIES


@pytest.mark.parametrize("name", NAMES)
def test_empty_store_gives_nothing(store: Store, name: str) -> None:
    ctx = DetectContext(store.ibis, DetectionSettings(), date(2026, 5, 29))
    assert DETECTORS[name]().find(ctx) == []


@pytest.fixture(scope="module")
def second_pass() -> DetectContext:
    """A context of its own: nothing computed for the first pass is reused."""
    return DetectContext(scenario().store.ibis, DetectionSettings(), END)


@pytest.mark.parametrize("name", NAMES)
def test_output_is_deterministic(second_pass: DetectContext, name: str) -> None:
    s = scenario()
    again = DETECTORS[name]().find(second_pass)
    before = sorted((f.finding_id, f.event_ids, f.severity, f.title) for f in s.of(name))
    assert sorted((f.finding_id, f.event_ids, f.severity, f.title) for f in again) == before


# The shared insurer plants no canary (that would change every ranking built on it):
# canary_access fires in tests/attribute/test_canary.py through the real ingest path.
# The upload detectors measure against the company's upload population, which the
# shared insurer is too small to have: they fire on tests/upload_world.py instead.
ELSEWHERE = ("canary_access", "allowed_channel_upload", "shared_endpoint")


@pytest.mark.parametrize("name", [n for n in NAMES if n not in ELSEWHERE])
def test_every_detector_fires_in_the_scenario(name: str) -> None:
    assert scenario().of(name), f"{name} found nothing in the scenario"


def test_every_finding_cites_events_that_exist() -> None:
    s = scenario()
    union = " UNION ALL ".join(f"SELECT event_id FROM {t}" for t in EVENT_TABLES)
    known = {r["event_id"] for r in s.store.query(union)}
    for f in s.findings:
        assert f.event_ids, f
        assert set(f.event_ids) <= known, f


def test_finding_ids_are_unique() -> None:
    ids = [f.finding_id for f in scenario().findings]
    assert len(ids) == len(set(ids))
