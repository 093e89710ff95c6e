"""Chinese personal names."""

from __future__ import annotations

from typing import ClassVar

from molehunt.pii.recognizers.base import BaseRecognizer, Pattern

#: The most common Chinese surnames (about 85% of the population), single and double.
SURNAMES: tuple[str, ...] = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
    "郭", "何", "林", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
    "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏",
    "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金",
    "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹",
    "薛", "闫", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵",
    "万", "钱", "严", "覃", "武", "戴", "莫", "孔", "向", "汤", "欧阳", "司马", "诸葛", "上官",
)  # fmt: skip

#: Labels after which a name follows in forms and free text.
LABELS: tuple[str, ...] = (
    "姓名", "客户姓名", "客户名称", "联系人", "投保人", "被保险人", "被保人", "受益人",
    "户名", "收件人", "持卡人",
)  # fmt: skip

_SURNAME = "(?:" + "|".join(SURNAMES) + ")"
#: A whole cell holding a name (spreadsheets): surname and one or two characters.
CELL_REGEX = f"^{_SURNAME}{{HAN}}{{1,2}}$"


class ChineseNameRecognizer(BaseRecognizer):
    """Chinese name: after a label in text (``姓名：王小明``), or in a column headed as
    names or mostly made of common surnames and one or two characters (spreadsheets)."""

    name: ClassVar[str] = "chinese_name"
    description: ClassVar[str] = "Chinese personal name (after a label, or in a name column)"
    patterns: ClassVar[tuple[Pattern, ...]] = (
        # Both colons spelled out: text need not be folded for a label's colon.
        Pattern(f"(?:{'|'.join(LABELS)})(?::|：)?[ ]?{_SURNAME}(?:{{HAN}}){{1,2}}"),
    )
    context: ClassVar[tuple[str, ...]] = LABELS
    header_words: ClassVar[tuple[str, ...]] = (
        "姓名", "名字", "客户名称", "联系人", "投保人", "被保险人", "name", "full_name",
        "client_name",
    )  # fmt: skip
    normalizer: ClassVar[str] = "text"

    def value(self, matched: str) -> str:
        for label in sorted(LABELS, key=len, reverse=True):
            if matched.startswith(label):
                return matched[len(label) :].lstrip(":： ")
        return matched
