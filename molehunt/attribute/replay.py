"""Replay logged database statements to learn which clients they returned.

A logged statement is parsed with sqlglot and accepted only when it is a pure read
of a known client table: a plain ``SELECT``, the query of ``DECLARE ... CURSOR FOR``,
or ``COPY (SELECT ...) TO`` / ``COPY clients TO``. Its predicate, ordering and limit
are checked against a whitelist of expression types and columns (``client_id`` and
the client master's non-PII attributes), then rebuilt as a new sqlglot AST that
selects ``client_id`` from our own ``clients`` table and transpiled to DuckDB. The
logged text is never run: only the AST we build, over our table.

The replayed row count is compared with the logged one (pgAudit or auto_explain):
the agreement is the replay's confidence.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from molehunt.resolve.stored import forget_access_days
from molehunt.store import Store

#: Replayed reads below this confidence are not stored in ``record_access``.
MIN_CONFIDENCE = 0.5
#: Confidence of a replay whose row count was not logged (a COPY gets no plan).
UNVERIFIED_CONFIDENCE = 0.5
#: Statements evaluated per DuckDB query.
BATCH = 256

# sqlglot falls back to a generic Command for DECLARE and warns about it.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_CURSOR = re.compile(
    r"^\s*\w+\s+(?:(?:BINARY|ASENSITIVE|INSENSITIVE|(?:NO\s+)?SCROLL)\s+)*CURSOR\s+"
    r"(?:(?:WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(?P<query>.+)$",
    re.IGNORECASE | re.DOTALL,
)

#: Expression types a replayed predicate may hold: comparisons, logic, literals,
#: casts and a few pure string functions. Anything else (function calls that could
#: have side effects, subqueries, window functions...) is refused.
_ALLOWED: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.Between,
    exp.In,
    exp.Like,
    exp.ILike,
    exp.Any,
    exp.Array,
    exp.Tuple,
    exp.Cast,
    exp.DataType,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Substring,
    exp.Neg,
    exp.Ordered,
)
_AGGREGATES = (exp.AggFunc,)


@dataclass(frozen=True, slots=True)
class Plan:
    """An accepted statement: the DuckDB query that lists the client ids it returned."""

    sql: str  # SELECT client_id FROM clients ... (built from the AST, DuckDB dialect)
    aggregate: bool = False  # e.g. count(*): returns no client record


@dataclass(frozen=True, slots=True)
class Refusal:
    """A statement not replayed, and why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Replay:
    """What one logged statement returned, by replay."""

    event_id: str
    client_ids: tuple[str, ...]
    logged_rows: int | None
    confidence: float


def confidence(replayed: int, logged: int | None) -> float:
    """Agreement of the replayed and logged row counts, 0..1."""
    if logged is None:
        return UNVERIFIED_CONFIDENCE
    if replayed == logged:
        return 1.0
    return min(replayed, logged) / max(replayed, logged)


class Replayer:
    """Plans logged statements against the client master's known columns."""

    def __init__(self, attributes: Iterable[str], tables: Iterable[str] = ("clients",)) -> None:
        self.columns = {"client_id", *(a.lower() for a in attributes)}
        self.tables = {t.lower() for t in tables}
        # The same text comes back with other parameters: parse it once.
        self._parsed: dict[str, exp.Select | Refusal] = {}
        self._lookups: dict[str, int | None] = {}

    @classmethod
    def from_store(cls, store: Store) -> Replayer:
        present = {
            r["column_name"].lower()
            for r in store.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'clients'"
            )
        }
        rows = store.query("SELECT name FROM client_columns WHERE role = 'attribute'")
        return cls(r["name"] for r in rows if r["name"].lower() in present)

    def plan(self, statement: str, parameters: str | None = None) -> Plan | Refusal:
        """The replay of ``statement`` (with its logged ``parameters``), or why not."""
        query = self._parsed.get(statement)
        if query is None:
            query = self._parsed[statement] = self._parse(statement)
        if isinstance(query, Refusal):
            return query
        if parameters is not None or query.find(exp.Parameter, exp.Placeholder):
            bound = self._bind(query, parameters)
            if isinstance(bound, Refusal):
                return bound
            query = bound
        return self._select_plan(query)

    def _parse(self, statement: str) -> exp.Select | Refusal:
        try:
            parsed = [
                s
                for s in sqlglot.parse(statement, read="postgres")
                if isinstance(s, exp.Expression)
            ]
        except SqlglotError as e:
            return Refusal(f"unparsable: {str(e).splitlines()[0][:120]}")
        if len(parsed) != 1:
            return Refusal(f"{len(parsed)} statements: only one plain read is replayed")
        return self._query_of(parsed[0])

    def id_lookup(self, statement: str) -> int | None:
        """``n`` when ``statement`` reads clients by ``client_id = $n`` or
        ``client_id = ANY($n)`` alone (what an application sends most): its result is
        the parameter's ids that exist, found for many events in one join."""
        if statement in self._lookups:
            return self._lookups[statement]
        found: int | None = None
        query = self._parsed.get(statement)
        if query is None:
            query = self._parsed[statement] = self._parse(statement)
        if isinstance(query, exp.Select) and not any(
            query.args.get(k) for k in ("limit", "offset", "order")
        ):
            where = query.args.get("where")
            predicate = where.this if isinstance(where, exp.Where) else None
            if isinstance(predicate, exp.EQ) and isinstance(predicate.this, exp.Column):
                value = predicate.expression
                if isinstance(value, exp.Any) and isinstance(value.this, exp.Paren):
                    value = value.this.this
                if (
                    predicate.this.name.lower() == "client_id"
                    and isinstance(value, exp.Parameter)
                    and value.name.isdigit()
                    # Everything else about the statement must pass as a plain read.
                    and isinstance(self.plan(statement, ",".join(["x"] * int(value.name))), Plan)
                ):
                    found = int(value.name)
        self._lookups[statement] = found
        return found

    # -- which query a statement runs ----------------------------------------------

    def _query_of(self, node: exp.Expression) -> exp.Select | Refusal:
        if isinstance(node, exp.Select):
            return node
        if isinstance(node, exp.Command) and node.name.upper() == "DECLARE":
            text = node.expression.name if node.expression else ""
            m = _CURSOR.match(text)
            if not m:
                return Refusal("DECLARE without a cursor query")
            try:
                inner = [
                    s
                    for s in sqlglot.parse(m["query"], read="postgres")
                    if isinstance(s, exp.Expression)
                ]
            except SqlglotError:
                return Refusal("cursor query unparsable")
            if len(inner) != 1 or not isinstance(inner[0], exp.Select):
                return Refusal("cursor over something other than a plain SELECT")
            return inner[0]
        if isinstance(node, exp.Copy):
            if node.args.get("kind"):
                return Refusal("COPY FROM writes to the table")
            source = node.this
            if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Select):
                return source.this
            if isinstance(source, exp.Schema) and isinstance(source.this, exp.Table):
                table = source.this
                cols = [exp.column(c.name) for c in source.expressions]
                return exp.select(*cols).from_(table.copy())
            if isinstance(source, exp.Table):
                return exp.select(exp.Star()).from_(source.copy())
            return Refusal("COPY of something other than a table or a SELECT")
        kind = node.key.upper()
        if isinstance(node, exp.Command):
            kind = node.name.upper()
        return Refusal(f"{kind} is not a pure read")

    def _bind(self, query: exp.Select, parameters: str | None) -> exp.Select | Refusal:
        """Put the logged parameter values in place of ``$n``."""
        values = split_parameters(parameters or "")
        query = query.copy()
        missing: list[str] = []

        def put(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Parameter | exp.Placeholder):
                inner = node.this
                name = node.name or (inner.name if isinstance(inner, exp.Expression) else "")
                try:
                    value = values[int(name) - 1]
                except (ValueError, IndexError):
                    missing.append(name or "?")
                    return node
                if value is None:
                    return exp.Null()
                if value.startswith("{") and value.endswith("}"):
                    items = _array_items(value)
                    return exp.Array(expressions=[exp.Literal.string(v) for v in items])
                return exp.Literal.string(value)
            return node

        bound = query.transform(put)
        if missing:
            return Refusal(f"parameter ${missing[0]} not logged")
        assert isinstance(bound, exp.Select)
        return bound

    # -- the replay query ------------------------------------------------------------

    def _select_plan(self, select: exp.Select) -> Plan | Refusal:
        for key in ("with_", "with", "joins", "laterals", "group", "having", "qualify", "into"):
            if select.args.get(key):
                return Refusal(f"{key.rstrip('_').upper()} is not replayed")
        if select.args.get("locks"):
            return Refusal("SELECT ... FOR UPDATE locks rows")
        source = select.args.get("from_") or select.args.get("from")
        if not isinstance(source, exp.From) or not isinstance(source.this, exp.Table):
            return Refusal("not a SELECT from one table")
        table = source.this
        name = table.name.lower()
        schema = table.db.lower()
        if name not in self.tables or schema not in ("", "public"):
            return Refusal(f"{table.sql(dialect='postgres')} is not a known client table")
        alias = table.alias_or_name.lower()
        for projection in select.expressions:
            if isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            ):
                continue
            bad = self._unsupported(projection, alias, allow_aggregates=True, check_columns=False)
            if bad:
                return Refusal(f"selected {bad}")
        aggregate = any(p.find(*_AGGREGATES) for p in select.expressions)
        where = select.args.get("where")
        predicate = where.this if isinstance(where, exp.Where) else None
        if predicate is not None:
            bad = self._unsupported(predicate, alias)
            if bad:
                return Refusal(f"predicate uses {bad}")
        out = exp.select(exp.column("client_id")).from_(exp.table_("clients"))
        if predicate is not None:
            out = out.where(self._unqualified(predicate))
        if aggregate:
            # An aggregate returns a figure, not records: no client was disclosed.
            return Plan(out.limit(0).sql(dialect="duckdb"), aggregate=True)
        order = select.args.get("order")
        if isinstance(order, exp.Order):
            for o in order.expressions:
                bad = self._unsupported(o, alias)
                if bad:
                    return Refusal(f"ORDER BY {bad}")
            out = out.order_by(*(self._unqualified(o) for o in order.expressions))
        for key in ("limit", "offset"):
            clause = select.args.get(key)
            if clause is None:
                continue
            value = clause.expression if clause.expression is not None else clause.this
            if not isinstance(value, exp.Literal) or value.is_string:
                return Refusal(f"{key.upper()} that is not a number")
            n = int(value.name)
            out = out.limit(n) if key == "limit" else out.offset(n)
        return Plan(out.sql(dialect="duckdb"))

    def _unsupported(
        self,
        node: exp.Expression,
        alias: str,
        *,
        allow_aggregates: bool = False,
        check_columns: bool = True,
    ) -> str | None:
        """The first thing in ``node`` a replay cannot evaluate over our columns."""
        for sub in node.walk():
            if allow_aggregates and isinstance(sub, exp.AggFunc | exp.Star | exp.Alias):
                continue
            if not isinstance(sub, _ALLOWED):
                return sub.key.upper() if not isinstance(sub, exp.Func) else sub.sql()[:60]
            if isinstance(sub, exp.Column):
                if sub.table and sub.table.lower() != alias:
                    return f"column of another table {sub.sql()}"
                if check_columns and sub.name.lower() not in self.columns:
                    return f"column {sub.name} (not a stored non-PII attribute)"
        return None

    @staticmethod
    def _unqualified(node: exp.Expression) -> exp.Expression:
        def strip(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Column):
                return exp.column(n.name.lower())
            return n

        return node.copy().transform(strip)


def split_parameters(text: str) -> list[str | None]:
    """``'a', '{x,y}'`` or ``$1 = 'a', $2 = NULL`` -> the values in order (None = NULL)."""
    text = text.strip()
    if not text:
        return []
    out: list[str | None] = []
    for part in _split_top(text):
        part = part.strip()
        m = re.match(r"^\$\d+\s*=\s*(.*)$", part, re.DOTALL)
        if m:
            part = m.group(1).strip()
        if part.upper() == "NULL":
            out.append(None)
        elif len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
            out.append(part[1:-1].replace(part[0] * 2, part[0]))
        else:
            out.append(part)
    return out


def _split_top(text: str) -> list[str]:
    """Split on commas outside quotes and braces."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def replay_statements(
    store: Store,
    events: Sequence[tuple[str, str, str | None, int | None]],
    replayer: Replayer | None = None,
) -> tuple[list[Replay], dict[str, str]]:
    """Replay ``(event_id, statement, parameters, logged_rows)``: the replays, and the
    reason of every event refused. Identical statements are evaluated once."""
    replayer = replayer or Replayer.from_store(store)
    plans: dict[tuple[str, str | None], Plan | Refusal] = {}
    refused: dict[str, str] = {}
    wanted: dict[str, list[tuple[str, int | None]]] = {}
    lookups: list[tuple[str, str]] = []
    lookup_rows: dict[str, int | None] = {}
    for event_id, statement, parameters, rows in events:
        n = replayer.id_lookup(statement)
        values = split_parameters(parameters or "")
        if n is not None and len(values) >= n and values[n - 1] is not None:
            value = values[n - 1] or ""
            ids = _array_items(value) if value.startswith("{") else [value]
            lookups.extend((event_id, i) for i in ids)
            lookup_rows[event_id] = rows
            continue
        key = (statement, parameters)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = replayer.plan(statement, parameters)
        if isinstance(plan, Refusal):
            refused[event_id] = plan.reason
        else:
            wanted.setdefault(plan.sql, []).append((event_id, rows))
    results = _evaluate(store, list(wanted))
    out = _lookup(store, lookups, lookup_rows)
    for sql, uses in wanted.items():
        returned = results[sql]
        for event_id, rows in uses:
            out.append(Replay(event_id, returned, rows, confidence(len(returned), rows)))
    return out, refused


def _array_items(value: str) -> list[str]:
    """``{a,"b c"}`` (a PostgreSQL array literal) -> its items."""
    inner = value.strip()[1:-1] if value.strip().endswith("}") else value.strip()[1:]
    return [v.strip().strip('"') for v in _split_top(inner) if v.strip()]


def _lookup(
    store: Store, pairs: list[tuple[str, str]], rows: dict[str, int | None]
) -> list[Replay]:
    """Replays of id lookups: the looked-up ids that are clients, in one join."""
    if not rows:
        return []

    table = pa.table(
        {
            "event_id": pa.array([p[0] for p in pairs], pa.string()),
            "client_id": pa.array([p[1] for p in pairs], pa.string()),
        }
    )
    store.con.register("_lookups", table)
    try:
        found = store.con.execute(
            "SELECT DISTINCT l.event_id, l.client_id FROM _lookups l "
            "SEMI JOIN clients c ON c.client_id = l.client_id ORDER BY 1, 2"
        ).fetchall()
    finally:
        store.con.unregister("_lookups")
    ids: dict[str, list[str]] = {e: [] for e in rows}
    for event_id, client_id in found:
        ids[str(event_id)].append(str(client_id))
    return [Replay(e, tuple(c), rows[e], confidence(len(c), rows[e])) for e, c in ids.items()]


def _evaluate(store: Store, queries: list[str]) -> dict[str, tuple[str, ...]]:
    """Client ids each planned query returns, many queries per round trip."""
    out: dict[str, tuple[str, ...]] = {}
    for start in range(0, len(queries), BATCH):
        chunk = queries[start : start + BATCH]
        union = " UNION ALL ".join(
            f"SELECT {i} AS q, client_id FROM ({sql})" for i, sql in enumerate(chunk)
        )
        found: dict[int, list[str]] = {i: [] for i in range(len(chunk))}
        for q, client_id in store.con.execute(union).fetchall():
            found[int(q)].append(str(client_id))
        for i, sql in enumerate(chunk):
            out[sql] = tuple(found[i])
    return out


def store_replays(store: Store, replays: Sequence[Replay], events: Iterable[str]) -> int:
    """Write confident replays to ``record_access`` (how='replayed'), replacing earlier
    replays of the same ``events``: running twice stores the same rows."""
    rows = [
        (r.event_id, c) for r in replays if r.confidence >= MIN_CONFIDENCE for c in r.client_ids
    ]
    ids = pa.table({"event_id": pa.array(sorted(set(events)), pa.string())})
    new = pa.table(
        {
            "event_id": pa.array([r[0] for r in rows], pa.string()),
            "client_id": pa.array([r[1] for r in rows], pa.string()),
        }
    )
    with store.transaction() as con:
        con.register("_replayed_events", ids)
        con.register("_replayed_rows", new)
        replaced = con.execute(
            "DELETE FROM record_access WHERE how = 'replayed' "
            "AND event_id IN (SELECT event_id FROM _replayed_events)"
        ).fetchall()
        if replaced and int(replaced[0][0]):
            forget_access_days(con)  # rowids of deleted rows may be reused
        con.execute(
            "INSERT INTO record_access SELECT event_id, client_id, 'replayed' FROM _replayed_rows"
        )
        con.unregister("_replayed_events")
        con.unregister("_replayed_rows")
    return len(rows)


#: Bump when what a replay yields for a statement changes: everything is replayed again.
REPLAY_VERSION = 1


def replay_new(
    store: Store, events: Sequence[tuple[str, str, str | None, int | None]]
) -> dict[str, str]:
    """Replay ``events`` as :func:`replay_statements` does, only those not replayed
    before against the same client master: what a statement returns depends on the
    statement, its parameters, its logged rows and the master alone. Afterwards every
    event's replay is in the store: its confidence (or why it was refused) in
    ``attr_replayed``, the clients of a confident one in ``record_access`` (how
    'replayed'). Returns the refusals of ``events``."""
    same_master(store)
    ids = pa.table({"event_id": pa.array(sorted({e[0] for e in events}), pa.string())})
    with store.transaction() as tx:
        tx.register("_replay_ids", ids)
        done = {
            str(e)
            for (e,) in tx.execute(
                "SELECT event_id FROM attr_replayed SEMI JOIN _replay_ids USING (event_id)"
            ).fetchall()
        }
        tx.unregister("_replay_ids")
    new = list({e[0]: e for e in events if e[0] not in done}.values())
    replays, refused = replay_statements(store, new, Replayer.from_store(store))
    store_replays(store, replays, [e[0] for e in new])
    rows = pa.table(
        {
            "event_id": pa.array([r.event_id for r in replays] + list(refused), pa.string()),
            "confidence": pa.array(
                [r.confidence for r in replays] + [None] * len(refused), pa.float64()
            ),
            "reason": pa.array([None] * len(replays) + list(refused.values()), pa.string()),
        }
    )
    with store.transaction() as tx:
        tx.register("_replay_rows", rows)
        tx.execute("INSERT INTO attr_replayed SELECT * FROM _replay_rows")
        tx.unregister("_replay_rows")
        tx.register("_replay_ids", ids)
        found = tx.execute(
            "SELECT event_id, reason FROM attr_replayed SEMI JOIN _replay_ids USING (event_id) "
            "WHERE reason IS NOT NULL"
        ).fetchall()
        tx.unregister("_replay_ids")
    return {str(e): str(r) for e, r in found}


def same_master(store: Store) -> None:
    """Forget every kept replay (``attr_replayed``) when the client master is no
    longer the one they were made against."""
    master = master_of(store)
    kept = store.con.execute("SELECT master FROM attr_replay_state").fetchall()
    if kept and kept[0][0] == master:
        return
    with store.transaction() as tx:
        tx.execute("DELETE FROM attr_replayed")
        tx.execute("DELETE FROM attr_replay_state")
        tx.execute("INSERT INTO attr_replay_state VALUES (?)", [master])


def master_of(store: Store) -> str:
    """What a replay is made against: the client master's rows and known columns."""
    rows = store.con.execute(
        "SELECT (SELECT count(*) FROM clients), "
        "(SELECT coalesce(sum(hash(c)), 0)::VARCHAR FROM clients c), "
        "(SELECT coalesce(sum(hash(k)), 0)::VARCHAR FROM client_columns k)"
    ).fetchall()[0]
    return json.dumps([REPLAY_VERSION, [str(v) for v in rows]])
