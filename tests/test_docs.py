"""The README documents every verb, setting and input kind (as Datasette's tests do)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command

from molehunt.cli import app
from molehunt.config import SETTINGS_DOC, Settings
from molehunt.detect import DETECTORS
from molehunt.detect.settings import DETECTION_SETTINGS_DOC, DetectionSettings
from molehunt.ingest import all_kinds

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _verbs() -> list[str]:
    command = get_command(app)
    return sorted(getattr(command, "commands", {}))


@pytest.mark.parametrize("verb", _verbs())
def test_every_verb_is_in_the_readme(verb: str) -> None:
    assert f"molehunt {verb}" in README


@pytest.mark.parametrize("setting", sorted(set(Settings.model_fields) - {"detection"}))
def test_every_setting_is_documented(setting: str) -> None:
    assert setting in SETTINGS_DOC
    assert f"`MOLEHUNT_{setting.upper()}`" in README


@pytest.mark.parametrize("setting", sorted(DetectionSettings.model_fields))
def test_every_detection_setting_is_documented(setting: str) -> None:
    assert setting in DETECTION_SETTINGS_DOC
    assert f"| `{setting}` |" in README


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_every_detector_is_explained_in_the_readme(detector: str) -> None:
    assert f"`{detector}`" in README


@pytest.mark.parametrize("kind", sorted(all_kinds()))
def test_every_input_kind_is_in_the_readme(kind: str) -> None:
    assert f"`{kind}`" in README
