"""Client records found in files on endpoints."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import ibis

from molehunt.detect.base import DetectContext, Finding, QueryDetector
from molehunt.resolve import short_host


class ClientFileDetector(QueryDetector):
    """Client records in a file: a file found on a host (``molehunt scan`` of the
    endpoint collection) holds many client records of other people's portfolios.

    A file counts when it holds ``file_min_clients`` client records (exact data
    match) that are not of the portfolio of the person who wrote it; for people
    without a portfolio (DBAs, auditors), every client record counts. The writer is
    the person behind the Sysmon file-creation event of that path on that host
    (the latest one), else the person at the host when the file was last written.
    Severity rises with the records held. A file is critical on its own (a person
    reaches the alert threshold without a chain) when its writer owns a portfolio and
    it holds at least ``critical_file_clients`` clients of other portfolios (beyond
    any need of their own), or when it holds at least ``critical_file_share`` of the
    whole client master (a copy of the client table, whoever holds it). An analyst's
    campaign list, a part of the clients read with a right to read them, is collection.
    """

    name: ClassVar[str] = "client_file"
    severity: ClassVar[int] = 75
    description: ClassVar[str] = "a file on a host holds many clients of others' portfolios"
    source: ClassVar[str] = "file"
    stage: ClassVar[str] = "collection"

    def query(self, ctx: DetectContext) -> Any:
        s = ctx.settings
        scans = ctx.table("events_scan")
        scans = scans.filter(scans.host.notnull() & (scans.client_records > 0))
        t = scans.select(
            "event_id",
            "host_path",
            "path",
            "client_records",
            mtime=scans.time,
            hostname=short_host(scans.host),
        )
        writes = ctx.endpoint_events("events_file")
        writes = writes.select(
            w_id=writes.event_id,
            w_time=writes.time,
            w_host=writes.hostname,
            w_path=writes.path.lower(),
            w_actor=writes.actor,
        )
        last = ibis.window(group_by=[writes.w_host, writes.w_path], order_by=ibis.desc("w_time"))
        writes = writes.mutate(_n=ibis.row_number().over(last)).filter(lambda x: x._n == 0)
        t = t.left_join(
            writes,
            [t.hostname == writes.w_host, t.host_path.lower() == writes.w_path],
        ).drop("w_host", "w_path", "_n")
        t = t.mutate(time=t.w_time.coalesce(t.mtime))
        t = t.filter(t.time < ctx.end_literal())
        ho = ctx.host_owners()
        t = t.left_join(ho, t.hostname == ho.ho_host).drop("ho_host")
        t = t.rename(host_kind="ho_kind", host_owner="ho_owner")
        t = ctx._with_person_at(t)
        t = t.mutate(actor=t.w_actor.coalesce(t.host_person), day=ctx.day_of(t.time))
        t = t.filter(t.actor.notnull())

        fc = ctx.table("file_clients").select(fc_id="event_id", fc_client="client_id")
        j = t.join(fc, t.event_id == fc.fc_id)
        clients = ctx.table("clients")
        if "owner_employee_id" in clients.columns:
            owners = clients.select(c_id="client_id", c_owner="owner_employee_id")
            j = j.left_join(owners, j.fc_client == owners.c_id)
            j = j.filter(j.c_owner.isnull() | (j.c_owner != j.actor))
        per_file = j.group_by(
            ["event_id", "w_id", "actor", "hostname", "day", "time", "path", "client_records"]
        ).aggregate(others=j.fc_client.nunique())
        per_file = per_file.filter(per_file.others >= s.file_min_clients)
        return per_file.group_by(["actor", "hostname", "day"]).aggregate(
            scan_ids=per_file.event_id.collect(distinct=True),
            write_ids=per_file.w_id.collect(distinct=True),
            files=per_file.path.collect(distinct=True),
            records=per_file.client_records.sum(),
            others=per_file.others.sum(),
            biggest=per_file.others.max(),
            last=per_file.time.max(),
        )

    def rows(self, ctx: DetectContext) -> list[dict[str, Any]]:
        """The files' rows, and for the whole pass who holds a portfolio and how many
        clients the master has (what makes a file critical)."""
        found = ctx.collect(self.query(ctx))
        everyone = ctx.table("clients")
        holders: set[str] = set()
        if "owner_employee_id" in everyone.columns:
            kept = everyone.filter(everyone.owner_employee_id.notnull())
            holders = {r["o"] for r in ctx.collect(kept.select(o="owner_employee_id").distinct())}
        self._holders = holders
        self._total = int(ctx.collect(everyone.aggregate(n=everyone.count()))[0]["n"] or 0)
        return found

    def to_finding(self, ctx: DetectContext, row: dict[str, Any]) -> Finding:
        s = ctx.settings
        total = self._total
        files = sorted(row["files"])
        others = int(row["others"])
        biggest = int(row["biggest"])
        critical = (row["actor"] in self._holders and biggest >= s.critical_file_clients) or (
            total > 0 and biggest >= s.critical_file_share * total
        )
        return Finding(
            detector=self.name,
            day=row["day"],
            time=ctx.utc(row["last"]),
            severity=min(100, self.severity + 5 * (int(math.log10(others)) - 1)),
            person_id=row["actor"],
            title=f"{len(files)} file(s) on {row['hostname']} hold {others} client "
            "records of others' portfolios",
            host=row["hostname"],
            event_ids=ctx.ids(row["scan_ids"], row["write_ids"]),
            details={
                "files": files[:50],
                "client_records": int(row["records"]),
                "others_records": others,
                "clients_in_master": total,
                "stage": "critical" if critical else "collection",
            },
        )
