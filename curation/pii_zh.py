"""Presidio recognizers for Chinese personal data, run on NFKC-normalised text (full-width digits are ASCII).

- Mobiles (``1[3-9]`` + 9 digits, with or without separators or ``+86``), landlines (area code ``0xx``/``0xxx``,
  400/800 numbers): no word boundary is needed next to Chinese characters, only no digit.
- 身份证 numbers: 18 characters, a real date of birth and a valid ISO 7064 check digit (an ID number that also
  passes Luhn is an ID, never a card).
- Bank cards (UnionPay and others): 16-19 digits that pass Luhn, or any such number after a card cue (卡号).
- Addresses: a road, street or compound with a number, plus the province / city / district / town before it
  and the building, unit and room after it, read as a whole (never half).
- Names: a cue (我叫, 联系人：, 收件人, 姓名：, …先生 / 女士) or a surname followed by a given name that a
  small logistic model (``zh_names.json``, trained by :func:`train_name_model` on the public NER train
  splits named in benchmarks/RESULTS.md) scores as a name in its context.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import regex
from presidio_analyzer import EntityRecognizer, RecognizerResult

NAME_MODEL = Path(__file__).with_name("zh_names.json")

# --- phones, ID numbers, bank cards --------------------------------------------------------------------
_MOBILE = regex.compile(r"(?<![\d+])(?:(?:\+|00)?86[ \-]?)?1[3-9]\d(?:[ \-]?\d{4}){2}(?!\d)")
_LANDLINE = regex.compile(
    r"(?<![\d\-])(?:(?:\+|00)?86[ \-]?)?(?:\(0\d{2,3}\)[ \-]?|0\d{2,3}[ \-])?[2-9]\d{6,7}(?:[ \-]?(?:转|ext\.?)?\d{1,5})?"
    r"(?![\d\-])|(?<!\d)[48]00[ \-]?\d{3}[ \-]?\d{4}(?!\d)|(?<!\d)0(?:10|2\d|[3-9]\d\d)[2-9]\d{6,7}(?!\d)")
_PHONE_CUE = regex.compile(r"电话|手机|致电|拨打|联系|热线|座机|号码|tel|phone", regex.IGNORECASE)
_ID = regex.compile(r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
                    r"(?![\dA-Za-z])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_BANK_CARD = regex.compile(r"(?<![\d\-])\d{4}(?:[ \-]?\d{4}){2,3}(?:[ \-]?\d{1,3})?(?![\d\-])|(?<!\d)\d{16,19}(?!\d)")
_CARD_CUE = regex.compile(r"卡号|银行卡|信用卡|储蓄卡|借记卡|卡的?号|账号|帐号|转账|汇款|银联|card", regex.IGNORECASE)


def id_check_ok(value: str) -> bool:
    """The 18th character of a 身份证 number is an ISO 7064 MOD 11-2 check over the first 17."""
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def is_resident_id(digits: str) -> bool:
    return len(digits) == 18 and _ID.fullmatch(digits) is not None and id_check_ok(digits)


class ChineseNumberRecognizer(EntityRecognizer):
    """Mobiles, landlines (PHONE_NUMBER), 身份证 (CN_ID_CARD) and bank cards (CREDIT_CARD) in Chinese formats."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PHONE_NUMBER", "CN_ID_CARD", "CREDIT_CARD"],
                         name="ChineseNumberRecognizer", supported_language="zh")

    def load(self) -> None:
        """Patterns are module constants."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        from curation.pii_recognizers import luhn_ok

        results = []
        ids = []
        for m in _ID.finditer(text):
            if id_check_ok(m.group()):
                results.append(RecognizerResult("CN_ID_CARD", m.start(), m.end(), 0.95))
                ids.append((m.start(), m.end()))
        for m in _MOBILE.finditer(text):
            if not _inside(m.start(), m.end(), ids):
                results.append(RecognizerResult("PHONE_NUMBER", m.start(), m.end(), 0.9))
        for m in _LANDLINE.finditer(text):
            value = m.group()
            has_area = value.startswith(("0", "(", "+", "4", "8")) and regex.match(r"\(?0\d|[48]00|\+|00", value)
            cue = _PHONE_CUE.search(text, max(0, m.start() - 12), m.start()) is not None
            if (has_area or cue) and not _inside(m.start(), m.end(), ids):
                results.append(RecognizerResult("PHONE_NUMBER", m.start(), m.end(), 0.85 if has_area else 0.6))
        for m in _BANK_CARD.finditer(text):
            digits = regex.sub(r"\D", "", m.group())
            if not 16 <= len(digits) <= 19 or _inside(m.start(), m.end(), ids) or is_resident_id(digits):
                continue
            cue = _CARD_CUE.search(text, max(0, m.start() - 12), m.start()) is not None
            if luhn_ok(digits) or cue:
                results.append(RecognizerResult("CREDIT_CARD", m.start(), m.end(), 0.9 if cue else 0.8))
        return results


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < end and start < e for s, e in spans)


# --- addresses -----------------------------------------------------------------------------------------
PROVINCES = ("北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|"
             "四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门")
# A place name's characters: no punctuation, and none of the verbs and pronouns of the sentence around it,
# so "我住在北京市…" starts at 北京.
_PLACE_CHAR = r"[^\s\p{P}\p{S}\d的在住是到址寄送我你他她们从往去于请把给发收搬由向及或与和找了吗呢吧啊位]"
_NUMBER = r"(?:[甲乙丙丁]?\d{1,5}(?:[\-之]\d{1,4})?|[A-Za-z]|[一二三四五六七八九十]{1,3})"
_COMPONENT = (
    rf"(?:(?:{PROVINCES})(?:省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)?"
    rf"|{_PLACE_CHAR}{{1,7}}?(?:省|自治区|市|州|盟|地区|新区|开发区|区|县|旗|镇|乡|街道|社区|村)"
    rf"|{_PLACE_CHAR}{{1,7}}?(?:大街|大道|路|街|巷|胡同|弄|道)(?:[东西南北中]段)?"
    rf"|{_NUMBER}(?:号院|号楼|号|座|栋|幢|单元|室|层|楼|户)"
    rf"|{_PLACE_CHAR}{{1,8}}?(?:小区|花园|公寓|大厦|家园|新村|新城|苑|园|中心|广场|大楼|饭店|酒店|宾馆|市场)"
    rf"|(?<=[号座栋楼层])\d{{2,5}}(?!\d))")
_ADDRESS = regex.compile(
    rf"(?<!{_PLACE_CHAR})(?P<a>(?:{_COMPONENT})(?:[ \t]?(?:{_COMPONENT}))*)"
    r"(?P<tail>(?:[东西南北]侧|对面|附近|旁|内)?(?:[（(][^（()）\n]{1,24}[）)])?(?:[ \t]?\d{6}(?!\d))?)")
_PARTS = regex.compile(_COMPONENT)
_HAS_NUMBER = regex.compile(rf"{_NUMBER}(?:号院|号楼|号|座|栋|幢|单元|室|层|楼|户)")
_ROAD = regex.compile(r"(?:大街|大道|路|街|巷|胡同|弄|道)")


class ChineseAddressRecognizer(EntityRecognizer):
    """STREET_ADDRESS: a chain of address parts read as a whole (never half) — province, city, district, town,
    village, road, number, compound, building, unit, room, a postcode after it — e.g.
    ``北京市海淀区中关村大街27号院3号楼502室`` or ``河南省璐县清城马鞍山路x座 917812``. A chain counts as an
    address when it has a house number, or a road with another part, or three parts down to a town or village;
    a bare city or district ("北京市海淀区") identifies no one and is left alone."""

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
            if _HAS_NUMBER.search(chain) and parts >= 2:
                score = 0.85
            elif _ROAD.search(chain) and parts >= 2 or parts >= 3 and regex.search(r"[镇乡村]|街道", chain):
                score = 0.7
            else:
                continue
            results.append(RecognizerResult("STREET_ADDRESS", m.start(), m.end(), score))
        return results


# --- names ---------------------------------------------------------------------------------------------
COMPOUND_SURNAMES = ("欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 西门 "
                     "百里 呼延 澹台 公冶 太史 申屠 闻人 万俟 钟离 宗政 濮阳 淳于 单于 赫连 拓跋").split()
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
_TITLE_AFTER = regex.compile(r"先生|女士|小姐|老师|经理|总监|医生|大夫|师傅|阿姨|叔叔|同学|律师|教授|主任|警官|老板|总(?![结共计体统])")
_HAN = regex.compile(r"\p{Han}")
# Characters of the standard transliteration of foreign names (克林顿, 萨马兰奇, 托马斯·皮克林).
TRANSLITERATION = set(
    "阿埃艾爱安昂奥巴拜班邦保鲍贝本比彼毕宾波伯勃博布查达戴丹道德迪蒂丁东杜多厄恩尔法菲费芬丰弗福富盖甘冈戈格根古"
    "瓜哈海汉豪赫亨胡华霍基吉加贾简杰金卡凯坎康柯科克肯库奎拉莱赖兰朗劳勒雷蕾里莉利丽连林琳隆卢鲁路伦罗洛吕马玛迈"
    "麦曼芒梅门蒙米敏莫默姆穆纳娜乃奈南内尼宁纽努诺欧帕派潘佩皮珀普奇齐恰乔切钦琼丘萨塞赛桑瑟森沙莎尚舍施什史斯"
    "松苏索塔泰坦汤唐特滕提图托瓦万旺威韦维温沃乌伍西希谢辛休雅亚扬耶伊因英尤约泽扎詹朱兹佐卓娅妮黛薇琪")
_TRANSLITERATED = regex.compile(r"[{0}]{{2,6}}(?:[·•・][{0}]{{1,6}})*".format("".join(sorted(TRANSLITERATION))))


def _char_type(ch: str) -> str:
    if not ch:
        return "edge"
    if _HAN.match(ch):
        return "han"
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        return "latin"
    return "space" if ch.isspace() else "punct"


def name_features(text: str, start: int, end: int, surname_len: int) -> list[str]:
    """What the name model reads about one candidate: the surname, the given name and its characters, the
    length, and the characters on either side."""
    given = text[start + surname_len:end]
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    prev, nxt = before[-1:], after[:1]
    if not surname_len:  # a transliterated foreign name: its first and last characters and its context
        return ["bias_t", f"t1={given[:1]}", f"tl={given[-1:]}", f"tlen={min(end - start, 6)}", f"tdot={'·' in given}",
                f"p1={prev}", f"p2={before}", f"n1={nxt}", f"n2={after}", f"pt={_char_type(prev)}",
                f"nt={_char_type(nxt)}"]
    return ["bias", f"s={text[start:start + surname_len]}", f"g={given}", f"g1={given[:1]}", f"gl={given[-1:]}",
            f"len={end - start}", f"p1={prev}", f"p2={before}", f"n1={nxt}", f"n2={after}",
            f"pt={_char_type(prev)}", f"nt={_char_type(nxt)}", f"gl_n1={given[-1:]}{nxt}", f"p1_s={prev}{text[start]}"]


def name_candidates(text: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, surname length) of every surname followed by a 1-2 character given name, all Han, and of
    every run of transliteration characters (surname length 0)."""
    for m in _TRANSLITERATED.finditer(text):
        if not regex.search(r"(.)\1", m.group()):  # "哈哈哈" is laughter, not a name
            yield m.start(), m.end(), 0
    surnames = known_surnames()
    for i, ch in enumerate(text):
        for surname_len in (2, 1):
            surname = text[i:i + surname_len]
            if len(surname) < surname_len or (surname_len == 2 and surname not in COMPOUND_SURNAMES) or \
                    (surname_len == 1 and ch not in surnames):
                continue
            for given_len in (1, 2):
                end = i + surname_len + given_len
                if end <= len(text) and all(_HAN.match(c) for c in text[i + surname_len:end]):
                    yield i, end, surname_len


@cache
def known_surnames() -> frozenset[str]:
    from faker.providers.person.zh_CN import Provider

    return frozenset(SURNAMES | {s for s in Provider.last_names if len(s) == 1})


@cache
def name_model() -> tuple[dict[str, float], float]:
    """The trained weights (feature -> weight) and the decision threshold on the probability."""
    data = json.loads(NAME_MODEL.read_text(encoding="utf-8"))
    return data["weights"], data["threshold"]


def name_probability(weights: dict[str, float], features: Iterable[str]) -> float:
    z = sum(weights.get(f, 0.0) for f in features)
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


class ChineseNameRecognizer(EntityRecognizer):
    """PERSON in Chinese text: cues (我叫, 联系人：, 姓名：, …先生), then surname + given name scored by the model."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name="ChineseNameRecognizer", supported_language="zh")

    def load(self) -> None:
        """The model is read on first use (``name_model``)."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        weights, threshold = name_model()
        scored = []
        cue_ends = {m.end() for m in _NAME_CUE.finditer(text)}
        for start, end, surname_len in name_candidates(text):
            p = name_probability(weights, name_features(text, start, end, surname_len))
            if start in cue_ends:
                p = max(p, 0.5 + p / 2)
            scored.append((p, start, end))
        for m in _TITLE_AFTER.finditer(text):  # 张先生, 李女士: the surname alone is the name
            start = m.start() - 1
            if start >= 0 and text[start] in known_surnames():
                scored.append((0.8, start, m.start()))
        for cue_end in cue_ends:  # 姓名：欧阳娜娜 / 联系人：Wendy: whatever name-shaped follows a form field
            m = regex.match(r"\p{Han}{2,4}(?=[\s，,。；;、)）]|$)", text[cue_end:])
            if m and text[cue_end - 1] in ":：":
                scored.append((0.75, cue_end, cue_end + m.end()))
        results, taken = [], []
        for p, start, end in sorted(scored, key=lambda c: (-c[0], c[1])):
            if p < threshold or _inside(start, end, taken):
                continue
            taken.append((start, end))
            # The model's threshold becomes 0.5, the scrubber's default for PERSON.
            results.append(RecognizerResult("PERSON", start, end, round(0.5 + (p - threshold) / (1 - threshold) / 2, 3)))
        return results


def train_name_model(data: Path, out: Path = NAME_MODEL) -> dict[str, float]:
    """Fit the name model on public Chinese NER training splits and write ``zh_names.json``.

    Positives are candidates that are exactly a labelled person name; every other candidate is a negative.
    Fit on CLUENER2020 train (name), Weibo NER train (PER.NAM), MSRA val and People's Daily dev (PER), plus the
    unlabelled ordinary chat of LCCC toy_train and the BQ / LCQMC dev questions as negatives, minus a tenth
    chosen by hash, on which the threshold is set (F-beta with recall weighed double)."""
    import hashlib

    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    sentences = []
    for row in map(json.loads, (data / "cluener2020" / "train.json").open(encoding="utf-8")):
        spans = {(s, e + 1) for places in row["label"].get("name", {}).values() for s, e in places}
        sentences.append((row["text"], spans))
    for path, label in ((data / "weibo_ner" / "train.jsonl", "PER.NAM"), (data / "msra_ner" / "val.jsonl", "PER"),
                        (data / "peoples_daily_ner" / "dev.jsonl", "PER")):
        for row in map(json.loads, path.open(encoding="utf-8")):
            sentences.append((row["text"], {(s["start"], s["end"]) for s in row["spans"] if s["label"] == label}))
    # Ordinary chat and questions (dev-side splits only): their candidates are negatives, so "谢谢" or "高兴"
    # are words, not a surname and a given name. A few real names in them are noise the model can take.
    base = data / "zh_dialogue" / "lccc_cdial_toy" / "train.turns.jsonl"
    sentences += [(json.loads(line)["text"], set()) for line in base.open(encoding="utf-8")]
    for name in ("bq_corpus", "lcqmc"):
        for line in (data / "zh_questions" / name / "dev.tsv").open(encoding="utf-8"):
            sentences += [(cell, set()) for cell in line.rstrip("\n").split("\t")[:2]]
    fit, tune = [], []
    for text, spans in sentences:
        (tune if hashlib.sha1(text.encode()).digest()[0] < 26 else fit).append((text, spans))

    def examples(rows):
        xs, ys, keys = [], [], []
        for n, (text, spans) in enumerate(rows):
            for start, end, surname_len in name_candidates(text):
                xs.append(dict.fromkeys(name_features(text, start, end, surname_len), 1))
                ys.append(int((start, end) in spans))
                keys.append((n, start, end))
        return xs, ys, keys

    vectorizer = DictVectorizer()
    x_fit, y_fit, _ = examples(fit)
    model = LogisticRegression(C=0.5, max_iter=2000, class_weight={0: 1, 1: 3})
    model.fit(vectorizer.fit_transform(x_fit), y_fit)
    names = vectorizer.get_feature_names_out()
    weights = {f: round(float(w), 4) for f, w in zip(names, model.coef_[0], strict=True) if abs(w) >= 0.01}
    weights["bias"] = round(weights.get("bias", 0.0) + float(model.intercept_[0]), 4)
    x_tune, y_tune, _ = examples(tune)
    probs = [name_probability(weights, x) for x in x_tune]
    best = max((_f2(probs, y_tune, t), t) for t in [i / 20 for i in range(2, 19)])
    out.write_text(json.dumps({"threshold": best[1], "trained_on": "CLUENER2020 train name; Weibo NER train "
                               "PER.NAM; MSRA val PER; People's Daily dev PER; negatives: LCCC toy_train, BQ and "
                               "LCQMC dev (9/10 by sha1)",
                               "weights": dict(sorted(weights.items()))}, ensure_ascii=False, indent=0) + "\n",
                   encoding="utf-8")
    return weights


def _f2(probs: list[float], gold: list[int], threshold: float) -> float:
    tp = sum(p >= threshold and g for p, g in zip(probs, gold, strict=True))
    fp = sum(p >= threshold and not g for p, g in zip(probs, gold, strict=True))
    fn = sum(p < threshold and g for p, g in zip(probs, gold, strict=True))
    return 5 * tp / max(1, 5 * tp + 4 * fn + fp)


if __name__ == "__main__":
    import sys

    train_name_model(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/data"))
