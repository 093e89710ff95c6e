"""Running detection: as-of runs see only the past, re-runs replace, never duplicate."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import END, scenario

from molehunt.detect import DetectionSettings
from molehunt.detect.runner import UnknownDetectorError, run_detectors, write_findings


def _key(findings: list) -> list[tuple[str, tuple[str, ...], int]]:  # type: ignore[type-arg]
    return sorted((f.finding_id, f.event_ids, f.severity) for f in findings)


@pytest.mark.parametrize("as_of", [date(2026, 5, 6), date(2026, 5, 12), date(2026, 5, 20)])
def test_a_run_as_of_a_day_equals_the_full_run_up_to_that_day(as_of: date) -> None:
    s = scenario()
    earlier = run_detectors(s.store, DetectionSettings(), as_of)
    assert _key(earlier.findings) == _key([f for f in s.findings if f.day <= as_of])


def test_re_running_replaces_the_same_findings() -> None:
    s = scenario()
    count = s.store.query("SELECT count(*) AS n FROM findings")[0]["n"]
    report = run_detectors(s.store, DetectionSettings(), END, since=date(2026, 5, 18))
    write_findings(s.store, report)
    assert s.store.query("SELECT count(*) AS n FROM findings")[0]["n"] == count == len(s.findings)


def test_unknown_detector_is_refused() -> None:
    with pytest.raises(UnknownDetectorError, match="no_such"):
        run_detectors(scenario().store, DetectionSettings(), END, names=["no_such"])
