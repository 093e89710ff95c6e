"""``molehunt case``: new, add, show, list, close, export and verify from the command line."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path
from typing import Annotated

import typer
from typer.testing import CliRunner

from molehunt import audit
from molehunt.cli.case import case_app
from molehunt.config import Settings
from molehunt.store import Store


class _Obj:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def _app() -> typer.Typer:
    """The main app's shape: a callback that loads the settings, ``case`` under it."""
    app = typer.Typer()

    @app.callback()
    def main(
        ctx: typer.Context, db: Annotated[Path, typer.Option(help="Store file.")] = Path("x")
    ) -> None:
        ctx.obj = _Obj(Settings.load({"db": db}, environ={}, cwd=db.parent))

    app.add_typer(case_app, name="case")
    return app


APP = _app()


def _run(run: CliRunner, tmp_path: Path, *args: str) -> tuple[int, str]:
    result = run.invoke(APP, ["--db", str(tmp_path / "m.duckdb"), "case", *args])
    return result.exit_code, result.output


def test_case_lifecycle_through_the_cli(run: CliRunner, tmp_path: Path) -> None:
    code, output = _run(run, tmp_path, "new", "Leak of policy holders", "--team", "blue")
    assert code == 0, output
    case_id = output.strip()
    assert case_id.startswith("C-20")

    code, output = _run(run, tmp_path, "add", case_id, "--kind", "person", "--ref", "E001")
    assert (code, output.strip()) == (0, f"{case_id} #1")
    code, output = _run(
        run, tmp_path, "add", case_id, "--kind", "finding", "--ref", "f-1", "--note", "=1+1"
    )
    assert (code, output.strip()) == (0, f"{case_id} #2")
    # An event must be in the store (the case keeps its masked summary), as on the web.
    code, output = _run(run, tmp_path, "add", case_id, "--kind", "event", "--ref", "ev-1")
    assert (code, output.strip()) == (3, "error: no such event")
    code, output = _run(run, tmp_path, "add", case_id, "--kind", "rumour", "--ref", "x")
    assert code == 2  # invalid input
    assert "unknown item kind" in output

    code, output = _run(run, tmp_path, "show", case_id, "--json")
    assert code == 0, output
    shown = json.loads(output)
    assert [(i["seq"], i["kind"], i["ref"]) for i in shown["items"]] == [
        (1, "person", "E001"),
        (2, "finding", "f-1"),
    ]
    # `--format json` as for every other verb; `--json`, the old spelling, still works.
    code, output = _run(run, tmp_path, "show", case_id, "--format", "json")
    assert code == 0, output
    assert json.loads(output) == shown
    code, output = _run(run, tmp_path, "list", "--team", "blue", "--format", "json")
    assert [c["case_id"] for c in json.loads(output)] == [case_id]
    code, output = _run(run, tmp_path, "list", "--team", "blue", "-f", "json")
    assert [c["case_id"] for c in json.loads(output)] == [case_id]
    code, output = _run(run, tmp_path, "list", "--team", "red", "--json")
    assert json.loads(output) == []
    code, output = _run(run, tmp_path, "list", "--team", "blue", "--format", "table")
    assert case_id in output
    assert not output.lstrip().startswith("[")

    dest = tmp_path / "case.zip"
    code, output = _run(run, tmp_path, "export", case_id, "--out", str(dest))
    assert code == 0, output
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    names = set(zipfile.ZipFile(dest).namelist())
    assert names == {"items.csv", "items.xlsx", "events.csv", "manifest.json", "manifest.sig"}
    code, output = _run(run, tmp_path, "export", case_id, "--out", str(dest))
    assert code == 1
    assert "not overwritten" in output

    code, output = _run(run, tmp_path, "close", case_id)
    assert code == 0, output
    code, output = _run(run, tmp_path, "add", case_id, "--kind", "person", "--ref", "E002")
    assert code == 4  # a conflict: the case is closed
    assert "closed" in output
    code, output = _run(run, tmp_path, "close", case_id)
    assert (code, output.strip()) == (4, f"error: case {case_id} is already closed")

    with Store.open(tmp_path / "m.duckdb") as store:
        actions = [r["action"] for r in reversed(audit.entries(store))]
        assert audit.verify(store).broken_at is None
    # The service's rows, as the web writes them; each refusal is one row too.
    assert actions == [
        "case new",
        "case add",
        "case add",
        "refused",  # the unknown event
        "refused",  # the unknown kind
        "case view",
        "case view",  # shown twice: --json, then --format json
        "case list",
        "case list",
        "case list",
        "case list",
        "case export",
        "case close",
        "refused",  # an item for the closed case
        "refused",  # closing it again
    ]


def test_show_of_an_unknown_case_fails(run: CliRunner, tmp_path: Path) -> None:
    code, output = _run(run, tmp_path, "show", "C-2026-0042")
    assert code == 3  # not found
    assert output.strip() == "error: no such case"
    assert "Traceback" not in output


def test_verify_accepts_an_export_and_reports_a_changed_file(
    run: CliRunner, tmp_path: Path
) -> None:
    _, case_id = _run(run, tmp_path, "new", "t", "--team", "blue")
    _run(run, tmp_path, "add", case_id.strip(), "--kind", "person", "--ref", "E001")
    dest = tmp_path / "case.zip"
    _run(run, tmp_path, "export", case_id.strip(), "--out", str(dest))
    code, output = _run(run, tmp_path, "verify", str(dest))
    assert code == 0, output
    assert "every file matches" in output

    # items.csv rewritten with one byte changed; the manifest left as it was.
    src = zipfile.ZipFile(dest)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "items.csv":
                data = data.replace(b"E001", b"E002")
            dst.writestr(name, data)
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(out.getvalue())
    code, output = _run(run, tmp_path, "verify", str(tampered))
    assert code == 1
    assert "items.csv: SHA-256 differs from the manifest" in output
    code, output = _run(run, tmp_path, "verify", str(tmp_path / "missing.zip"))
    assert code == 1


def test_verify_with_the_store_refuses_another_stores_export(
    run: CliRunner, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.zip"
    _, case_id = _run(run, tmp_path, "new", "Leak", "--team", "blue")
    code, output = _run(run, tmp_path, "export", case_id.strip(), "--out", str(mine))
    assert code == 0, output
    code, output = _run(run, tmp_path, "verify", str(mine))
    assert code == 0, output
    assert "signed by the store" in output
    # Another store (its own signing key) makes an export that checks by itself...
    other = tmp_path / "other"
    other.mkdir()
    theirs = tmp_path / "theirs.zip"
    made = run.invoke(APP, ["--db", str(other / "o.duckdb"), "case", "new", "X", "--team", "b"])
    args = ["--db", str(other / "o.duckdb"), "case", "export", made.output.strip()]
    done = run.invoke(APP, [*args, "--out", str(theirs)])
    assert done.exit_code == 0, done.output
    alone = run.invoke(APP, ["--db", str(other / "none.duckdb"), "case", "verify", str(theirs)])
    assert alone.exit_code == 0, alone.output
    # ... but not against this store.
    code, output = _run(run, tmp_path, "verify", str(theirs))
    assert code == 1
    assert "not the store's signing key" in output
