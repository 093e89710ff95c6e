"""The client master (``clients.csv``, ``.xlsx`` or ``.parquet``), kept only as keyed hashes.

The file is streamed in Arrow batches (pyarrow's CSV reader, Parquet row groups,
or python-calamine rows for spreadsheets); each batch is normalised and hashed
inside DuckDB (vectorised, both cores) and only ``client_id``, the keyed hashes
of PII columns and the non-PII attributes reach the store. Clear PII never does,
not even in the quarantine: a rejected row is recorded by line and client id.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from molehunt.errors import InputError, Location
from molehunt.ingest.base import Rejected
from molehunt.pii.keyed import (
    KeyedHasher,
    sql_normalize,
    sql_phone_from_parts,
    sql_phone_parts,
)

#: Header words of PII columns and the normaliser each is hashed with.
PII_COLUMNS: dict[str, str] = {
    "name": "text",
    "full_name": "text",
    "client_name": "text",
    "id_number": "id_number",
    "id_no": "id_number",
    "id_card": "id_number",
    "cert_no": "id_number",
    "passport": "id_number",
    "passport_no": "id_number",
    "bank_card": "id_number",
    "card_no": "id_number",
    "mobile": "phone",
    "phone": "phone",
    "tel": "phone",
    "telephone": "phone",
    "landline": "phone",
    "address": "text",
    "home_address": "text",
    "email": "text",
    "birth_date": "text",
}

WITHHELD = "<withheld: client master row holds personal data; see the source line>"
_IDENT = re.compile(r"[^a-z0-9_]+")
BATCH_ROWS = 250_000
#: A header, (first line number, text columns) batches, and rows the reader rejected.
Batches = tuple[list[str], Iterator[tuple[int | np.ndarray[Any, Any], pa.Table]], list[Rejected]]


@dataclass(frozen=True, slots=True)
class ClientColumn:
    name: str  # as stored: sanitised header
    source: str  # as in the file
    pii_kind: str | None  # normaliser, or None for a non-PII attribute


@dataclass(slots=True)
class ClientsLoad:
    stored: int
    rejected: list[Rejected]
    columns: list[ClientColumn]


def sanitise(header: str) -> str:
    name = _IDENT.sub("_", header.strip().lower()).strip("_")
    if not name or name[0].isdigit():
        name = "c_" + name
    return name


class ClientsParser:
    """Client master: hashed on the way in, never stored in clear."""

    kind: ClassVar[str] = "clients"
    description: ClassVar[str] = "client master (clients.csv/.xlsx/.parquet), keyed hashes only"

    @classmethod
    def sniff_header(cls, columns: list[str]) -> bool:
        return bool(columns) and columns[0] == "client_id"

    def columns(self, header: list[str], path: Path) -> list[ClientColumn]:
        if not header or sanitise(header[0]) != "client_id":
            raise InputError("the first column must be client_id", Location(str(path), 1))
        out: list[ClientColumn] = []
        seen: set[str] = set()
        for raw in header:
            name = sanitise(raw)
            if name in seen:
                raise InputError(f"column {name!r} appears twice", Location(str(path), 1))
            seen.add(name)
            kind = None if name == "client_id" else PII_COLUMNS.get(name)
            out.append(ClientColumn(name, raw, kind))
        return out

    def batches(self, path: Path) -> Batches:
        """The header, an iterator of (first line number, batch of text columns), and a
        list that fills with rows the reader itself rejects (wrong field count...)."""
        suffix = path.suffix.lower()
        rejected: list[Rejected] = []
        if suffix == ".parquet":
            return self._parquet(path)
        if suffix in {".xlsx", ".xls", ".xlsm", ".ods"}:
            return self._spreadsheet(path)
        return self._csv(path, rejected)

    def _csv(self, path: Path, rejected: list[Rejected]) -> Batches:
        with path.open("rb") as f:
            first = f.readline()
        header_text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
        header = [h.strip() for h in next(csv.reader([header_text]), [])]

        def on_invalid(row: pacsv.InvalidRow) -> Literal["skip", "error"]:
            rejected.append(
                Rejected(
                    reason=f"expected {row.expected_columns} fields, found {row.actual_columns}",
                    line=row.number,
                    raw=WITHHELD,
                )
            )
            return "skip"

        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=16 << 20, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.binary() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

        def gen() -> Iterator[tuple[int | np.ndarray[Any, Any], pa.Table]]:
            # Line numbers assume no newline inside a field (true of real exports);
            # rows the reader skipped move the following lines on.
            line, seen = 2, 0
            for batch in reader:
                lines = np.arange(line, line + batch.num_rows, dtype=np.int64)
                for skipped in sorted(r.line for r in rejected[seen:] if r.line is not None):
                    lines[lines >= skipped] += 1
                seen = len(rejected)
                yield lines, pa.Table.from_batches([batch])
                line = int(lines[-1]) + 1 if len(lines) else line

        return header, gen(), rejected

    def _parquet(self, path: Path) -> Batches:
        file = pq.ParquetFile(path)
        header = list(file.schema_arrow.names)

        def gen() -> Iterator[tuple[int | np.ndarray[Any, Any], pa.Table]]:
            row = 1
            for batch in file.iter_batches(batch_size=BATCH_ROWS):
                table = pa.Table.from_batches([batch])
                cols = [_as_text(table.column(i)) for i in range(table.num_columns)]
                yield row, pa.table(cols, names=header)
                row += table.num_rows

        return header, gen(), []

    def _spreadsheet(self, path: Path) -> Batches:
        from python_calamine import CalamineWorkbook

        workbook = CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        rows = iter(sheet.iter_rows())
        header = [str(c).strip() for c in next(rows, [])]

        def gen() -> Iterator[tuple[int | np.ndarray[Any, Any], pa.Table]]:
            line, start = 2, 2
            chunk: list[list[str]] = [[] for _ in header]
            for row in rows:
                cells = [_cell_text(c) for c in row][: len(header)]
                cells += [""] * (len(header) - len(cells))
                for i, cell in enumerate(cells):
                    chunk[i].append(cell)
                line += 1
                if line - start >= BATCH_ROWS:
                    yield start, _text_table(chunk, header)
                    chunk, start = [[] for _ in header], line
            if chunk and chunk[0]:
                yield start, _text_table(chunk, header)

        return header, gen(), []


def _text_table(columns: list[list[str]], names: list[str]) -> pa.Table:
    return pa.table([pa.array(c, pa.string()) for c in columns], names=names)


def _as_text(column: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    return column.cast(pa.string())


def _cell_text(value: object) -> str:
    # calamine returns numbers as floats: 13800138000.0 -> "13800138000".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def load_clients(
    con: Any,
    path: Path,
    hasher: KeyedHasher,
    source_id: str,
    on_batch: Callable[[int], None] | None = None,
) -> ClientsLoad:
    """Load a new client master into the ``clients_staging`` table of ``con``.

    Each batch commits on its own (a 10-million-row master held in one transaction
    would sit in memory); the caller then makes it current in one short transaction
    with :func:`swap_in_clients`. A crash in between leaves only a stale staging
    table, which the next load replaces.
    """
    parser = ClientsParser()
    header, batches, rejected = parser.batches(path)
    columns = parser.columns(header, path)
    for column in columns[1:]:
        stored = f"{column.name}_h" if column.pii_kind else column.name
        sql_type = "BIGINT" if column.pii_kind else "VARCHAR"
        con.execute(f'ALTER TABLE clients ADD COLUMN IF NOT EXISTS "{stored}" {sql_type}')
        con.execute(
            "INSERT OR REPLACE INTO client_columns VALUES (?, ?, ?)",
            [column.name, "pii" if column.pii_kind else "attribute", column.pii_kind],
        )
    con.execute("CREATE OR REPLACE TABLE clients_staging AS SELECT * FROM clients WHERE false")
    con.execute("ALTER TABLE clients_staging ADD COLUMN line BIGINT")
    con.execute("ALTER TABLE clients_staging ADD COLUMN bad_utf8 BOOLEAN")

    sql, params = _hashing_query(columns, hasher)
    for first_line, table in batches:
        renamed = table.rename_columns([f"c{i}" for i in range(table.num_columns)])
        if not pa.types.is_binary(renamed.schema.field(0).type):
            renamed = pa.table(
                [c.cast(pa.binary()) for c in renamed.columns], names=renamed.column_names
            )
        lines = (
            first_line
            if isinstance(first_line, np.ndarray)
            else np.arange(first_line, first_line + renamed.num_rows, dtype=np.int64)
        )
        renamed = renamed.append_column("line", pa.array(lines, pa.int64()))
        con.register("batch", renamed)
        try:
            con.execute(sql, [*params, source_id])
        finally:
            con.unregister("batch")
        if on_batch:
            on_batch(renamed.num_rows)

    # Rows that cannot be kept: bad bytes, no id, duplicate id (the first is kept).
    # Aggregates rather than window functions: they spill to disk within the limit.
    problems = con.execute(
        """
        WITH dups AS (
          SELECT client_id, min(line) AS first_line FROM clients_staging
          WHERE NOT bad_utf8 AND client_id <> '' GROUP BY client_id HAVING count(*) > 1
        )
        SELECT line,
               CASE WHEN bad_utf8 THEN 'not valid UTF-8 (is the file in another encoding?)'
                    ELSE 'client_id is empty' END
        FROM clients_staging WHERE bad_utf8 OR client_id IS NULL OR client_id = ''
        UNION ALL
        SELECT n.line, 'duplicate client_id ' || n.client_id
                       || ' (first at line ' || d.first_line || ')'
        FROM clients_staging n JOIN dups d USING (client_id)
        WHERE n.line > d.first_line AND NOT n.bad_utf8
        ORDER BY 1
        """
    ).fetchall()
    rejected.extend(Rejected(reason=reason, line=line, raw=WITHHELD) for line, reason in problems)
    if problems:
        con.execute(
            "DELETE FROM clients_staging WHERE line IN (SELECT unnest(?::BIGINT[]))",
            [[line for line, _reason in problems]],
        )
    con.execute("ALTER TABLE clients_staging DROP COLUMN bad_utf8")
    con.execute("ALTER TABLE clients_staging DROP COLUMN line")
    kept = int(con.execute("SELECT count(*) FROM clients_staging").fetchall()[0][0])
    return ClientsLoad(stored=kept, rejected=rejected, columns=columns)


def swap_in_clients(con: Any) -> None:
    """Make the staged master current (inside the caller's transaction)."""
    con.execute("DROP TABLE clients")
    con.execute("ALTER TABLE clients_staging RENAME TO clients")


def _hashing_query(columns: list[ClientColumn], hasher: KeyedHasher) -> tuple[str, list[Any]]:
    """INSERT ... SELECT over the registered ``batch``, in layers so that each value
    is decoded, normalised and hashed once (DuckDB does not share repeated
    sub-expressions)."""
    decoded = [
        f"try(decode(c{i})) AS t{i}, c{i} IS NOT NULL AS has{i}" for i in range(len(columns))
    ]
    prepared, normalized, hashed, targets = [], [], [], []
    params: list[Any] = []
    for i, column in enumerate(columns):
        prepared.append(f"has{i} AND t{i} IS NULL AS bad{i}")
        if column.name == "client_id":
            prepared.append(f"trim(t{i}) AS n{i}")
            normalized.append(f"n{i}")
            hashed.append(f"n{i}")
            targets.append("client_id")
            continue
        if column.pii_kind == "phone":
            digits, plus = sql_phone_parts(f"t{i}")
            prepared.append(f"{digits} AS d{i}, {plus} AS p{i}")
            normalized.append(f"{sql_phone_from_parts(f'd{i}', f'p{i}')} AS n{i}")
        elif column.pii_kind:
            prepared.append(f"{sql_normalize(column.pii_kind, f't{i}')} AS n{i}")
            normalized.append(f"n{i}")
        else:
            prepared.append(f"nullif(trim(t{i}), '') AS n{i}")
            normalized.append(f"n{i}")
        if column.pii_kind:
            expr, p = hasher.sql_hash(f"n{i}")
            hashed.append(expr)
            params.extend(p)
            targets.append(f'"{column.name}_h"')
        else:
            hashed.append(f"n{i}")
            targets.append(f'"{column.name}"')
    bad = " OR ".join(f"bad{i}" for i in range(len(columns)))
    flags = ", ".join(f"bad{i}" for i in range(len(columns)))
    sql = (
        f"INSERT INTO clients_staging ({', '.join(targets)}, source_id, line, bad_utf8) "
        f"SELECT {', '.join(hashed)}, ?, line, {bad} FROM ("
        f"  SELECT {', '.join(normalized)}, {flags}, line FROM ("
        f"    SELECT {', '.join(prepared)}, line FROM ("
        f"      SELECT {', '.join(decoded)}, line FROM batch)))"
    )
    # The source id's placeholder comes after the hashes' in the SELECT list.
    return sql, params
