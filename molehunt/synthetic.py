"""Made-up people: Chinese names, resident ID numbers, mobiles and home addresses.

Shared by the simulator (its client master and noise rows) and by canary records
(planted people no one has reason to read). Resident ID numbers follow GB 11643: a
real county code, a birth date, a sequence code (odd for men) and the MOD 11-2 check
digit. Mobile numbers use prefixes allocated to Chinese carriers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

#: Common surnames (hanzi, pinyin, relative frequency).
SURNAMES: tuple[tuple[str, str, int], ...] = (
    ("王", "wang", 72), ("李", "li", 71), ("张", "zhang", 68), ("刘", "liu", 52),
    ("陈", "chen", 45), ("杨", "yang", 32), ("黄", "huang", 24), ("赵", "zhao", 20),
    ("吴", "wu", 19), ("周", "zhou", 19), ("徐", "xu", 14), ("孙", "sun", 13),
    ("马", "ma", 12), ("朱", "zhu", 11), ("胡", "hu", 10), ("郭", "guo", 10),
    ("何", "he", 9), ("林", "lin", 9), ("高", "gao", 9), ("罗", "luo", 8),
    ("郑", "zheng", 8), ("梁", "liang", 7), ("谢", "xie", 6), ("宋", "song", 6),
    ("唐", "tang", 6), ("许", "xu", 5), ("韩", "han", 5), ("冯", "feng", 5),
    ("邓", "deng", 5), ("曹", "cao", 5), ("彭", "peng", 4), ("曾", "zeng", 4),
    ("肖", "xiao", 4), ("田", "tian", 4), ("董", "dong", 4), ("袁", "yuan", 4),
    ("潘", "pan", 3), ("于", "yu", 3), ("蒋", "jiang", 3), ("蔡", "cai", 3),
    ("余", "yu", 3), ("杜", "du", 3), ("叶", "ye", 3), ("程", "cheng", 3),
    ("苏", "su", 3), ("魏", "wei", 3), ("吕", "lv", 3), ("丁", "ding", 3),
    ("沈", "shen", 3), ("顾", "gu", 2), ("钱", "qian", 2), ("陆", "lu", 2),
)  # fmt: skip

#: Characters used in given names, with their pinyin.
GIVEN: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
    ("丽", "li"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"),
    ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"), ("涛", "tao"),
    ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"),
    ("刚", "gang"), ("桂", "gui"), ("英", "ying"), ("华", "hua"), ("建", "jian"),
    ("文", "wen"), ("辉", "hui"), ("玲", "ling"), ("红", "hong"), ("鹏", "peng"),
    ("宇", "yu"), ("浩", "hao"), ("欣", "xin"), ("怡", "yi"), ("婷", "ting"),
    ("雪", "xue"), ("晨", "chen"), ("阳", "yang"), ("博", "bo"), ("佳", "jia"),
    ("子", "zi"), ("涵", "han"), ("梓", "zi"), ("轩", "xuan"), ("思", "si"),
    ("嘉", "jia"), ("俊", "jun"), ("晓", "xiao"), ("亮", "liang"), ("海", "hai"),
    ("峰", "feng"), ("琳", "lin"), ("凯", "kai"), ("颖", "ying"), ("萍", "ping"),
    ("斌", "bin"), ("慧", "hui"), ("春", "chun"), ("志", "zhi"), ("国", "guo"),
    ("云", "yun"), ("东", "dong"), ("蕾", "lei"), ("倩", "qian"), ("飞", "fei"),
    ("雯", "wen"), ("昊", "hao"), ("瑶", "yao"), ("天", "tian"), ("林", "lin"),
)  # fmt: skip

#: County-level division codes (GB/T 2260) that appear in resident ID numbers.
REGIONS: tuple[tuple[str, str], ...] = (
    ("110101", "北京市东城区"), ("110102", "北京市西城区"), ("110105", "北京市朝阳区"),
    ("110106", "北京市丰台区"), ("110108", "北京市海淀区"), ("310101", "上海市黄浦区"),
    ("310104", "上海市徐汇区"), ("310105", "上海市长宁区"), ("310106", "上海市静安区"),
    ("310107", "上海市普陀区"), ("310109", "上海市虹口区"), ("310110", "上海市杨浦区"),
    ("310112", "上海市闵行区"), ("310113", "上海市宝山区"), ("310114", "上海市嘉定区"),
    ("310115", "上海市浦东新区"), ("310116", "上海市金山区"), ("310117", "上海市松江区"),
    ("310118", "上海市青浦区"), ("310120", "上海市奉贤区"), ("310151", "上海市崇明区"),
    ("320102", "南京市玄武区"), ("320104", "南京市秦淮区"), ("320106", "南京市鼓楼区"),
    ("320505", "苏州市虎丘区"), ("320506", "苏州市吴中区"), ("320508", "苏州市姑苏区"),
    ("320211", "无锡市滨湖区"), ("330102", "杭州市上城区"), ("330106", "杭州市西湖区"),
    ("330108", "杭州市滨江区"), ("330203", "宁波市海曙区"), ("330302", "温州市鹿城区"),
    ("340102", "合肥市瑶海区"), ("340104", "合肥市蜀山区"), ("350102", "福州市鼓楼区"),
    ("350203", "厦门市思明区"), ("360102", "南昌市东湖区"), ("370102", "济南市历下区"),
    ("370202", "青岛市市南区"), ("410102", "郑州市中原区"), ("410105", "郑州市金水区"),
    ("420102", "武汉市江岸区"), ("420106", "武汉市武昌区"), ("430102", "长沙市芙蓉区"),
    ("430104", "长沙市岳麓区"), ("440103", "广州市荔湾区"), ("440106", "广州市天河区"),
    ("440304", "深圳市福田区"), ("440305", "深圳市南山区"), ("510104", "成都市锦江区"),
    ("510107", "成都市武侯区"),
)  # fmt: skip

#: The insurer's branches: city, districts and roads for home addresses.
BRANCHES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("SH-PD", "上海市", ("浦东新区", "闵行区", "徐汇区", "杨浦区", "宝山区"),
     ("张杨路", "世纪大道", "浦东南路", "东方路", "金科路", "龙阳路")),
    ("SH-PX", "上海市", ("普陀区", "静安区", "长宁区", "嘉定区", "虹口区"),
     ("曹杨路", "武宁路", "延安西路", "天山路", "真北路", "四川北路")),
    ("NJ", "南京市", ("玄武区", "秦淮区", "鼓楼区", "建邺区"),
     ("中山路", "汉中路", "龙蟠路", "集庆路", "江东中路")),
    ("HZ", "杭州市", ("上城区", "西湖区", "滨江区", "拱墅区"),
     ("文三路", "延安路", "江南大道", "莫干山路", "解放路")),
    ("SZ", "苏州市", ("姑苏区", "吴中区", "虎丘区", "工业园区"),
     ("人民路", "干将路", "东环路", "星湖街", "长江路")),
)  # fmt: skip
BRANCH_WEIGHTS = (0.32, 0.28, 0.14, 0.14, 0.12)

PRODUCTS = ("life", "health", "auto", "property", "annuity", "accident")

#: Mobile prefixes allocated to China Mobile, Unicom and Telecom, with weights.
MOBILE_PREFIXES: tuple[tuple[int, int], ...] = (
    (130, 4), (131, 4), (132, 3), (133, 3), (135, 6), (136, 6), (137, 6), (138, 7),
    (139, 7), (150, 5), (151, 4), (152, 4), (153, 3), (155, 3), (156, 3), (157, 3),
    (158, 5), (159, 5), (166, 2), (173, 2), (176, 2), (177, 2), (178, 2), (180, 3),
    (181, 3), (182, 3), (183, 3), (185, 3), (186, 4), (187, 4), (188, 3), (189, 4),
    (191, 2), (198, 2), (199, 2),
)  # fmt: skip

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = "10X98765432"


def check_digit(first17: str) -> str:
    """The GB 11643 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(d) * int(w) for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def valid_id_number(number: str) -> bool:
    """Whether an 18-character resident ID has a known region, a real birth date
    and the right check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    if number[:6] not in {code for code, _ in REGIONS}:
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return check_digit(number[:17]) == number[17]


@dataclass(frozen=True, slots=True)
class People:
    """A block of made-up people (clients, or noise rows that are no client)."""

    names: list[str]
    id_numbers: list[str]
    mobiles: list[str]
    addresses: list[str]
    branches: npt.NDArray[np.int64]
    products: npt.NDArray[np.int64]


def _surname_table() -> tuple[npt.NDArray[np.float64], list[str]]:
    weights = np.array([w for _, _, w in SURNAMES], dtype=np.float64)
    return weights / weights.sum(), [s for s, _, _ in SURNAMES]


def make_people(rng: np.random.Generator, n: int, as_of: date) -> People:
    """``n`` people: names, valid resident IDs (aged 18 to 80), mobiles, addresses."""
    surname_p, surnames = _surname_table()
    s_idx = rng.choice(len(surnames), size=n, p=surname_p)
    g1 = rng.integers(0, len(GIVEN), size=n)
    g2 = rng.integers(0, len(GIVEN), size=n)
    two = rng.random(n) < 0.7
    names = [
        surnames[s] + GIVEN[a][0] + (GIVEN[b][0] if t else "")
        for s, a, b, t in zip(s_idx.tolist(), g1.tolist(), g2.tolist(), two.tolist(), strict=True)
    ]
    # Resident IDs: region digits, birth date digits, sequence, check digit.
    region = rng.integers(0, len(REGIONS), size=n)
    region_digits = np.array([[int(c) for c in code] for code, _ in REGIONS], dtype=np.int64)
    newest = np.datetime64(as_of.replace(year=as_of.year - 18), "D")
    oldest = np.datetime64(as_of.replace(year=as_of.year - 80), "D")
    span = int((newest - oldest).astype(np.int64))
    birth = oldest + rng.integers(0, span, size=n).astype("timedelta64[D]")
    birth_text = np.datetime_as_string(birth, unit="D")
    birth_digits = (
        np.frombuffer("".join(birth_text.tolist()).replace("-", "").encode(), dtype=np.uint8)
        .reshape(n, 8)
        .astype(np.int64)
        - 48
    )
    seq = rng.integers(0, 1000, size=n)
    seq_digits = np.stack([seq // 100, seq // 10 % 10, seq % 10], axis=1)
    digits = np.concatenate([region_digits[region], birth_digits, seq_digits], axis=1)
    check = (digits @ ID_WEIGHTS) % 11
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, :17] = digits + 48
    chars[:, 17] = np.frombuffer(CHECK_CHARS.encode(), dtype=np.uint8)[check]
    id_numbers = [b.decode() for b in chars.view("S18").reshape(n).tolist()]
    # Mobiles.
    prefixes = np.array([p for p, _ in MOBILE_PREFIXES], dtype=np.int64)
    weights = np.array([w for _, w in MOBILE_PREFIXES], dtype=np.float64)
    prefix = rng.choice(prefixes, size=n, p=weights / weights.sum())
    mobiles = (prefix * 10**8 + rng.integers(0, 10**8, size=n)).astype(str).tolist()
    # Addresses in the city of the client's branch, down to the room.
    branch = rng.choice(len(BRANCHES), size=n, p=np.array(BRANCH_WEIGHTS))
    district = rng.integers(0, 64, size=n)
    road = rng.integers(0, 64, size=n)
    number = rng.integers(1, 2000, size=n)
    lane = rng.integers(1, 60, size=n)
    floor = rng.integers(1, 33, size=n)
    room = rng.integers(1, 5, size=n)
    addresses: list[str] = []
    for b, d, r, num, ln, fl, rm in zip(
        branch.tolist(),
        district.tolist(),
        road.tolist(),
        number.tolist(),
        lane.tolist(),
        floor.tolist(),
        room.tolist(),
        strict=True,
    ):
        _code, city, districts, roads = BRANCHES[b]
        addresses.append(
            f"{city}{districts[d % len(districts)]}{roads[r % len(roads)]}"
            f"{num}弄{ln}号{fl}{rm:02d}室"
        )
    products = rng.integers(0, len(PRODUCTS), size=n)
    return People(names, id_numbers, mobiles, addresses, branch, products)
