"""Windows conformance: the same events from other agents give the same rows.

``windows/nxlog-security.jsonl`` is written in NXLog's ``im_msvistalog`` +
``to_json()`` layout; its expected rows (``.expected.json``) are the event's own
EventData values (see README.md). The same events re-wrapped in Winlogbeat's
nested layout must give the very same rows.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from molehunt.ingest.runner import detect_kind
from molehunt.ingest.winlog_flat import WinlogFlatParser
from molehunt.ingest.winlog_ndjson import WinlogNdjsonParser

HERE = Path(__file__).parent / "windows"
SAMPLE = HERE / "nxlog-security.jsonl"
# NXLog header fields; everything else on the line is EventData.
HEADER = {
    "EventTime", "EventReceivedTime", "Hostname", "EventID", "Channel", "SourceName", "Keywords",
    "EventType", "SeverityValue", "Severity", "ProviderGuid", "Version", "Task", "OpcodeValue",
    "RecordNumber", "ProcessID", "ThreadID", "Category", "Opcode", "SourceModuleName",
    "SourceModuleType",
}  # fmt: skip


def rows(table: Any) -> list[dict[str, Any]]:
    out = []
    for row in table.to_pylist():
        row = {k: v for k, v in row.items() if k not in ("event_id", "source_id", "kind")}
        row["time"] = row["time"].isoformat()
        out.append(row)
    return out


def test_nxlog_flat_json_gives_the_events_own_values() -> None:
    result = WinlogFlatParser(timezone="Asia/Shanghai").parse(
        SAMPLE.read_bytes(), base_offset=0, source_id="c", path=str(SAMPLE)
    )
    assert result.rejected == []
    expected = json.loads((HERE / "nxlog-security.expected.json").read_text(encoding="utf-8"))
    assert rows(result.tables["events_auth"]) == expected


def as_winlogbeat(doc: dict[str, Any]) -> dict[str, Any]:
    """The same event as Winlogbeat 8 writes it (nested ``winlog``, UTC time)."""
    local = datetime.fromisoformat(doc["EventTime"]).replace(tzinfo=WinlogFlatParser().zone)
    return {
        "@timestamp": local.isoformat(),
        "event": {"code": str(doc["EventID"])},
        "winlog": {
            "channel": doc["Channel"],
            "event_id": str(doc["EventID"]),
            "computer_name": doc["Hostname"],
            "provider_name": doc["SourceName"],
            "record_id": doc["RecordNumber"],
            "event_data": {k: v for k, v in doc.items() if k not in HEADER},
        },
    }


def test_flat_json_and_winlogbeat_layouts_agree_column_for_column() -> None:
    docs = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    nested = "".join(json.dumps(as_winlogbeat(d)) + "\n" for d in docs).encode()
    flat = WinlogFlatParser(timezone="Asia/Shanghai").parse(
        SAMPLE.read_bytes(), base_offset=0, source_id="c", path="a"
    )
    beat = WinlogNdjsonParser().parse(nested, base_offset=0, source_id="c", path="b")
    assert beat.rejected == []
    assert rows(beat.tables["events_auth"]) == rows(flat.tables["events_auth"])


def test_kind_detection_tells_flat_json_from_winlogbeat(tmp_path: Path) -> None:
    assert detect_kind(SAMPLE) == "winlog-flat"
    doc = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    nested = tmp_path / "wlb.ndjson"
    nested.write_text(json.dumps(as_winlogbeat(doc)) + "\n", encoding="utf-8")
    assert detect_kind(nested) == "winlog-ndjson"
