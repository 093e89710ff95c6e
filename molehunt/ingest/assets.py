"""Asset inventory export (``assets.csv``)."""

from __future__ import annotations

from molehunt.ingest.reference import ReferenceCsvParser, one_of, parse_ip


class AssetsParser(ReferenceCsvParser):
    """Hosts, their fixed IP, owner and department."""

    kind = "assets"
    description = "hosts and their IPs (assets.csv)"
    table = "assets"
    required = ("hostname", "ip", "kind")
    signature = frozenset({"hostname", "ip"})
    converters = {"ip": parse_ip, "kind": one_of("workstation", "server")}
