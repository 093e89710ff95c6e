"""Modules stay small (issue 15): none over 600 lines but the numba kernels, and in the
packages split for size no function over 80 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "molehunt"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
#: Modules exempt from the module-size rule besides the numba kernels.
EXEMPT = frozenset(
    {
        # Generated data tables (region codes and administrative divisions): long lists,
        # not code; splitting them would only scatter the data.
        "pii/recognizers/_region_codes.py",
        "pii/recognizers/_divisions.py",
    }
)
#: A numba kernel module imports numba (at module level or inside a function): its
#: compiled loops are kept together in one place, whatever their length.
NUMBA_IMPORT = re.compile(r"^\s*(?:import numba\b|from numba\b)", re.MULTILINE)
#: Packages and modules held to the function-length rule: those split for size.
SPLIT = [
    "ingest/postgres",
    "pii/engine",
    "pii/files",
    "simulate/scenarios",
    "attribute/scoring.py",
    "attribute/groups.py",
]


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _all_modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _is_numba_kernel(path: Path) -> bool:
    return NUMBA_IMPORT.search(path.read_text("utf-8")) is not None


def _sized_modules() -> list[Path]:
    return [p for p in _all_modules() if _name(p) not in EXEMPT and not _is_numba_kernel(p)]


def _split_modules() -> list[Path]:
    found: list[Path] = []
    for entry in SPLIT:
        path = ROOT / entry
        found += [path] if path.suffix == ".py" else sorted(path.glob("*.py"))
    return found


def _lines(path: Path) -> int:
    return len(path.read_text("utf-8").splitlines())


def _long_functions(text: str) -> list[str]:
    long = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_FUNCTION_LINES:
                long.append(f"{node.name}: {length} lines")
    return long


def test_the_modules_are_there() -> None:
    names = {_name(p) for p in _all_modules()}
    assert names >= EXEMPT, "an exempt module is gone: drop it from EXEMPT"
    assert len(_sized_modules()) >= 100
    assert len(_split_modules()) >= 25
    assert all(p.is_file() for p in _split_modules())


def test_the_numba_kernels_are_found() -> None:
    kernels = [_name(p) for p in _all_modules() if _is_numba_kernel(p)]
    assert "ingest/squid_cut.py" in kernels
    assert not NUMBA_IMPORT.search("import numpy as np\n# numba would be faster\n")
    assert NUMBA_IMPORT.search("def f():\n    from numba import njit\n")


@pytest.mark.parametrize("path", _sized_modules(), ids=_name)
def test_module_is_small(path: Path) -> None:
    assert _lines(path) <= MAX_MODULE_LINES, f"{_name(path)}: split it (issue 15)"


@pytest.mark.parametrize("path", _split_modules(), ids=_name)
def test_functions_are_small(path: Path) -> None:
    assert _long_functions(path.read_text("utf-8")) == []


def test_the_limits_bite() -> None:
    """The checks above fail on a module or a function over the limit."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert _long_functions(f"def f() -> None:\n{body}\n") == [f"f: {MAX_FUNCTION_LINES + 1} lines"]
    assert _long_functions(f"def f() -> None:\n{body[: body.rindex(chr(10))]}\n") == []
