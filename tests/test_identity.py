from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from molehunt.config import Settings
from molehunt.identity import Identity, employment_status
from molehunt.ingest.runner import ingest_paths
from molehunt.store import Store

HR = (
    "employee_id,name,department,title,role,manager_id,hire_date,notice_date,termination_date\n"
    "E001,王伟,sales,Sales rep,sales,E010,2020-01-06,,\n"
    "E002,李娜,sales,Sales rep,sales,E010,2019-03-01,2026-03-15,2026-04-15\n"
    "E010,张强,sales,Manager,manager,,2015-01-01,,\n"
)
ACCOUNTS = (
    "account,system,owner_employee_id,kind,created,disabled\n"
    "wang.wei,ad,E001,human,2020-01-06,\n"
    "li.na,ad,E002,human,2019-03-01,2026-04-16\n"
    "li_na,crm-db,E002,human,2019-03-01,\n"
    "crm_app,crm-db,,service,2018-01-01,\n"
)
ASSETS = (
    "hostname,ip,owner_employee_id,kind,department\n"
    "PC-SALES-001,10.20.3.17,E001,workstation,sales\n"
    "PC-SALES-002,10.20.3.18,E002,workstation,sales\n"
)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def identity(store: Store, settings: Settings, tmp_path: Path) -> Identity:
    for name, text in (("hr", HR), ("accounts", ACCOUNTS), ("assets", ASSETS)):
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
        ingest_paths(store, settings, [tmp_path / f"{name}.csv"], as_of=_t("2026-01-01T00:00Z"))
    return Identity(store, "Asia/Shanghai")


@pytest.mark.parametrize(
    ("day", "status"),
    [
        (date(2019, 2, 28), "not_yet_hired"),
        (date(2026, 3, 14), "employed"),
        (date(2026, 3, 15), "on_notice"),
        (date(2026, 4, 15), "on_notice"),
        (date(2026, 4, 16), "departed"),
    ],
)
def test_employment_status(day: date, status: str) -> None:
    assert employment_status(day, date(2019, 3, 1), date(2026, 3, 15), date(2026, 4, 15)) == status


@pytest.mark.parametrize(
    ("at", "status", "enabled"),
    [
        ("2026-03-01T10:00+08:00", "employed", True),
        ("2026-04-01T10:00+08:00", "on_notice", True),
        # Local date decides: 2026-04-15 23:30 UTC is already the 16th in Shanghai.
        ("2026-04-15T23:30+00:00", "departed", True),
        ("2026-06-01T10:00+08:00", "departed", True),
    ],
)
def test_departed_owner_of_a_still_enabled_database_account(
    identity: Identity, at: str, status: str, enabled: bool
) -> None:
    (account,) = identity.accounts("li_na", _t(at))
    assert account["system"] == "crm-db"
    assert account["enabled"] is enabled
    assert account["owner"]["name"] == "李娜"
    assert account["owner"]["status"] == status


def test_the_domain_account_is_disabled_the_day_after_termination(identity: Identity) -> None:
    (before,) = identity.accounts("li.na", _t("2026-04-15T12:00+08:00"))
    (after,) = identity.accounts("li.na", _t("2026-04-16T12:00+08:00"))
    assert (before["enabled"], after["enabled"]) == (True, False)


def test_orphaned_accounts_lists_only_enabled_accounts_of_departed_people(
    identity: Identity,
) -> None:
    assert identity.orphaned_accounts(_t("2026-04-01T10:00+08:00")) == []
    rows = identity.orphaned_accounts(_t("2026-06-01T10:00+08:00"))
    assert [(r["account"], r["system"], r["days_since"]) for r in rows] == [("li_na", "crm-db", 47)]


def test_ip_resolves_to_host_owner_and_the_person_logged_on(
    identity: Identity, store: Store
) -> None:
    # E001 (wang.wei) logs on at E002's workstation at 09:00, then off at 12:00.
    store.con.execute(
        """
        INSERT INTO events_auth (event_id, time, source_id, kind, activity, user_name,
                                 logon_type, dst_host, event_code)
        VALUES ('s:1', '2026-04-01 01:00:00+00', 's', 'winlog-ndjson', 'logon', 'wang.wei',
                2, 'PC-SALES-002.corp.example', 4624),
               ('s:2', '2026-04-01 04:00:00+00', 's', 'winlog-ndjson', 'logoff', 'wang.wei',
                2, 'PC-SALES-002.corp.example', 4634)
        """
    )
    during = identity.who(_t("2026-04-01T10:00+08:00"), ip="10.20.3.18")
    assert during["host"]["hostname"] == "PC-SALES-002"
    assert during["host"]["owner"]["name"] == "李娜"
    assert [(p["account"], p["person"]["name"]) for p in during["logged_on"]] == [
        ("wang.wei", "王伟")
    ]
    after = identity.who(_t("2026-04-01T13:00+08:00"), hostname="pc-sales-002")
    assert after["logged_on"] == []


def test_role_at_a_time_follows_the_hr_history(
    identity: Identity, store: Store, settings: Settings, tmp_path: Path
) -> None:
    promoted = HR.replace("E001,王伟,sales,Sales rep,sales", "E001,王伟,sales,Team lead,manager")
    (tmp_path / "hr-2.csv").write_text(promoted, encoding="utf-8")
    ingest_paths(store, settings, [tmp_path / "hr-2.csv"], as_of=datetime(2026, 5, 1, tzinfo=UTC))
    before = identity.person("E001", _t("2026-04-01T10:00+08:00"))
    after = identity.person("E001", _t("2026-05-02T10:00+08:00"))
    assert before is not None
    assert after is not None
    assert (before.role, after.role) == ("sales", "manager")


def test_unknown_things_answer_empty(identity: Identity) -> None:
    answer = identity.who(_t("2026-04-01T10:00+08:00"), ip="192.0.2.1")
    assert answer["host"] is None
    assert answer["logged_on"] == []
    assert identity.accounts("nobody", _t("2026-04-01T10:00+08:00")) == []
