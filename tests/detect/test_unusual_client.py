"""Unusual client: DBeaver on an account that never used a tool fires, once."""

from __future__ import annotations

from datetime import date

from insurer import scenario


def test_dbeaver_on_a_resigned_account_is_flagged_the_first_day() -> None:
    (finding,) = scenario().of("unusual_client", "E001")
    assert finding.day == date(2026, 5, 6)
    assert finding.details["tools"] == ["DBeaver 23.1.0 - Main"]
    assert finding.account == "resigned_agent"


def test_dba_with_psql_every_day_is_not_flagged() -> None:
    assert not scenario().of("unusual_client", "E005")


def test_etl_application_name_is_not_a_tool() -> None:
    assert {f.person_id for f in scenario().of("unusual_client")} == {"E001"}
