"""PII scrubbing: surrogates, consistency, determinism, odd inputs, the CLI — with the network blocked."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest
from conftest import NetworkBlocked
from typer.testing import CliRunner

from curation.safety_data import benign_support_texts, conversation_with_pii, pii_examples
from flywheel.settings import ScrubSettings

pytestmark = pytest.mark.usefixtures("no_network")  # conftest: any connection attempt fails


@pytest.fixture(scope="module")
def detector(no_network):
    from curation.pii import PiiDetector

    return PiiDetector(ScrubSettings())


def scrub(records, detector, fields=("messages",), **settings):
    from curation.pii import Scrub

    step = Scrub(ScrubSettings(**settings), fields=list(fields), detector=detector)
    return list(step(records)), step


def test_socket_guard_is_active():
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("example.com", 80))


def test_conversation_gets_consistent_surrogates(detector):
    convo = conversation_with_pii(seed=3)
    name = convo["messages"][1]["content"].split("my name is ")[1].split(".")[0]
    first, last = name.split()[0], name.split()[-1]
    [out], step = scrub([convo], detector)
    texts = [m["content"] for m in out["messages"]]
    joined = "\n".join(texts)
    for secret in (first, last, "+44 20 7946 0958", f"{first}.{last}".lower()):
        assert secret not in joined, secret
    fake_full = texts[1].split("my name is ")[1].split(".")[0]
    assert fake_full in texts[3] and fake_full in texts[4]                  # same name, same surrogate
    assert texts[2].startswith(f"Thanks {fake_full.split()[0]}!")             # first name alone: same first name
    fake_email = texts[1].split("My email is ")[1].split(" ")[0]
    assert fake_email in texts[2]
    fake_phone = texts[1].split("my phone is ")[1].rstrip(".")
    assert fake_phone in texts[3]
    assert out["messages"][0] == convo["messages"][0]                        # system prompt untouched
    assert convo["messages"][1]["content"].count(name) == 1                  # caller's record not modified
    assert step.stats.counts["replaced:PERSON"] >= 4 and step.stats.counts["replaced:EMAIL_ADDRESS"] == 2


def test_rerun_is_identical_and_seed_matters(detector):
    records = [{"messages": [{"role": "user", "content": ex.text}]} for ex in pii_examples(40, "dev", seed=1)]
    first, _ = scrub([orjson.loads(orjson.dumps(r)) for r in records], detector)
    again, _ = scrub([orjson.loads(orjson.dumps(r)) for r in records], detector)
    other, _ = scrub([orjson.loads(orjson.dumps(r)) for r in records], detector, seed=99)
    assert orjson.dumps(first) == orjson.dumps(again)
    assert orjson.dumps(first) != orjson.dumps(other)


def test_dpo_pair_fields_share_surrogates(detector):
    pair = {"prompt": [{"role": "user", "content": "Hi, I'm Ingrid Halvorsen, can you update my account?"}],
            "chosen": [{"role": "assistant", "content": "Sure Ingrid Halvorsen, done."}],
            "rejected": [{"role": "assistant", "content": "No, Ingrid."}]}
    [out], _ = scrub([pair], detector, fields=["prompt", "chosen", "rejected"])
    text = orjson.dumps(out).decode()
    assert "Ingrid" not in text and "Halvorsen" not in text
    fake = out["prompt"][0]["content"].split("I'm ")[1].split(",")[0]
    assert fake in out["chosen"][0]["content"]
    assert out["rejected"][0]["content"] == f"No, {fake.split()[0]}."


def test_non_english_text(detector):
    texts = {
        "de": "Hallo, ich heiße Jürgen Weißmann. Meine IBAN ist DE89 3704 0044 0532 0130 00, Telefon +49 30 1234567.",
        "fr": "Bonjour, je m'appelle Amélie Poulain, écrivez à amelie.poulain@exemple.fr merci.",
        "ja": "私のメールは taro.yamada@example.jp です。よろしくお願いします。",
    }
    out, _ = scrub([{"text": t} for t in texts.values()], detector, fields=["text"])
    de, fr, ja = (r["text"] for r in out)
    for secret in ("Jürgen", "Weißmann", "DE89", "0532 0130", "1234567"):
        assert secret not in de, secret
    assert de.startswith("Hallo, ich heiße ") and "Meine IBAN ist" in de
    assert "Amélie" not in fr and "amelie.poulain" not in fr and fr.startswith("Bonjour, je m'appelle ")
    assert "taro.yamada" not in ja and ja.startswith("私のメールは ") and ja.endswith("よろしくお願いします。")


def test_empty_missing_and_huge_fields(detector):
    filler = ("z" * 999 + "\n") * 1_100                     # over spaCy's 1,000,000-character limit
    records = [{"text": ""}, {"text": "   "}, {"other": 1}, {"text": filler + "Contact Jane Roe at jane.roe@example.com"}]
    out, step = scrub(records, detector, fields=["text"])
    assert out[:3] == records[:3]
    assert len(out) == 4 and "jane.roe@example.com" not in out[3]["text"] and "Jane Roe" not in out[3]["text"]
    assert out[3]["text"].startswith(filler)


def test_pasted_blobs_and_runs_of_place_names_do_not_stall_the_scrub(detector):
    """Two patterns were quadratic in a long run of letters: a name word (``[\\p{L}'-]*`` tried from every capital
    of a pasted base64 blob, 20 KB took about 90 s) and the street-level check of Chinese addresses (a run of
    place names with no road). A hang guard, not a speed target: the bound is 20x what the fixed code needs."""
    import time

    blob = "QUFB" * 5_000 + "=="                            # base64 of zeros, as pasted into a chat
    places = "北京市" * 20_000
    started = time.perf_counter()
    out, _ = scrub([{"text": f"Here is the file: {blob} Contact Jane Roe."}, {"text": places + "，谢谢"}],
                   detector, fields=["text"])
    assert time.perf_counter() - started < 20
    assert blob in out[0]["text"] and "Jane Roe" not in out[0]["text"]


def test_a_long_list_of_chinese_addresses_does_not_stall_the_scrub(detector):
    """Merging overlapping spans, choosing among name candidates and cutting addresses around numbers each compared
    every value with every other: 40,000 characters of glued address pieces took 5 s, 20,000 took 1.9 s. A hang
    guard, not a speed target: 100,000 characters need about 5 s now, and took about half a minute."""
    import time

    addresses = "城郊村杜安逮186号" * 10_000
    started = time.perf_counter()
    [found] = detector.detect([addresses])
    assert time.perf_counter() - started < 20
    assert [f.entity for f in found] == ["STREET_ADDRESS"] and (found[0].start, found[0].end) == (0, len(addresses))


def test_a_pasted_list_of_addresses_and_phones_does_not_stall_the_scrub(detector):
    """Cutting each address around the other values, and the check for a phone inside an address, read every value
    for every address: 80,000 characters of "地址：人民路5号，" took 40 s. A hang guard, not a speed target: about 5 s
    now. Each address is found on its own."""
    import time

    piece = "地址：人民路5号，"
    addresses = piece * 8_000
    started = time.perf_counter()
    [found] = detector.detect([addresses])
    assert time.perf_counter() - started < 20
    assert [(f.entity, f.start, f.end) for f in found] == [
        ("STREET_ADDRESS", k * len(piece) + 3, k * len(piece) + 8) for k in range(8_000)]


def test_operators_mask_hash_and_drop(detector):
    record = {"id": "r1", "text": "Mail me at olga.berg@example.com or call +1 (415) 555-0100."}
    [masked], _ = scrub([dict(record)], detector, fields=["text"], default_operator="mask")
    assert masked["text"] == "Mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>."
    [hashed], _ = scrub([dict(record)], detector, fields=["text"], default_operator="hash")
    [rehashed], _ = scrub([dict(record)], detector, fields=["text"], default_operator="hash", hash_key="other")
    assert "<EMAIL_ADDRESS_" in hashed["text"] and hashed["text"] != rehashed["text"]
    kept, step = scrub([dict(record), {"text": "no personal data here"}], detector, fields=["text"],
                       operators={"PHONE_NUMBER": "drop"})
    assert [r["text"] for r in kept] == ["no personal data here"]
    [excluded] = step.exclusions.items
    assert "PHONE_NUMBER" in excluded.reason and excluded.record == {"id": "r1"}   # no raw PII kept


def test_emails_with_any_local_part_and_ssns_after_a_cue(detector):
    texts = ["Write to keshav.o'brien'16@example.com or a+b_c@example.org today? x.y@example.com",
             "SSN: 912-34-5678. Social security 123.45.6789, ssn 123456789."]
    out, _ = scrub([{"text": t} for t in texts], detector, fields=["text"], default_operator="mask")
    assert out[0]["text"] == "Write to <EMAIL_ADDRESS> or <EMAIL_ADDRESS> today? <EMAIL_ADDRESS>"
    assert out[1]["text"] == "SSN: <US_SSN>. Social security <US_SSN>, ssn <US_SSN>."


def test_bad_operator_and_bad_field_are_named(detector):
    with pytest.raises(ValueError, match=r"operators\.PERSON\n.*'surrogate', 'mask', 'hash' or 'drop'"):
        ScrubSettings(operators={"PERSON": "shred"})   # refused when the settings load, not mid-run
    out, step = scrub([{"text": 42}], detector, fields=["text"])
    assert out == [] and "field 'text' is int" in step.exclusions.items[0].reason


def test_heldout_leakage_beats_the_bar(detector):
    from curation.pii import propagate

    examples = pii_examples(150, "heldout", seed=5)
    found = detector.detect([ex.text for ex in examples])
    leaked = total = 0
    for ex, spans in zip(examples, found, strict=True):
        covered = {i for f in propagate([ex.text], [spans])[0] for i in range(f.start, f.end)}
        for span in ex.spans:
            total += 1
            leaked += any(not ch.isspace() and i not in covered
                          for i, ch in enumerate(ex.text[span.start:span.end], span.start) if ch.isalnum())
    assert leaked / total <= 0.08, f"{leaked}/{total} values leaked"


def test_demo_domain_texts_scrub_unchanged(detector):
    """The product's own support knowledge has no personal data: scrubbing must not corrupt it."""
    from demo.domain import FACTS, SMALL_TALK, SYSTEM_PROMPT, pretraining_corpus, unseen_paraphrases

    texts = {t for f in FACTS for t in (f.answer, f.wrong, *f.questions, *f.dev)} | {q for _, q in unseen_paraphrases()}
    texts |= {m["content"] for conv in pretraining_corpus() for m in conv} | {t for pair in SMALL_TALK for t in pair}
    texts = sorted(texts | {SYSTEM_PROMPT})
    out, step = scrub([{"text": t} for t in texts], detector, fields=["text"])
    changed = [(t, r["text"]) for t, r in zip(texts, out, strict=True) if r["text"] != t]
    assert len(texts) > 200 and changed == [], changed[:5]


@pytest.mark.parametrize("split", ["dev", "heldout"])
def test_benign_support_texts_mostly_unchanged(detector, split):
    """Plans, prices, quantities with units, app names and capitalised menu words are not PII
    (measured: 0 of 1,000 altered per split; the previous scrubber altered 23-27%)."""
    texts = benign_support_texts(300, split, seed=11)
    out, _ = scrub([{"text": t} for t in texts], detector, fields=["text"])
    changed = [(t, r["text"]) for t, r in zip(texts, out, strict=True) if r["text"] != t]
    assert len(changed) <= 3, changed[:5]                                       # <= 1% altered


def test_lookalikes_with_real_context_are_still_scrubbed(detector):
    """The precision rules read shape and context, not the words: the same words as real PII are caught."""
    texts = ["My colleague Max will call you back.", "Thanks Evernote, see you tomorrow!",
             "I live at 3 Seaton Court, Leeds.", "Ms. de Lacy asked about the Team plan.",
             "Send the parcel to 200 Mill Lane, please.", "Dear Lumen Support team, hi from Jane Roe."]
    out, _ = scrub([{"text": t} for t in texts], detector, fields=["text"])
    for secret, record in zip(["Max", "Evernote", "Seaton Court", "Lacy", "Mill Lane", "Jane Roe"], out, strict=True):
        assert secret not in record["text"], record["text"]
    assert "Lumen Support" in out[5]["text"] and "Team plan" in out[3]["text"]


def test_scrub_cli_same_records_same_order(home: Path, tmp_path: Path):
    from flywheel.cli import app

    records = [{"id": i, "text": ex.text, "messages": [{"role": "user", "content": ex.text}]}
               for i, ex in enumerate(pii_examples(6, "dev", seed=2))]
    src, out, audit = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "audit.json"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b"{broken\n")
    result = CliRunner().invoke(app, ["scrub", str(src), "-o", str(out), "--field", "text", "--field", "messages",
                                      "--audit", str(audit), "--json"])
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in records]
    for before, after in zip(records, rows, strict=True):
        assert after["text"] == after["messages"][0]["content"]           # one record: one surrogate per value
        if "Hi, my name is" in before["text"]:
            assert after["text"] != before["text"]
    report = orjson.loads(audit.read_bytes())
    assert report["records_out"] == 6 and report["unreadable_lines"] == 1 and report["entities"]["PERSON"] >= 2
    missing = CliRunner().invoke(app, ["scrub", str(tmp_path / "nope.jsonl"), "-o", str(out)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def masked(detector, texts: list[str]) -> list[str]:
    out, _ = scrub([{"text": t} for t in texts], detector, fields=["text"], default_operator="mask")
    return [r["text"] for r in out]


def test_street_lines_with_any_us_street_suffix(detector):
    """Street names end in any of the Postal Service's suffixes, not only Street/Road/Lane; with none of
    them the house number and name went out whole when no cue word stood before them."""
    assert masked(detector, ["Is 6384 Johnson Glens in your delivery zone?",
                             "I live on 413 Figueroa Pine Apt. 673 near the park.",
                             "Open Windows 10 Action Center and click it."]) == [
        "Is <STREET_ADDRESS> in your delivery zone?", "I live on <STREET_ADDRESS> near the park.",
        "Open Windows 10 Action Center and click it."]


def test_lower_case_us_addresses_are_replaced_whole(detector):
    """Typed in lower case, a whole address with its state and ZIP code is still one ("reno" alone was taken as a
    name and the rest left)."""
    assert masked(detector, ["ship to 1234 elm street, springfield, il 62704 please",
                             "my address is p.o. box 889, reno, nv 89501"]) == [
        "ship to <STREET_ADDRESS> please", "my address is <STREET_ADDRESS>"]


def test_obfuscated_emails(detector):
    assert masked(detector, ["my email is jane dot doe at gmail dot com",
                             "reach me at john.smith [at] example [dot] org thanks",
                             "write to mike_r(at)yahoo.com today", "look at github.com for the code"]) == [
        "my email is <EMAIL_ADDRESS>", "reach me at <EMAIL_ADDRESS> thanks", "write to <EMAIL_ADDRESS> today",
        "look at github.com for the code"]


def test_emails_with_accented_local_parts_are_replaced_whole(detector):
    """An ASCII-only pattern took "a@correo.es" out of "josé.garcía@correo.es" and left the name before it."""
    assert masked(detector, ["My email is josé.garcía@correo.es", "write to Zoë.Müller@firma.de now"]) == [
        "My email is <EMAIL_ADDRESS>", "write to <EMAIL_ADDRESS> now"]


def test_phones_named_after_them_or_without_separators(detector):
    assert masked(detector, ["2025550143 is my number", "For questions, call 1234567890 during business hours.",
                             "The pharmacy hotline is 7261938450.", "TELEPHONENUM: 09315 293923."]) == [
        "<PHONE_NUMBER> is my number", "For questions, call <PHONE_NUMBER> during business hours.",
        "The pharmacy hotline is <PHONE_NUMBER>.", "TELEPHONENUM: <PHONE_NUMBER>."]


def test_ssns_with_the_cue_after_them(detector):
    assert masked(detector, ["890082186 is my SSN", "Here is my social: 598701449"]) == [
        "<US_SSN> is my SSN", "Here is my social: <US_SSN>"]


def test_name_suffixes_go_with_the_name(detector):
    assert masked(detector, ["Please contact Jane Doe DDS about the bill.", "Ask Kevin Lee DVM for the records.",
                             "Dr. David Quincy, M.D., MPH is in Santa Clara."]) == [
        "Please contact <PERSON> about the bill.", "Ask <PERSON> for the records.", "Dr. <PERSON> is in Santa Clara."]


def test_lower_case_names_after_cues(detector):
    """Chat is typed in lower case: a given name after "this is", "i'm", "thanks," or a greeting is still a name;
    a verb or adjective there is not ("this is mark my words", "i'm sure")."""
    texts = ["hi this is christopher", "i am robert brown, account 4471", "Thanks,\nmike",
             "hey it's kathleen again", "i'm victor wallace, my order never came",
             "this is mark my words", "i'm sure it works", "hi this is a test"]
    assert masked(detector, texts) == [
        "hi this is <PERSON>", "i am <PERSON>, account 4471", "Thanks,\n<PERSON>", "hey it's <PERSON> again",
        "i'm <PERSON>, my order never came", "this is mark my words", "i'm sure it works", "hi this is a test"]


def test_one_word_names_by_their_place_in_the_sentence(detector):
    """A lone name as the subject of a past-tense verb, addressed, before an e-mail address, or in a record
    ("name, age, sex"); a product, a bank or an interjection in the same place is not one."""
    texts = ["Harrison testified before the board.", "Radovan, could you resend the invoice?",
             "Send the draft to Okonkwo at o.k@example.net today.", "Patient: Teodora, 34, Female",
             "my name is zhyldyz and i need a refund",
             "Android updated overnight.", "Btw, can you check my order?", "Contact Support at help@example.com."]
    assert masked(detector, texts) == [
        "<PERSON> testified before the board.", "<PERSON>, could you resend the invoice?",
        "Send the draft to <PERSON> at <EMAIL_ADDRESS> today.", "Patient: <PERSON>, 34, Female",
        "my name is <PERSON> and i need a refund",
        "Android updated overnight.", "Btw, can you check my order?", "Contact Support at <EMAIL_ADDRESS>."]


def test_names_in_a_forms_person_fields(detector):
    """A field naming a person's role, then a colon: the name after it, even one that is also a word ("Field")."""
    assert masked(detector, ["Reported by: Field", "Patient: Humphries, age 54", "Reviewer: Pending",
                             "Author: Explain the theory of relativity simply."]) == [
        "Reported by: <PERSON>", "Patient: <PERSON>, age 54", "Reviewer: Pending",
        "Author: Explain the theory of relativity simply."]


def test_lone_names_after_a_word_that_points_at_a_person(detector):
    """One listed name after a preposition or verb of address ("belongs to", "approved by", "forward it to") was
    left whole; a place or a product in the same place is not a name."""
    texts = ["The account belongs to Bianca.", "This was approved by Arthur last week.",
             "Please forward it to Smith-Garcia by Friday.",
             "I moved to Dallas last year.", "It syncs with Dropbox.", "The flight departs from Austin at noon.",
             "Send a link to Grant the permissions."]
    assert masked(detector, texts) == [
        "The account belongs to <PERSON>.", "This was approved by <PERSON> last week.",
        "Please forward it to <PERSON> by Friday.",
        "I moved to Dallas last year.", "It syncs with Dropbox.", "The flight departs from Austin at noon.",
        "Send a link to Grant the permissions."]


def test_payees_and_names_before_a_degree(detector):
    """The person a sum of money goes to, a name no list holds included ("to Xiaoxue"), and a doctor's name in
    directory form before a degree; without a sum ("send the logs to Splunk") or with Maryland's "MD" after a
    town, nothing is a name."""
    texts = ["I want to send 350 bucks to Srinivas please.", "Give Xiaoxue 1580 bucks please.",
             "Transfer $400 from my checking account to Xiaoxue's checking account.",
             "send 870 dollars to peter", "Send money to the checking account belonging to Srinivas.",
             "Send Maria $1,790 from my checking account to her savings account.",
             "I'd like an appointment with Abazari Mina MD on Friday.", "How about Anne Han, M.D. in Oakland?",
             "Send the logs to Splunk.", "transfer $50 to savings", "Our office is at 12 Oak St, Baltimore, MD 21201.",
             "Silver Spring, MD is where we met."]
    assert masked(detector, texts) == [
        "I want to send 350 bucks to <PERSON> please.", "Give <PERSON> 1580 bucks please.",
        "Transfer $400 from my checking account to <PERSON>'s checking account.",
        "send 870 dollars to <PERSON>", "Send money to the checking account belonging to <PERSON>.",
        "Send <PERSON> $1,790 from my checking account to her savings account.",
        "I'd like an appointment with <PERSON> on Friday.", "How about <PERSON> in Oakland?",
        "Send the logs to Splunk.", "transfer $50 to savings", "Our office is at <STREET_ADDRESS>.",
        "Silver Spring, MD is where we met."]


def test_whole_lower_case_names_after_cues(detector):
    """After a cue the family name went out when it is also a word ("cook", "price") or no listed one ("rooij"), and
    a double given name ("rolf-peter") was not taken; chat words after "thanks" stay."""
    texts = ["regards alan cook", "thanks, hamza van rooij", "my name is stephanie price and i need help",
             "thanks, rolf-peter", "thanks john good work", "thanks haha", "cheers mate"]
    assert masked(detector, texts) == [
        "regards <PERSON>", "thanks, <PERSON>", "my name is <PERSON> and i need help", "thanks, <PERSON>",
        "thanks <PERSON> good work", "thanks haha", "cheers mate"]


def test_a_nickname_between_the_parts_of_a_name_goes_with_it(detector):
    texts = ['Robert "Bob" Smith called.', "We met Hector (Macho) Camacho at the gym.", "John Smith (CEO) met Mary Jones."]
    assert masked(detector, texts) == [
        "<PERSON> called.", "We met <PERSON> at the gym.", "<PERSON> (CEO) met <PERSON>."]


def test_a_name_is_replaced_through_its_particles(detector):
    """The name stopped at "al-", "de la", "van": "Hassan al-Turabi" left "al-Turabi", "Max van Heeswijk" left "Max".
    A name must still be found first: "Can Jane do Monday?" keeps "do Monday"."""
    texts = ["Hassan al-Turabi leads the party.", "My lawyer, Maria de la Cruz, will call you.",
             "Forward it to Max van Heeswijk today.", "The catch went to de Silva at slip.",
             "Can Jane do Monday?", "We rented a van in Ohio.",
             "Regards,\nXochiquetzalcoatlicueyaotlanahuatlpilliquetzalmaninalli"]
    assert masked(detector, texts) == [
        "<PERSON> leads the party.", "My lawyer, <PERSON>, will call you.", "Forward it to <PERSON> today.",
        "The catch went to <PERSON> at slip.", "Can <PERSON> do Monday?", "We rented a van in Ohio.",
        "Regards,\n<PERSON>"]                    # a 55-letter name word is a name: bounded, the pattern stopped at 42


def test_a_name_is_replaced_through_its_middle_initial(detector):
    """The tagger found "A. Longin" of "Helena A. Longin" and "Kalpana" and "Nathan" apart in "Kalpana I. Nathan":
    "Helena" was left, and the two halves got two surrogates. A word that is no name ("Dear", "Meet") stays."""
    from curation.pii import Found
    from curation.pii_recognizers import with_name_particles

    text = "What about dermatologist Helena A. Longin, M.D. in Santa Rosa?"
    [grown] = with_name_particles(text, [Found("PERSON", text.index("A."), text.index(","), 0.9)], detector.lexicon)
    assert text[grown.start:grown.end] == "Helena A. Longin"
    text = "Thanks Mia T. Brown for the help"
    [grown] = with_name_particles(text, [Found("PERSON", text.index("Mia"), text.index(" T."), 0.9)], detector.lexicon)
    assert text[grown.start:grown.end] == "Mia T. Brown"
    text = "Dear J. Smith, thanks"
    [kept] = with_name_particles(text, [Found("PERSON", 5, 13, 0.9)], detector.lexicon)
    assert text[kept.start:kept.end] == "J. Smith"
    assert masked(detector, ["What about dermatologist Helena A. Longin, M.D. in Santa Rosa?"]) == [
        "What about dermatologist <PERSON> in Santa Rosa?"]


def test_addresses_keep_their_town_line_and_postcode(detector):
    """The town and postcode after a street line went out: Canadian and Indian postcodes, a postcode line under a
    German or Polish street, Nordic and Dutch one-word streets, a postcode named by its cue."""
    texts = ["My address is 8715 Eric Viaduct, North Lindseytown, NU Y8N 3R3",
             "Ship to:\nRichard Lewis\nAnnalena-Jahn-Straße 21\n9905 Hainfeld",
             "Please send it to:\nul. Baczyńskiego 74/71\n88-779 Stalowa Wola\nThanks!",
             "billing address 42/910, Kaur Road, Chapra 009442",
             "I live on Elmelundegade 797 near the park.", "Is Nygränd 4 in your delivery zone?",
             "Send it to Wouterboulevard 18 please.", "I live on 310 Bennett Circus near the park.",
             "the zip code is 60614, can you check delivery?", "Our postcode: SW1A 2AA",
             "ZIP file 12345 is attached.", "I have 2 kids, 3 dogs, 4 cats."]
    assert masked(detector, texts) == [
        "My address is <STREET_ADDRESS>", "Ship to:\n<PERSON>\n<STREET_ADDRESS>",
        "Please send it to:\n<STREET_ADDRESS>\nThanks!", "billing address <STREET_ADDRESS>",
        "I live on <STREET_ADDRESS> near the park.", "Is <STREET_ADDRESS> in your delivery zone?",
        "Send it to <STREET_ADDRESS> please.", "I live on <STREET_ADDRESS> near the park.",
        "the zip code is <STREET_ADDRESS>, can you check delivery?", "Our postcode: <STREET_ADDRESS>",
        "ZIP file 12345 is attached.", "I have 2 kids, 3 dogs, 4 cats."]


def test_foreign_addresses_are_replaced_whole_with_their_town_and_state(detector):
    """Half an address went out and its tail stayed: a Polish "plac" / "al." street, a Brazilian CEP written
    without its hyphen and the "/ SP" state after the town, an Italian province "(TO)" after "10122, Torino", an
    Indian "H.No." before the house number and a six-digit PIN after the town, a Dutch town on the line under
    its postcode. A full stop or the next line's sentence after the address is no part of it."""
    texts = ["Please post it to plac Wolności 12, 61-738 Poznań. Thanks",
             "I live at al. Jerozolimskie 44/2\n00-024 Warszawa",
             "Ship to Rua das Flores, 120, Centro, 01310100 São Paulo / SP.",
             "Ship to Travessa do Sol, 9\nJardim Europa\n04567-890 Campinas / SP\nWhen can it arrive?",
             "My address is Via Garibaldi, 8, 10122, Torino (TO). Call me",
             "I live at H.No. 45, Gandhi Road, Nagpur 440001.",
             "Mail it to Keizersgracht 12\n1015 CS\nAmsterdam. Thanks!",
             "Build 20230115 Release / QA passed.", "See Table 4 (et al. Nature 12, 2020)."]
    assert masked(detector, texts) == [
        "Please post it to <STREET_ADDRESS>. Thanks", "I live at <STREET_ADDRESS>",
        "Ship to <STREET_ADDRESS>.", "Ship to <STREET_ADDRESS>\nWhen can it arrive?",
        "My address is <STREET_ADDRESS>. Call me", "I live at <STREET_ADDRESS>.",
        "Mail it to <STREET_ADDRESS>. Thanks!", "Build 20230115 Release / QA passed.",
        "See Table 4 (et al. Nature 12, 2020)."]


def test_the_street_word_check_lets_through_every_text_a_street_pattern_matches():
    """Street patterns run only on texts holding the words they need (a speed-up): that check must never refuse a
    text one of them matches, in any case and with a compound street word ("Annalena-Jahn-Straße")."""
    from curation.pii_recognizers import StreetAddressRecognizer, _street_words_held

    texts = ["I live at 12 Baker Street, London", "Is 6384 Johnson Glens in your zone?", "Figueroa Pine Apt. 673",
             "ship to 1234 elm street, springfield, il 62704", "p.o. box 889, reno, nv 89501",
             "POBOX 12, RENO, NV 89501", "Hauptstraße 12", "HAUPTSTRASSE 12", "Annalena-Jahn-Straße 21",
             "Elmelundegade 797", "Wouterboulevard 18", "Via Roma, 5", "Rambla Jose Luis Cifuentes 22",
             "ul. Baczyńskiego 74/71", "al. Jerozolimskie 44/2", "65, rue Emmanuelle Gosselin",
             "12 Avenue des Champs", "7, boulevard Paulette Gosselin", "Send it to Ann Lee, 91 Rhonda Walkway.",
             "Studio 6\nGill Walk", "Keizersgracht 12\n1015 CS", "Travessa do Sol, 9", "Nygränd 4"]
    patterns = StreetAddressRecognizer().street_patterns
    matched = 0
    for text in texts:
        held = _street_words_held(text)
        for k, (pattern, _score, need) in enumerate(patterns):
            if pattern.search(text):
                matched += 1
                assert need in held, (text, k)
    assert matched >= len(texts)


def test_ibans_with_valid_check_digits_of_any_length(detector):
    """An IBAN whose check digits hold but whose length differs from its country's table (GB91WEST...0123 has
    21 characters, not 22) went out whole; a wrong check digit is no IBAN."""
    assert masked(detector, ["my IBAN is GB91WEST1234567890123, thanks", "pay NL91 ABNA 0417 1643 00 today",
                             "ticket GB92WEST1234567890123 is closed"]) == [
        "my IBAN is <IBAN_CODE>, thanks", "pay <IBAN_CODE> today", "ticket GB92WEST1234567890123 is closed"]
    from curation.checksums import iban_ok

    assert iban_ok("GB91WEST1234567890123") and not iban_ok("GB92WEST1234567890123")


def test_names_in_the_possessive(detector):
    """A listed name with "'s" inside a sentence is a person's ("Bianca's car"); a shop, a company or a place
    opening the sentence is not."""
    texts = ["I borrowed Bianca's car yesterday.", "We stayed at Anneliese's place.", "We ate at Wendy's.",
             "Austin's parks are great.", "Layoffs were the hardest change in Meta's history."]
    assert masked(detector, texts) == [
        "I borrowed <PERSON>'s car yesterday.", "We stayed at <PERSON>'s place.", "We ate at Wendy's.",
        "Austin's parks are great.", "Layoffs were the hardest change in Meta's history."]


def test_a_long_text_of_repeated_nicknamed_names_gives_the_spans_of_its_pieces(detector):
    """The nickname join looked back from the text's start for every name (quadratic on long texts): a long text
    of repeated sentences must come back with exactly the spans of each sentence on its own."""
    piece = 'I met Bianca "Bee" Rossi, thanks Arthur! '
    [alone] = detector.detect([piece])
    [long] = detector.detect([piece * 200])
    assert {(f.entity, f.start, f.end) for f in alone} == {("PERSON", 6, 24), ("PERSON", 33, 39)}
    assert [(f.entity, f.start, f.end) for f in long] == [
        (f.entity, f.start + k * len(piece), f.end + k * len(piece)) for k in range(200) for f in alone]

def test_zip_as_a_verb_is_no_postcode_cue(detector):
    """"zip" before a number read as a postcode cue, so the number of files went out as an address."""
    texts = ["I need to zip 1000 files into one archive.", "Can I zip 20000 photos at once?",
             "My zip is 94107.", "ZIP: 10115", "zip-code 60614 please", "ZIP+4 12345-6789 is on the label.",
             "We sent it to ZIP S74 9NW."]
    assert masked(detector, texts) == [
        "I need to zip 1000 files into one archive.", "Can I zip 20000 photos at once?",
        "My zip is <STREET_ADDRESS>.", "ZIP: <STREET_ADDRESS>", "zip-code <STREET_ADDRESS> please",
        "ZIP+4 <STREET_ADDRESS> is on the label.", "We sent it to ZIP <STREET_ADDRESS>."]


def test_brands_addressed_at_a_clauses_end_are_no_names(detector):
    """A company addressed in a complaint ("Seriously, Comcast?") was replaced as a person; a person addressed the
    same way still is."""
    texts = ["Seriously, Comcast?", "Come on, Verizon!", "Really, Spotify?", "Great job, Bianca!"]
    assert masked(detector, texts) == ["Seriously, Comcast?", "Come on, Verizon!", "Really, Spotify?",
                                       "Great job, <PERSON>!"]


def test_laws_and_algorithms_named_after_people_are_kept(detector):
    """A family name in the possessive before "law", "algorithm", "triangle" names a result, not a person."""
    texts = ["Explain Newton's second law in simple words.", "Use Dijkstra's algorithm on this graph.",
             "Please draw Pascal's triangle up to row 6.", "How does Fermat's last theorem work?",
             "Use Euler's method here.", "I borrowed Bianca's laptop yesterday.", "Can you send me Kevin's number?"]
    assert masked(detector, texts) == [
        "Explain Newton's second law in simple words.", "Use Dijkstra's algorithm on this graph.",
        "Please draw Pascal's triangle up to row 6.", "How does Fermat's last theorem work?",
        "Use Euler's method here.", "I borrowed <PERSON>'s laptop yesterday.", "Can you send me <PERSON>'s number?"]


def test_role_account_and_chat_words_under_a_sign_off_are_no_names(detector):
    """A word no dictionary holds, alone under a sign-off, was read as a name even when it is a role, an account
    or a chat acronym; and a chat acronym after a lower-case name joined the name."""
    texts = ["Best,\nsysadmin", "Cheers,\nnoreply", "Thanks,\nlgtm", "Regards,\nwebmaster", "Regards,\nkaran",
             "thanks sam lgtm!", "thanks sam ptal", "regards alan cook"]
    assert masked(detector, texts) == [
        "Best,\nsysadmin", "Cheers,\nnoreply", "Thanks,\nlgtm", "Regards,\nwebmaster", "Regards,\n<PERSON>",
        "thanks <PERSON> lgtm!", "thanks <PERSON> ptal", "regards <PERSON>"]


def test_a_year_and_a_word_after_a_street_are_no_town(detector):
    """"2023 Edition" after a street line was taken as a postcode and a town, so the address swallowed it; a real
    postcode and town there still go."""
    texts = ["Ship to 12 Baker Street, 2023 Edition of the catalogue.",
             "Ship to 12 Baker Street, 1999 Series catalogue attached.",
             "Please send it to Hauptstraße 5, 8010 Graz\nThanks!"]
    assert masked(detector, texts) == [
        "Ship to <STREET_ADDRESS>, 2023 Edition of the catalogue.",
        "Ship to <STREET_ADDRESS>, 1999 Series catalogue attached.",
        "Please send it to <STREET_ADDRESS>\nThanks!"]


def test_a_street_line_after_a_long_run_of_spaces_is_still_found(detector):
    """The clause-start lookbehind scanned back over the whole run of spaces at every position (quadratic: 45 s for
    20,000 spaces); the street line after the run is found as before."""
    [out] = masked(detector, ["Ship it to:" + " " * 3000 + "91 Rhonda Walkway"])
    assert out == "Ship it to:" + " " * 3000 + "<STREET_ADDRESS>"


def test_cue_patterns_run_wherever_their_cue_is_in_any_case():
    """A name pattern with a cue runs only on texts holding the cue word, compared case-folded: a cue in capitals,
    with a dotted capital İ or a capital ẞ (which the pattern matches) still finds the name."""
    from curation.pii_recognizers import ContextNameRecognizer

    recognizer = ContextNameRecognizer()
    for text, name in [("THANK YOU,\nMaria Lopez", "Maria Lopez"), ("İCH HEİẞE Jana Novak", "Jana Novak"),
                       ("MY NAME IS Omar Haddad", "Omar Haddad"), ("Write to Lee Chan <lee@chan.org>", "Lee Chan")]:
        found = {text[r.start:r.end] for r in recognizer.analyze(text, ["PERSON"])}
        assert name in found, (text, found)


def test_values_get_a_surrogate_of_their_own_type(detector):
    """An SSN laid out 3-2-4 was replaced as a phone number, and a postal block ran back over the name or the phone
    on the line before it (and "DOB 1990" read as an Australian state and postcode), so the name got an address
    surrogate; "Call 01238 762 624-6872" was an address (a postcode fits inside the phone). With a phone named, a
    3-2-4 number is still a phone."""
    texts = ["Customer: Sure, it's 579-71-4540.", "call me at 579-71-4540",
             "Karen T. Wade, 139 Paul Curve, 24528, Port Jaclyn",
             "Contact: (325) 692-4559\n7184 Maple Rd, Springfield, IL 62701",
             "Patient: Cassie Jefferson, DOB 1990", "I live at 12 Martin Luther King Blvd, Atlanta, GA 30301",
             "Unit 4, 12 Smith St, Willisport, WA, 2630", "Specialist visit. Call 01238 762 624-6872. Include it.",
             "Our office is at Dot Road, 37172-8327, near the park."]
    assert masked(detector, texts) == [
        "Customer: Sure, it's <US_SSN>.", "call me at <PHONE_NUMBER>", "<PERSON>, <STREET_ADDRESS>",
        "Contact: <PHONE_NUMBER>\n<STREET_ADDRESS>", "Patient: <PERSON>, DOB 1990", "I live at <STREET_ADDRESS>",
        "<STREET_ADDRESS>", "Specialist visit. Call <PHONE_NUMBER>. Include it.",
        "Our office is at <STREET_ADDRESS>, near the park."]


def test_a_family_name_after_a_given_name_in_a_person_field(detector):
    """After "Applicant:" the rule kept the first listed name and then only words no dictionary holds, so the
    family name "Jefferson" (an English word too) was left to the tagger; a field word after the name still
    ends it."""
    from curation.pii_recognizers import ContextNameRecognizer

    recognizer = ContextNameRecognizer(detector.lexicon)
    for text, name in [("Applicant: Cassie Jefferson Social Security: 017-27-9618", "Cassie Jefferson"),
                       ("Applicant: Rosalind Whitfield Date of birth 1990", "Rosalind Whitfield")]:
        assert {text[r.start:r.end] for r in recognizer.analyze(text, ["PERSON"])} == {name}, text


def test_an_english_address_after_chinese_punctuation_is_replaced_whole(detector):
    """A postal block went back only over parts split at ASCII commas, so "PSC 4328" glued to "。" was no address
    line ("…一厢情愿。PSC 4328, Box 8402, APO AP 39174"); the bare-postcode rule hid it until "PSC 4328" stopped
    reading as an Australian state and postcode. Chinese punctuation ends a part as a comma does."""
    assert masked(detector, ["原来放不下就是自己的一厢情愿。PSC 4328, Box 8402, APO AP 39174",
                             "地址：12 Main St，Springfield，IL 62701"]) == [
        "原来放不下就是自己的一厢情愿。<STREET_ADDRESS>", "地址：<STREET_ADDRESS>"]


def test_a_place_name_opening_a_sentence_before_a_persons_verb_is_a_name(detector):
    """"Dallas", "Geneva" or "Virginia" opening a sentence are people when what follows only a person does
    (coordinated, chaired, was born): spaCy's place label and the state list had dropped them. Governments and
    firms still say, issue and call for things, and a place stays a place elsewhere."""
    from curation.pii_recognizers import ContextNameRecognizer

    recognizer = ContextNameRecognizer(detector.lexicon)
    for text in ["Dallas coordinated the vendor negotiations.", "Geneva chaired the ethics committee meeting.",
                 "Virginia was born in 1978.", "Houston called to confirm the meeting time."]:
        assert [(r.start, r.end, human) for r, human in recognizer.subjects(text)] == [
            (0, text.index(" "), True)], text
    text = "Nushin, can you follow up on the audit?"  # asked for something: spaCy's ORG does not overrule it
    assert [(r.start, r.end, human) for r, human in recognizer.subjects(text)] == [(0, 6, True)]
    for text in ["Washington called for new sanctions.", "Texas passed a law.", "Washington said it would act."]:
        assert not any(human for _r, human in recognizer.subjects(text)), text
    assert masked(detector, ["Dallas coordinated the vendor negotiations.", "I flew to Dallas last week."]) == [
        "<PERSON> coordinated the vendor negotiations.", "I flew to Dallas last week."]


def test_a_cue_word_inside_another_word_is_no_cue(detector):
    """"ring" in "string" or "engineering" and "tel" in "hotel" were read as the cue words of phones: any long
    number near them became a phone number, and an SSN near "Engineering" got a phone's surrogate. A cue word
    starts a word; "call me" still cues."""
    assert masked(detector, ["The string 9876543210 is the seed.",
                             "The engineering team closed 4417 tickets and 1200934 events.",
                             "Experience in Engineering, along with your ID 718-52-4385 for the check",
                             "call me at 5551234567", "Your hotel booking 48213975 is confirmed.", "Tel: 48213975"]) == [
        "The string 9876543210 is the seed.", "The engineering team closed 4417 tickets and 1200934 events.",
        "Experience in Engineering, along with your ID <US_SSN> for the check", "call me at <PHONE_NUMBER>",
        "Your hotel booking 48213975 is confirmed.", "Tel: <PHONE_NUMBER>"]


def test_the_person_an_appointment_is_with(detector):
    """Booking chat names the doctor in lower case or surname first ("with dale pearlman MD at 2 pm", "to see Wolter
    Charlotte on March 8th"): only the first word, or nothing, was replaced. The team, a dentist, a product or a firm
    an appointment is with are no one."""
    texts = ["you want an appointment with dale pearlman MD at 2 pm on march 4th",
             "arrange a visit to see Wolter Charlotte on March 8th at 4:45 pm.",
             "book an appointment with barskyex bryna g.",
             "I have a meeting with the team at 3pm.", "Set up a session with Zoom on Friday",
             "appointment with the dentist tomorrow", "a meeting with Stripe Inc on Monday"]
    assert masked(detector, texts) == [
        "you want an appointment with <PERSON> at 2 pm on march 4th",
        "arrange a visit to see <PERSON> on March 8th at 4:45 pm.", "book an appointment with <PERSON>.",
        "I have a meeting with the team at 3pm.", "Set up a session with Zoom on Friday",
        "appointment with the dentist tomorrow", "a meeting with Stripe Inc on Monday"]


def test_the_owner_of_a_checking_or_savings_account_is_a_name(detector):
    """"to Kagiso checking account", "to jerry' savings account": a payee with no sum in the clause was kept. A bank
    there ("to Chase checking") and "my savings account" name no one."""
    texts = ["have them transferred to jerry' savings account. the amount is",
             "a transfer from your checking account to Kagiso checking account of $1,380.",
             "move it to Chase checking please", "transfer to my savings account"]
    assert masked(detector, texts) == [
        "have them transferred to <PERSON>' savings account. the amount is",
        "a transfer from your checking account to <PERSON> checking account of $1,380.",
        "move it to Chase checking please", "transfer to my savings account"]


def test_voice_assistants_are_products_and_a_given_name_before_a_family_name_stays(detector):
    """"an Alexa skill", "a Siri shortcut" got a person's surrogate; and a listed given name that is also a product
    or support word ("Max", "Alexa") was dropped from the front of a full name ("Max Johnson" left "Max"). A cue
    still makes the assistant's name a person's, and a label ("Max Price:") stays."""
    texts = ["Write an Alexa skill that tells the weather.", "How do I make a Siri shortcut for my lights?",
             "Max Johnson called about her order.", "My daughter Alexa is five.", 'the second field is "Max Price: "']
    assert masked(detector, texts) == [
        "Write an Alexa skill that tells the weather.", "How do I make a Siri shortcut for my lights?",
        "<PERSON> called about her order.", "My daughter <PERSON> is five.", 'the second field is "Max Price: "']
