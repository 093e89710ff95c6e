"""Chinese phone numbers as phonenumbers (libphonenumber's Python port) writes and
types them: precision and recall of mobiles and landlines in every common writing.

Expected values are phonenumbers': ``is_valid_number`` and ``number_type`` decide
what a number is, ``format_number`` writes it (E.164, international, national);
the other writings (hyphens for spaces, 0086 for +86, the area code in
parentheses) are made from those. Numbers: phonenumbers' example number of each
type, one per four-digit mobile prefix, and landlines on every area code head.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from functools import cache

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from molehunt.pii.engine import default_engine

MOBILE, LANDLINE = "china_mobile", "china_landline"
KINDS = {
    PhoneNumberType.MOBILE: MOBILE,
    PhoneNumberType.FIXED_LINE: LANDLINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: LANDLINE,
}


def writings(number: phonenumbers.PhoneNumber) -> list[str]:
    """The ways people write ``number``, from phonenumbers' own formats."""
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    out = [e164, international, national, international.replace(" ", "-")]
    out.append("00" + international[1:])  # 0086 21 6345 6789
    out.append("00" + e164[1:])  # 00862163456789
    out.append(national.replace(" ", ""))  # 02163456789, 13123456789
    out.append(national.replace(" ", "-"))  # 021-6345-6789, 131-2345-6789
    if national.startswith("0"):  # a landline: area code, then the subscriber
        area, _, rest = national.partition(" ")
        subscriber = rest.replace(" ", "")
        out += [f"({area}){subscriber}", f"({area}) {subscriber}", f"{area}-{subscriber}"]
        out += [f"{area} {subscriber}", f"+86 {area[1:]} {subscriber}"]
    else:  # a mobile: 11 digits
        digits = national.replace(" ", "")
        out += [f"0086 {digits}", f"+86 {digits}", f"+86-{digits}"]
    return out


@cache
def corpus() -> list[tuple[str, str | None]]:
    """(writing, kind phonenumbers gives it or None) for every number."""
    rng = random.Random(13)
    numbers: list[phonenumbers.PhoneNumber] = []
    for kind in PhoneNumberType.values():
        example = phonenumbers.example_number_for_type("CN", kind)
        if example is not None:
            numbers.append(example)
    for prefix in range(1300, 2000):  # one per four-digit mobile prefix
        numbers.append(phonenumbers.parse(f"+86{prefix}{rng.randint(0, 9_999_999):07d}"))
    for head in [10, *range(20, 30)]:  # two-digit area codes: 8-digit subscribers
        numbers.append(
            phonenumbers.parse(f"+86{head}{rng.randint(2, 9)}{rng.randint(0, 10**7 - 1):07d}")
        )
    for head in range(300, 1000):  # three-digit area codes: 7 or 8 digits
        for size in (7, 8):
            subscriber = f"{rng.randint(2, 9)}{rng.randint(0, 10 ** (size - 1) - 1):0{size - 1}d}"
            numbers.append(phonenumbers.parse(f"+86{head}{subscriber}"))
    out: list[tuple[str, str | None]] = []
    for number in numbers:
        valid = phonenumbers.is_valid_number(number)
        said = KINDS.get(phonenumbers.number_type(number)) if valid else None
        out += [(w, said) for w in writings(number)]
    return out


def found_kinds() -> list[set[str]]:
    texts = [w for w, _ in corpus()]
    starts = [0]
    for t in texts:
        starts.append(starts[-1] + len(t) + 1)
    out: list[set[str]] = [set() for _ in texts]
    for f in default_engine().scan("\n".join(texts)):
        line = bisect.bisect_right(starts, f.start) - 1
        if f.start == starts[line] and f.end == starts[line] + len(texts[line].encode()):
            out[line].add(f.type)
        else:  # part of a writing: never right
            out[line].add("part:" + f.type)
    return out


def test_phones_precision_and_recall_against_phonenumbers() -> None:
    rows, found = corpus(), found_kinds()
    score: dict[str, Counter[str]] = {MOBILE: Counter(), LANDLINE: Counter()}
    wrong: list[tuple[str, str | None, set[str]]] = []
    for (text, truth), kinds in zip(rows, found, strict=True):
        for kind, counts in score.items():
            said = kind in kinds
            if said and truth == kind:
                counts["tp"] += 1
            elif said:
                counts["fp"] += 1
            elif truth == kind:
                counts["fn"] += 1
        if kinds - {truth}:
            wrong.append((text, truth, kinds))
    for kind, c in score.items():
        precision = c["tp"] / max(c["tp"] + c["fp"], 1)
        recall = c["tp"] / max(c["tp"] + c["fn"], 1)
        print(f"{kind}: {c['tp']} found, precision {precision:.4f} recall {recall:.4f}")
    assert score[MOBILE]["tp"] > 3000
    assert score[LANDLINE]["tp"] > 3000
    assert score[MOBILE]["fp"] == score[MOBILE]["fn"] == 0, wrong[:10]
    assert score[LANDLINE]["fp"] == score[LANDLINE]["fn"] == 0, wrong[:10]
    assert wrong == []


def test_phonenumbers_examples_in_their_own_formats() -> None:
    mobile = phonenumbers.example_number_for_type("CN", PhoneNumberType.MOBILE)
    landline = phonenumbers.example_number_for_type("CN", PhoneNumberType.FIXED_LINE)
    for number, kind in ((mobile, MOBILE), (landline, LANDLINE)):
        assert number is not None
        for text in writings(number):
            assert [f.type for f in default_engine().scan(text)] == [kind], text
