"""HR roster export (``hr.csv``)."""

from __future__ import annotations

from molehunt.ingest.reference import ReferenceCsvParser


class HrParser(ReferenceCsvParser):
    """HR roster: who works here, their role, and when they joined, gave notice and left."""

    kind = "hr"
    description = "HR roster (hr.csv)"
    table = "hr"
    required = ("employee_id", "name", "role")
    signature = frozenset({"employee_id", "termination_date"})
