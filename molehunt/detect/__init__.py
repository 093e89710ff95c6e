"""Detect: one detector per file, each registered by one line below.

Registry key = module name = snake_case of the class without ``Detector``.
"""

from __future__ import annotations

from molehunt.detect.allowed_channel_upload import AllowedChannelUploadDetector
from molehunt.detect.base import DetectContext, Detector, Finding
from molehunt.detect.borrowed_account import BorrowedAccountDetector
from molehunt.detect.bulk_read import BulkReadDetector
from molehunt.detect.canary_access import CanaryAccessDetector
from molehunt.detect.client_file import ClientFileDetector
from molehunt.detect.departed_account import DepartedAccountDetector
from molehunt.detect.departing_person import DepartingPersonDetector
from molehunt.detect.disallowed_category import DisallowedCategoryDetector
from molehunt.detect.file_write import FileWriteDetector
from molehunt.detect.out_of_scope import OutOfScopeDetector
from molehunt.detect.outside_entitlement import OutsideEntitlementDetector
from molehunt.detect.settings import DETECTION_SETTINGS_DOC, DetectionSettings
from molehunt.detect.shared_endpoint import SharedEndpointDetector
from molehunt.detect.sustained_excess import SustainedExcessDetector
from molehunt.detect.unusual_client import UnusualClientDetector
from molehunt.detect.volume_spike import VolumeSpikeDetector

DETECTORS: dict[str, type[Detector]] = {
    "departed_account": DepartedAccountDetector,
    "borrowed_account": BorrowedAccountDetector,
    "outside_entitlement": OutsideEntitlementDetector,
    "unusual_client": UnusualClientDetector,
    "volume_spike": VolumeSpikeDetector,
    "sustained_excess": SustainedExcessDetector,
    "out_of_scope": OutOfScopeDetector,
    "bulk_read": BulkReadDetector,
    "file_write": FileWriteDetector,
    "client_file": ClientFileDetector,
    "allowed_channel_upload": AllowedChannelUploadDetector,
    "departing_person": DepartingPersonDetector,
    "shared_endpoint": SharedEndpointDetector,
    "disallowed_category": DisallowedCategoryDetector,
    "canary_access": CanaryAccessDetector,
}

__all__ = [
    "DETECTION_SETTINGS_DOC",
    "DETECTORS",
    "DetectContext",
    "DetectionSettings",
    "Detector",
    "Finding",
]
