"""Detection and scoring settings: thresholds, weights, working hours, alert threshold.

Every field has a documented default (:data:`DETECTION_SETTINGS_DOC`); the
settings file sets them under ``[detection]``. The model lives in
:mod:`molehunt.config` so that loading the settings never loads the detectors or
Ibis (``molehunt --help`` stays fast); this module is its name for detection code.
"""

from __future__ import annotations

from molehunt.config import (
    DEFAULT_WEIGHTS,
    DETECTION_SETTINGS_DOC,
    DetectionSettings,
    detection_settings,
)

__all__ = ["DEFAULT_WEIGHTS", "DETECTION_SETTINGS_DOC", "DetectionSettings", "detection_settings"]
