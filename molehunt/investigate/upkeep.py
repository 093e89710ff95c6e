"""The operator's tasks over the store, as service functions like every other
(:mod:`molehunt.investigate.service`): file scans stored, canaries planted, the
quarantine listed and replayed. Each checks its action (the operator's alone, see
:mod:`molehunt.investigate.permissions`) and writes exactly one audit row, for a
refusal too; the libraries are :mod:`molehunt.pii.stored`,
:mod:`molehunt.attribute.canary` and :mod:`molehunt.quarantine`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molehunt.investigate.core import ServiceCore
from molehunt.models import Actor

if TYPE_CHECKING:
    from molehunt.attribute.canary import Planted
    from molehunt.pii.scan import ScannedFile
    from molehunt.quarantine import ReplayReport


def _asked(source: str | None, kind: str | None) -> str | None:
    """A quarantine row's target: the filters (a source id, a kind), never a reason text."""
    asked = [f"source={source}"] if source else []
    asked += [f"kind={kind}"] if kind else []
    return " ".join(asked) or None


class Upkeep(ServiceCore):
    """Scans, canaries and the quarantine (see the module docstring)."""

    def store_scans(self, actor: Actor, reports: Sequence[ScannedFile]) -> int:
        """Keep the scans of files whose host is known (audited ``scan``, naming how
        many files on how many hosts); how many were new."""
        self._allow(actor, "store-scans", "scan")
        from molehunt.pii.stored import store_scans

        on_hosts = [r for r in reports if r.host is not None]
        with self.lock:
            stored = store_scans(self.db(), on_hosts) if on_hosts else 0
            hosts = {r.host for r in on_hosts}
            self.audit(
                actor.name, "scan", f"{len(reports)} files on {len(hosts)} hosts", len(reports)
            )
        return stored

    def plant_canaries(self, actor: Actor, count: int, out: Path) -> Planted:
        """Make ``count`` canary clients, register their keyed hashes and write them
        beside ``out`` (audited ``canary plant``)."""
        self._allow(actor, "plant-canaries", "canary plant")
        from molehunt.attribute.canary import plant
        from molehunt.keys import load_key

        with self.lock:
            planted = plant(self.db(), load_key(self.settings, self.db()), count, out)
            self.audit(actor.name, "canary plant", f"{planted.count} canaries", planted.count)
        return planted

    def quarantine(
        self,
        actor: Actor,
        *,
        reason: str | None = None,
        source: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Quarantined records, previews masked (audited ``quarantine list`` with the
        filters, never the reason text asked for)."""
        self._allow(actor, "view-quarantine", "quarantine list")
        from molehunt.quarantine import list_quarantine

        rows = list_quarantine(self.db(), reason=reason, source=source, kind=kind, limit=limit)
        self.audit(actor.name, "quarantine list", _asked(source, kind), len(rows))
        return rows

    def replay_quarantine(
        self, actor: Actor, *, source: str | None = None, kind: str | None = None
    ) -> ReplayReport:
        """Parse quarantined log records again with the current settings (audited
        ``quarantine replay``)."""
        self._allow(actor, "replay-quarantine", "quarantine replay")
        from molehunt.quarantine import replay

        with self.lock:
            report = replay(self.db(), self.settings, source=source, kind=kind)
            self.audit(actor.name, "quarantine replay", _asked(source, kind), len(report.records))
        return report
