"""Unusual client: DBeaver on an account that never used a tool fires, once."""

from __future__ import annotations

from datetime import date

from insurer import scenario

from molehunt.detect import DetectionSettings
from molehunt.detect.unusual_client import _ToolUse


def test_dbeaver_on_a_resigned_account_is_flagged_the_first_day() -> None:
    (finding,) = scenario().of("unusual_client", "E001")
    assert finding.day == date(2026, 5, 6)
    assert finding.details["tools"] == ["DBeaver 23.1.0 - Main"]
    assert finding.account == "resigned_agent"


def test_dba_with_psql_every_day_is_not_flagged() -> None:
    assert not scenario().of("unusual_client", "E005")


def test_etl_application_name_is_not_a_tool() -> None:
    assert {f.person_id for f in scenario().of("unusual_client")} == {"E001"}


def test_a_tool_the_roles_others_use_is_their_work() -> None:
    analysts = _ToolUse("analyst", users=1, others=2).details(DetectionSettings().tool_min_bits)
    assert analysts["stage"] == "context"
    assert analysts["population"].startswith("1 of 2 other analyst")


def test_a_few_sales_people_with_a_tool_stay_unusual() -> None:
    ring = _ToolUse("sales", users=2, others=99).details(DetectionSettings().tool_min_bits)
    assert "stage" not in ring
    assert ring["bits"] > 4


def test_a_role_entitled_to_the_database_reaches_it_with_tools_by_design() -> None:
    alone = _ToolUse("analyst", users=0, others=1, entitled=True).details(2.0)
    assert alone["stage"] == "context"
    assert "entitled to the database" in alone["population"]
