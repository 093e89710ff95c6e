"""Account used from another person's host: names the person at the host and the owner."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario

FIRES = [
    ("E001", "E004", "resigned_agent", date(2026, 5, 6), "ws-001"),
    ("E002", "E004", "resigned_agent", date(2026, 5, 12), "ws-002"),
    ("E003", "E009", "xu.jing", date(2026, 5, 21), "ws-003"),
]
QUIET = [
    ("E005", "the DBA at someone else's PC, logged on there himself"),
    ("E006", "the auditor at her own PC"),
    ("E008", "low and slow, but with his own account at his own PC"),
    ("E007", "departing, with her own account"),
]


@pytest.mark.parametrize(("person", "owner", "account", "day", "host"), FIRES)
def test_account_used_at_another_persons_host_names_both(
    person: str, owner: str, account: str, day: date, host: str
) -> None:
    (finding,) = scenario().of("borrowed_account", person, day)
    assert finding.account == account
    assert finding.host == host
    assert finding.related == (owner,)
    assert finding.details["person_at_host"] == person
    assert finding.details["account_owner"] == owner


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_own_account_at_a_host_one_is_logged_on_to_is_quiet(person: str, case: str) -> None:
    assert not scenario().of("borrowed_account", person), case


def test_service_account_on_its_server_is_nobody() -> None:
    assert all(f.person_id is not None for f in scenario().findings)
    assert not [f for f in scenario().findings if f.account == "etl_svc"]
