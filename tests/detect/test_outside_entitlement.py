"""Outside entitlement: a sales PC on the client database fires; entitled readers do not."""

from __future__ import annotations

from datetime import date

import pytest
from insurer import scenario

QUIET = [
    ("E006", "the auditor, entitled to read clients in the CRM, in review week"),
    ("E005", "the DBA, entitled to public.clients, even for his night COPY"),
    ("E008", "sales reading the CRM, however much"),
    ("E003", "sales reading the CRM with a colleague's account"),
]


def test_sales_workstation_on_the_client_database_is_flagged() -> None:
    (finding,) = scenario().of("outside_entitlement", "E001", date(2026, 5, 6))
    assert finding.details["role"] == "sales"
    assert finding.details["system"] == "crm-db"
    assert finding.details["resources"] == ["public.clients"]
    assert finding.related == ("E004",)


@pytest.mark.parametrize(("person", "case"), QUIET)
def test_entitled_reads_are_not_flagged(person: str, case: str) -> None:
    assert not scenario().of("outside_entitlement", person), case
