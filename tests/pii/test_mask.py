"""Masking free text: identifiers masked in place wherever they sit, the rest untouched."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from molehunt.pii.engine import default_engine
from molehunt.pii.mask import mask_data, mask_text, mask_texts, might_hold_identifiers
from molehunt.pii.recognizers.china_mobile import PREFIX_DIGITS, allocated_prefixes
from molehunt.pii.recognizers.china_resident_id import CHECK_CHARS, WEIGHTS, region_table

ID = "11010519491231002X"  # checksum-valid
MOBILE = "13800138000"

CASES: list[tuple[str, str]] = [
    (
        f"SELECT * FROM clients WHERE id_number='{ID}'",
        "SELECT * FROM clients WHERE id_number='110***********002X'",
    ),
    (f"GET /api/clients?phone={MOBILE}&page=2", "GET /api/clients?phone=138****8000&page=2"),
    (f"/home/li_na/export_{MOBILE}.xlsx", "/home/li_na/export_138****8000.xlsx"),
    (f"tel:+86{MOBILE}", "tel:+86*******8000"),
    ("mobile 138-0013-8000 ok", "mobile 138******8000 ok"),
    ("手机１３８００１３８０００。", "手机１３８****８０００。"),
    ("card 6222021234567890128", "card 622************0128"),
    ("电话 021-62345678", "电话 021*****5678"),
    ("mail li.na@example.com", "mail l****@example.com"),
    ("客户姓名：王小明 已导出", "客户姓名：王** 已导出"),
    # Nothing to mask: invalid checksums and prefixes, IPs, times, counts.
    (
        "li_na from 10.2.3.4 app=crm SELECT 12000 rows",
        "li_na from 10.2.3.4 app=crm SELECT 12000 rows",
    ),
    ("id 110105194912310021 phone 12345678901", "id 110105194912310021 phone 12345678901"),
    ("2026-05-03T09:15:00+08:00 张三 登录", "2026-05-03T09:15:00+08:00 张三 登录"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_mask_text_masks_identifiers_in_place(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_mask_data_masks_every_string_inside() -> None:
    data = {"summary": f"phone {MOBILE}", "rows": 3, "events": [{"s": ID}], "ok": None}
    assert mask_data(data) == {
        "summary": "phone 138****8000",
        "rows": 3,
        "events": [{"s": "110***********002X"}],
        "ok": None,
    }


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    regions = _regions()
    region = int(regions[draw(st.integers(0, len(regions) - 1))])
    born = date(1940, 1, 1) + timedelta(days=draw(st.integers(0, 365 * 80)))
    serial = draw(st.integers(0, 999))
    body = f"{region:06d}{born:%Y%m%d}{serial:03d}"
    check = chr(CHECK_CHARS[int(np.array([int(c) for c in body]) @ WEIGHTS) % 11])
    return body + (check.lower() if check == "X" and draw(st.booleans()) else check)


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    prefixes = np.flatnonzero(allocated_prefixes())
    prefix = int(prefixes[draw(st.integers(0, len(prefixes) - 1))])
    rest = 11 - PREFIX_DIGITS
    number = f"{prefix}{draw(st.integers(0, 10**rest - 1)):0{rest}d}"
    style = draw(st.sampled_from(["plain", "grouped", "+86"]))
    if style == "grouped":
        sep = draw(st.sampled_from(["-", " "]))
        return f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"
    return "+86" + number if style == "+86" else number


@cache
def _regions() -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    return np.flatnonzero(region_table())


# What identifiers sit between in logs: quotes, SQL, URL and path punctuation, CJK.
SEPARATORS = st.sampled_from(
    [" ", "'", '"', "=", "/", "?", "&", "_", ",", ":", "(", "\n", "：", "号"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    left=SEPARATORS,
    right=SEPARATORS,
    value=st.one_of(resident_ids(), mobiles()),
)
def test_embedded_ids_and_mobiles_never_survive(
    before: str, after: str, left: str, right: str, value: str
) -> None:
    text = before + left + value + right + after
    masked = mask_text(text)
    assert value not in masked
    # Masks keep the length: the text around stays where it was.
    assert len(masked) == len(text)


@settings(max_examples=600, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("0123456789 -.@:/_=?&abcEGxyz+身份证１")),
        max_size=60,
    )
)
def test_text_without_identifiers_is_unchanged(text: str) -> None:
    found = default_engine().find(text)
    if len(found) == 0:
        assert mask_text(text) == text
    else:
        assert mask_text(text) != text


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789 -.@EGAB+x\n")), max_size=40))
def test_the_quick_filter_never_skips_an_identifier(text: str) -> None:
    assume(not might_hold_identifiers(text))
    assert len(default_engine().find(text)) == 0


PIECES = st.one_of(
    resident_ids(),
    mobiles(),
    st.sampled_from(
        [
            "li.na@example.com",
            "a@b",
            ".com",
            "上海市浦东新区",
            "世纪大道100号",
            "客户姓名：",
            "王小明",
        ]
    ),
    st.text(alphabet=st.sampled_from(list("0123456789 -.@:_\n号路区abc")), max_size=12),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(PIECES, max_size=4).map("".join), max_size=8))
def test_masking_many_texts_at_once_equals_masking_each(texts: list[str]) -> None:
    assert mask_texts(texts) == [mask_text(t) for t in texts]


def test_texts_whose_ends_would_join_into_findings_mask_as_alone() -> None:
    texts = ["地址上海市浦东新区", "世纪大道100号 手机13800138000", "li_na@", "example.com"]
    assert mask_texts(texts) == [mask_text(t) for t in texts]
    assert "13800138000" not in mask_texts(texts)[1]
