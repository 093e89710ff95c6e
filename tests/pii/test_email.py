"""Email addresses: a domain whose last label is alphabetic."""

from __future__ import annotations

import pytest

from molehunt.pii.engine import default_engine

CASES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("wang@example.com", [("email", "wang@example.com", "medium")]),
    (
        "邮箱：wang.xm+ins@mail.example.com.cn",
        [("email", "wang.xm+ins@mail.example.com.cn", "high")],
    ),
    ("联系wang@example.com谢谢", [("email", "wang@example.com", "medium")]),
    ("ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ", [("email", "wang@example.com", "medium")]),
    ("a@b.c", []),
    ("user@host.123", []),
    ("no at sign.com", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_email_findings(text: str, expected: list[tuple[str, str, str]]) -> None:
    found = [(f.type, f.value, f.confidence) for f in default_engine().scan(text)]
    assert found == expected
