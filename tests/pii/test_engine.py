"""The Hyperscan engine against its Python ``re`` reference, and stream mode."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from molehunt.pii.engine import (
    CONFIDENCES,
    CONTEXT_BYTES,
    Engine,
    char_offsets,
    default_engine,
    fold_bytes,
    mask,
)
from molehunt.pii.recognizers import RECOGNIZERS
from molehunt.synthetic import check_digit

VALID_ID = "11010519491231002X"
#: Pieces that make matches, near-matches and their surroundings likely.
PIECES = [
    VALID_ID, VALID_ID[:-1] + "1", "110105491231002", "13800138000", "138-0013-8000",
    "+8613800138000", "021-62345678", "6222021234567890128", "4111111111111111", "E12345678",
    "wang.xm@example.com", "@", ".", "a", "Z", "x", "-", " ", "\n", "：", "0", "1", "9", "X",
    "１３８", "Ｘ", "身份证号", "手机", "电话", "ID", "mobile", "住址", "上海市", "浦东新区",
    "张杨路", "123", "弄", "4号", "1203室", "姓名", "王", "小明", "欧阳", "，", "。", "中",
    "é", "😀", "（", "）", "＠", "．", "－", "０２１", "ｅ", "＿",
]  # fmt: skip


def _valid_id(rng: random.Random) -> str:
    first = "310115" + f"{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}"
    first += f"{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return first + check_digit(first)


texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_hyperscan_and_re_find_the_same_spans(text: str) -> None:
    engine = default_engine()
    assert engine.scan(text) == engine.reference_scan(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_scans_alike_and_never_raises(text: str) -> None:
    engine = default_engine()
    assert engine.scan(text) == engine.reference_scan(text)


def _corpus(seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(300):
        lines.append(
            f"客户{rng.randint(1, 9999)}，身份证号：{_valid_id(rng)}，手机 1{rng.choice('3589')}"
            f"{rng.randint(0, 999999999):09d}，住址：上海市浦东新区张杨路{rng.randint(1, 999)}号"
            f"，邮箱 u{rng.randint(1, 99)}@example.com，噪声 {rng.randint(0, 10**30)}"
        )
    return "\n".join(lines)


def test_stream_cut_at_random_offsets_finds_what_block_mode_finds() -> None:
    engine = default_engine()
    body = _corpus(7).encode("utf-8")
    expected = engine.scan(body)
    assert len(expected) >= 900
    rng = random.Random(11)
    for _ in range(40):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 300)))
        stream = engine.stream()
        previous = 0
        for cut in [*cuts, len(body)]:
            stream.feed(body[previous:cut])
            previous = cut
        assert stream.close() == expected


def test_stream_cut_inside_a_full_width_digit_still_folds_it() -> None:
    engine = default_engine()
    body = "手机：１３８００１３８０００".encode()
    expected = engine.scan(body)
    assert [f.value for f in expected] == ["13800138000"]
    for cut in range(1, len(body)):
        stream = engine.stream()
        stream.feed(body[:cut])
        stream.feed(body[cut:])
        assert stream.close() == expected


def test_findings_are_independent_of_what_else_is_registered() -> None:
    only_ids = Engine({"china_resident_id": RECOGNIZERS["china_resident_id"]})
    text = f"身份证 {VALID_ID} 手机 13800138000"
    assert [f.type for f in only_ids.scan(text)] == ["china_resident_id"]
    assert [f.type for f in default_engine().scan(text)] == ["china_resident_id", "china_mobile"]


def test_long_digit_noise_yields_nothing() -> None:
    assert default_engine().scan("7" * 100_000 + VALID_ID + "8" * 1000) == []


def test_character_offsets_count_chinese_characters_as_one() -> None:
    text = "姓名王五，身份证号：" + VALID_ID
    data = fold_bytes(text.encode())
    (found,) = [f for f in default_engine().scan(data) if f.type == "china_resident_id"]
    start = char_offsets(data, np.array([found.start]))[0]
    assert text[start : start + 18] == VALID_ID


_FULL_WIDTH = re.compile(rb"\xef\xbc[\x81-\xbf]|\xef\xbd[\x80-\x9e]")


def _fold_reference(data: bytes) -> bytes:
    return _FULL_WIDTH.sub(lambda m: bytes([m[0][2] - (0x60 if m[0][1] == 0xBC else 0x20)]), data)


#: Bytes of full-width characters, their neighbours in UTF-8, and whole characters.
FOLD_PIECES = [
    b"\xef", b"\xbc", b"\xbd", b"\x80", b"\x81", b"\x9e", b"\x9f", b"\xbf", b"a", b"\n",
    *(c.encode() for c in "，：１Ｘｚ～中"),
]  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(FOLD_PIECES), max_size=30).map(b"".join))
def test_vectorised_folding_matches_a_substitution(data: bytes) -> None:
    assert fold_bytes(data) == _fold_reference(data)


def test_digit_patterns_leave_hyperscan_only_in_block_mode() -> None:
    engine = default_engine()
    fixed = sum(e.role == "fixed" for e in engine._exprs)
    assert fixed > 0
    assert len(engine._digit_runs) == fixed


def test_findings_never_show_the_clear_value() -> None:
    found = default_engine().scan("身份证号：" + VALID_ID)
    assert VALID_ID not in repr(found)
    assert mask(VALID_ID) == "110***********002X"


#: Every context word of every recognizer, beside values they raise.
CONTEXT_PIECES = sorted(
    {w for cls in RECOGNIZERS.values() for w in cls.context}
    | {VALID_ID, "13800138000", "021-62345678", "E12345678", "号", "码", " ", "x", "_", "\n"}
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(CONTEXT_PIECES), max_size=30).map("".join))
def test_context_words_found_apart_from_hyperscan_match_the_reference(text: str) -> None:
    engine = default_engine()
    assert engine.scan(text) == engine.reference_scan(text)


@pytest.mark.parametrize("word", ["身份证号", "证件号码"])
def test_a_longer_context_word_counts_where_only_its_end_is_in_reach(word: str) -> None:
    # The word ends exactly CONTEXT_BYTES before the ID; its shorter prefix ends 3
    # bytes earlier, out of reach: only the longer word can raise the confidence.
    text = word + "x" * CONTEXT_BYTES + VALID_ID
    engine = default_engine()
    (found,) = engine.scan(text)
    assert found.confidence == "high"
    assert engine.scan(text) == engine.reference_scan(text)
    assert engine.scan(word[:-1] + "x" * (CONTEXT_BYTES + 1) + VALID_ID)[0].confidence == "medium"


def test_a_column_of_addresses_joined_by_newlines_matches_the_reference() -> None:
    rng = random.Random(3)
    cities, districts = ["上海市", "北京市", "浙江省杭州市"], ["浦东新区", "西湖区", ""]
    cells = [
        f"{rng.choice(cities)}{rng.choice(districts)}{rng.choice(['张杨路', '文三路'])}"
        f"{rng.randint(1, 999)}{rng.choice('号弄')}{rng.choice(['', '4号', '1203室'])}"
        for _ in range(300)
    ]
    text = "\n".join(cells)
    engine = default_engine()
    found = engine.scan(text)
    assert [f.type for f in found] == ["china_address"] * len(cells)
    assert found == engine.reference_scan(text)


@pytest.mark.parametrize(
    "text",
    [
        # Email starts are found from the match's end (block mode): long local parts,
        # several @, adjacent and nested candidates.
        "x" * 300 + "@example.com",
        "y" * (254) + "@a.bc " + "z" * 255 + "@a.bc",
        "a@b.com@c.org, wang.xm@example.com.cn; @x.y a.b@c.d.e f@g.hi",
        "客户邮箱：u1@example.com，u2@example.com\nmail:u3@ex-ample.co",
        # Digit runs past 255 digits beside real numbers.
        "1" * 300 + " 13800138000 " + "2" * 256 + "\n11010519491231002X" + "3" * 255,
        "5" * 255 + "," + "6" * 254 + " 021-62345678 " + VALID_ID,
    ],
)
def test_edge_texts_match_the_reference(text: str) -> None:
    engine = default_engine()
    assert engine.scan(text) == engine.reference_scan(text)
    body = text.encode()
    stream = engine.stream()
    for i in range(0, len(body), 97):
        stream.feed(body[i : i + 97])
    assert stream.close() == engine.scan(text)


@pytest.mark.parametrize(
    ("text", "confident"),
    [
        ("", False),
        ("上海市浦东新区张杨路500号", False),  # address alone: low
        ("住址：上海市浦东新区张杨路500号", True),  # with a context word: medium
        ("13800138000", True),  # a checksum kind: medium without looking further
        ("E12345678", False),  # passport alone: low
        ("护照号 E12345678", True),
    ],
)
def test_confident_weighs_context_only_when_needed(text: str, confident: bool) -> None:
    found = default_engine().find(text)
    assert found.confident() is confident
    assert bool((found.level > 0).any()) is confident


def test_levels_weighed_later_equal_those_of_objects() -> None:
    text = _corpus(5)
    engine = default_engine()
    found = engine.find(text)
    assert found.counts() == engine.find(text).counts()
    levels = [f.confidence for f in engine.scan(text)]
    assert [CONFIDENCES[lv] for lv in found.level.tolist()] == levels
    assert "high" in levels


#: (text, whether the scan may leave it unfolded: only full-width characters no
#: pattern, boundary or context word needs folded).
FULL_WIDTH_CASES = [
    ("姓名：王小明，身份证号：" + VALID_ID, True),
    # Full-width parentheses fold: landlines are written (021)62345678.
    ("联系人： 欧阳娜娜；电话（021）62345678", False),
    ("电话：（021）62345678，手机：13800138000！", False),
    ("联系人： 欧阳娜娜；电话：021-62345678", True),
    ("电话：（０２１）６２３４５６７８，０２１－６２３４５６７８", False),
    ("手机１３８００１３８０００，姓名：张伟", False),
    ("身份证 " + VALID_ID[:-1] + "Ｘ", False),
    ("邮箱：ｗａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ，", False),
    ("邮箱：wang＠example.com；wang@example．com", False),
    ("wang.xm@example.com，（备注）ID：" + VALID_ID, False),
    ("wang.xm@example.com，备注：ID：" + VALID_ID, True),
    ("ｉｄ：" + VALID_ID + " ｅ－ｍａｉｌ：a@b.cn", False),
]


@pytest.mark.parametrize(("text", "unfolded"), FULL_WIDTH_CASES)
def test_full_width_text_matches_the_reference_folded_or_not(text: str, unfolded: bool) -> None:
    engine = default_engine()
    data = text.encode()
    assert (engine._buffer(data)[1] is not None) is unfolded
    assert engine.scan(text) == engine.reference_scan(text)
    found = engine.find(data)
    assert len(found) > 0
    # Character offsets from what was scanned are those of the folded text.
    folded = fold_bytes(data)
    assert char_offsets(found.scanned, found.scanned_start).tolist() == (
        char_offsets(folded, found.start).tolist()
    )
    assert [CONFIDENCES[lv] for lv in found.level.tolist()] == [
        f.confidence for f in engine.reference_scan(text)
    ]


def test_only_characters_patterns_use_are_folded() -> None:
    significant = default_engine()._significant()
    assert set("0123456789@.+-_%XxEe()") <= set(significant)
    # The label colon is spelled out in both forms; Chinese punctuation other than
    # parentheses (a landline's area code) is never used.
    assert not set(":,;!?") & set(significant)
