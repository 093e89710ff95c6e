"""PostgreSQL log times in any log_timezone: abbreviations, numeric offsets, IANA names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from molehunt.config import Settings
from molehunt.ingest.postgres import PgCsvlogParser
from molehunt.ingest.postgres.zones import log_zones, offset_minutes, resolve_zone

SESSION = '"alice","crm",5725,"10.20.3.17:35528",6b082656.165d'


def audit(time: str, statement_id: int = 1) -> str:
    return (
        f'{time},{SESSION},3,"SELECT",2026-11-26 12:30:14 UTC,3/4,0,LOG,00000,'
        f'"AUDIT: SESSION,{statement_id},1,READ,SELECT,TABLE,t,SELECT 1,<none>,1"'
        ',,,,,,,,,"psql","client backend",,-59\n'
    )


def times(data: str, **kwargs: Any) -> tuple[list[datetime], list[str]]:
    result = PgCsvlogParser(**kwargs).parse(data.encode(), base_offset=0, source_id="s", path="p")
    events = result.tables["events_db"].to_pylist()
    return [e["time"] for e in events], [r.reason for r in result.rejected]


@pytest.mark.parametrize(
    ("text", "log_timezone", "expected"),
    [
        # China Standard Time, as initdb sets on a Shanghai machine.
        ("2021-02-09 09:51:29.164 CST", "Asia/Shanghai", datetime(2021, 2, 9, 1, 51, 29, 164000)),
        # The same letters in Chicago are US Central (winter: -06:00, summer CDT -05:00).
        (
            "2021-02-09 09:51:29.164 CST",
            "America/Chicago",
            datetime(2021, 2, 9, 15, 51, 29, 164000),
        ),
        (
            "2021-07-09 09:51:29.164 CDT",
            "America/Chicago",
            datetime(2021, 7, 9, 14, 51, 29, 164000),
        ),
        ("2021-02-09 09:51:29.164 CST", "America/Havana", datetime(2021, 2, 9, 14, 51, 29, 164000)),
        ("2021-02-09 09:51:29.164 IST", "Asia/Kolkata", datetime(2021, 2, 9, 4, 21, 29, 164000)),
        ("2021-02-09 09:51:29.164 IST", "Asia/Jerusalem", datetime(2021, 2, 9, 7, 51, 29, 164000)),
        ("2021-07-09 09:51:29.164 IST", "Europe/Dublin", datetime(2021, 7, 9, 8, 51, 29, 164000)),
        # Unambiguous abbreviations are read whatever the configured zone.
        ("2020-03-11 20:40:43 CET", "Asia/Shanghai", datetime(2020, 3, 11, 19, 40, 43)),
        ("2020-07-11 20:40:43.001 CEST", None, datetime(2020, 7, 11, 18, 40, 43, 1000)),
        ("2020-07-11 20:40:43.001 MSK", None, datetime(2020, 7, 11, 17, 40, 43, 1000)),
        ("2020-07-11 20:40:43.001 JST", None, datetime(2020, 7, 11, 11, 40, 43, 1000)),
        ("2020-07-11 20:40:43.001 KST", None, datetime(2020, 7, 11, 11, 40, 43, 1000)),
        ("2020-07-11 20:40:43.001 PDT", None, datetime(2020, 7, 12, 3, 40, 43, 1000)),
        ("2020-01-11 20:40:43.001 EST", None, datetime(2020, 1, 12, 1, 40, 43, 1000)),
        # Moscow was +04:00 from 2011 to 2014: read through the zone at that date.
        ("2012-07-11 20:40:43.001 MSK", "Europe/Moscow", datetime(2012, 7, 11, 16, 40, 43, 1000)),
        ("2020-07-11 20:40:43.001 MSK", "Europe/Moscow", datetime(2020, 7, 11, 17, 40, 43, 1000)),
        # Zones without an abbreviation print a numeric offset.
        ("2020-07-11 20:40:43.001 +08", None, datetime(2020, 7, 11, 12, 40, 43, 1000)),
        ("2020-07-11 20:40:43.001 +0530", None, datetime(2020, 7, 11, 15, 10, 43, 1000)),
        ("2020-07-11 20:40:43 -03", None, datetime(2020, 7, 11, 23, 40, 43)),
        ("2020-07-11 20:40:43.001 Asia/Tokyo", None, datetime(2020, 7, 11, 11, 40, 43, 1000)),
    ],
)
def test_log_time_in_any_zone_is_stored_in_utc(
    text: str, log_timezone: str | None, expected: datetime
) -> None:
    got, rejected = times(audit(text), log_timezone=log_timezone)
    assert rejected == []
    assert got == [expected.replace(tzinfo=UTC)]


def test_a_batch_in_summer_and_winter_time_is_read_whole() -> None:
    # Enough records that the sampled fast path runs; both tokens are read right.
    lines = [
        audit(f"2021-0{1 + 6 * (i % 2)}-09 09:51:29.{i:03d} C{'SD'[i % 2]}T", i) for i in range(200)
    ]
    got, rejected = times("".join(lines), log_timezone="America/Chicago")
    assert rejected == []
    assert got[0] == datetime(2021, 1, 9, 15, 51, 29, tzinfo=UTC)
    assert got[1] == datetime(2021, 7, 9, 14, 51, 29, 1000, tzinfo=UTC)
    assert len(got) == 200


def test_an_ambiguous_abbreviation_outside_the_configured_zone_names_the_setting() -> None:
    got, rejected = times(audit("2021-02-09 09:51:29.164 CST"), log_timezone="Europe/Paris")
    assert got == []
    (reason,) = rejected
    assert "ambiguous time zone CST" in reason
    assert "pg_log_timezone" in reason


def test_an_unknown_zone_text_is_rejected_with_its_text() -> None:
    got, rejected = times(audit("2021-02-09 09:51:29.164 XYZT"))
    assert got == []
    assert rejected == [
        "unknown time zone XYZT (log_timezone): set pg_log_timezone to the server's log_timezone"
    ]


def test_the_parser_made_from_settings_reads_cst_in_the_configured_timezone() -> None:
    shanghai = PgCsvlogParser.from_settings(Settings())  # timezone defaults to Asia/Shanghai
    chicago = PgCsvlogParser.from_settings(Settings(pg_log_timezone="America/Chicago"))
    data = audit("2021-02-09 09:51:29.164 CST").encode()
    for parser, hour in ((shanghai, 1), (chicago, 15)):
        (event,) = (
            parser.parse(data, base_offset=0, source_id="s", path="p")
            .tables["events_db"]
            .to_pylist()
        )
        assert event["time"].hour == hour


def test_zone_table_and_offsets() -> None:
    assert offset_minutes("+08") == 480
    assert offset_minutes("-03:30") == -210
    assert offset_minutes("CST") is None
    assert log_zones("Asia/Shanghai")["CST"] == "+08:00"
    assert log_zones("Europe/Moscow")["MSK"] == "Europe/Moscow"  # changed over the years
    assert resolve_zone("CST", log_zones(None))[2] is not None
    with pytest.raises(ValueError, match="unknown time zone"):
        log_zones("Mars/Olympus")
