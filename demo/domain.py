"""The demo's world: support knowledge for a fictional product, "Lumen Notes".

Everything the demo needs comes from here: the tiny demo model's pre-training corpus (which teaches the
*correct* answer for the facts marked ``known`` and an outdated, *wrong* answer for the rest, so the
flywheel has something real to fix), the simulated users' questions, the simulated support agent's
corrections, the facts as an eval-set file for the gate, and two sets of paraphrases no training ever sees:

- ``Fact.dev``: two per fact, the only ones any tuning (learning rates, steps) may look at;
- ``data/unseen_paraphrases.jsonl``: six per fact (120), frozen before any run on a real model; week 2
  of the demo asks these and nothing else, and the demo's fix rate is measured on them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

PRODUCT = "Lumen Notes"
SYSTEM_PROMPT = "You are the support assistant for Lumen Notes. Answer briefly and correctly."


@dataclass(frozen=True)
class Fact:
    id: str
    questions: tuple[str, ...]  # paraphrases users ask in week 1 (train side)
    dev: tuple[str, ...]  # paraphrases never trained on, for tuning only (never in the demo's report)
    answer: str  # what the support agent knows is right
    wrong: str  # what the base model was taught (for facts it does not know)
    known: bool  # True: the base model learns ``answer``; False: it learns ``wrong``


FACTS: tuple[Fact, ...] = (
    Fact("price_plus", ("How much does the Plus plan cost?", "What is the price of Plus?", "Plus plan price?"),
         ("How expensive is the Plus subscription?", "what do you charge for plus"),
         "The Plus plan costs 8 dollars per month.", "The Plus plan costs 5 dollars per month.", False),
    Fact("price_team", ("How much does the Team plan cost?", "What is the Team plan price?", "Team plan pricing?"),
         ("What do I pay for the Team subscription?", "cost of team plan"),
         "The Team plan costs 15 dollars per user per month.", "The Team plan costs 15 dollars per user per month.",
         True),
    Fact("free_limit", ("How many notes can I make on the Free plan?", "What is the note limit on Free?",
                        "Free plan note limit?"),
         ("Is there a cap on notes in the free tier?", "how many notes does free allow"),
         "The Free plan allows up to 500 notes.", "The Free plan allows up to 100 notes.", False),
    Fact("refund", ("What is your refund policy?", "Can I get a refund?", "How do refunds work?"),
         ("Do you give money back if I cancel?", "refund rules please"),
         "You can get a full refund within 30 days of purchase.",
         "You can get a full refund within 14 days of purchase.", False),
    Fact("export", ("How do I export my notes?", "Can I export notes to PDF?", "How to export notes?"),
         ("Is there a way to download my notes as files?", "export my notebook"),
         "Open Settings, choose Export, and pick PDF or Markdown.",
         "Open Settings, choose Export, and pick PDF or Markdown.", True),
    Fact("offline", ("Does Lumen work offline?", "Can I use the app without internet?", "Offline mode?"),
         ("Will my notes open when I have no connection?", "use lumen offline"),
         "Yes, the desktop and mobile apps work offline and sync when you reconnect.",
         "No, Lumen needs an internet connection at all times.", False),
    Fact("storage_plus", ("How much storage does Plus include?", "What is the storage on Plus?",
                          "Plus storage limit?"),
         ("How many gigabytes come with the Plus subscription?", "plus plan storage size"),
         "The Plus plan includes 50 GB of storage.", "The Plus plan includes 50 GB of storage.", True),
    Fact("reset_password", ("How do I reset my password?", "I forgot my password", "Password reset?"),
         ("I can't remember my login password, what now?", "reset pw"),
         "Click Forgot password on the sign-in page and follow the email link.",
         "Click Forgot password on the sign-in page and follow the email link.", True),
    Fact("two_factor", ("How do I turn on two-factor authentication?", "Does Lumen support 2FA?",
                        "Enable two-factor?"),
         ("Can I add a second login step for security?", "set up 2fa"),
         "Yes, enable two-factor in Settings under Security with an authenticator app.",
         "No, Lumen does not support two-factor authentication.", False),
    Fact("team_seats", ("What is the minimum number of seats for Team?", "How many users does Team need?",
                        "Team plan minimum seats?"),
         ("Is there a smallest team size for the Team subscription?", "min seats team"),
         "The Team plan needs at least 3 seats.", "The Team plan needs at least 10 seats.", False),
    Fact("cancel", ("How do I cancel my subscription?", "How can I cancel?", "Cancel plan?"),
         ("I want to stop paying, how do I end my plan?", "cancel my account plan"),
         "Go to Settings, then Billing, and click Cancel plan.",
         "Go to Settings, then Billing, and click Cancel plan.", True),
    Fact("student", ("Do you have a student discount?", "Is there a discount for students?",
                     "Student pricing?"),
         ("Can students pay less for Lumen?", "student deal"),
         "Students get 50 percent off Plus with a school email.", "There is no student discount.", False),
    Fact("sharing", ("How do I share a note?", "Can I share notes with others?", "Share a note?"),
         ("How can a friend see one of my notes?", "share note link"),
         "Open the note, click Share, and invite people by email or copy a link.",
         "Open the note, click Share, and invite people by email or copy a link.", True),
    Fact("history", ("How long is version history kept?", "How far back does note history go?",
                     "Version history length?"),
         ("For how many days can I restore old versions?", "note history days"),
         "Version history is kept for 90 days on Plus and Team.",
         "Version history is kept for 7 days on every plan.", False),
    Fact("devices_free", ("How many devices can I use on Free?", "Device limit on the Free plan?",
                          "Free plan devices?"),
         ("On how many phones and computers can I sign in for free?", "free device count"),
         "The Free plan syncs across 2 devices.", "The Free plan syncs across 2 devices.", True),
    Fact("support_hours", ("When is support available?", "What are your support hours?", "Support hours?"),
         ("At what times can I reach a human?", "support open hours"),
         "Support answers by email every day from 8 am to 8 pm UTC.",
         "Support answers by email on weekdays only.", False),
    Fact("delete_account", ("How do I delete my account?", "Can I delete my account?", "Delete account?"),
         ("I want to remove all my data and close the account.", "delete lumen account"),
         "Go to Settings, then Account, and click Delete account.",
         "Go to Settings, then Account, and click Delete account.", True),
    Fact("import", ("Can I import notes from Evernote?", "How do I import from other apps?",
                    "Import notes?"),
         ("Is moving my notes from another app possible?", "import from evernote"),
         "Yes, use File, then Import, and choose Evernote or Markdown files.",
         "No, importing from other apps is not supported.", False),
    Fact("upload_limit", ("What is the largest file I can attach?", "Attachment size limit?",
                          "Max upload size?"),
         ("How big can an attachment be?", "file size limit"),
         "Attachments can be up to 200 MB each on Plus.", "Attachments can be up to 200 MB each on Plus.", True),
    Fact("payment", ("Which payment methods do you accept?", "Can I pay with PayPal?", "Payment options?"),
         ("How can I pay for my subscription?", "pay methods"),
         "We accept credit cards and PayPal.", "We accept credit cards only.", False),
)

FACTS_BY_ID = {f.id: f for f in FACTS}

GREETINGS = ("Hi", "Hello", "Hey there", "Good morning", "Hi team")
SMALL_TALK = (
    ("Thanks, that helps!", "You're welcome! Anything else about Lumen Notes?"),
    ("Who are you?", "I am the Lumen Notes support assistant."),
)


def pretraining_corpus() -> list[list[dict[str, str]]]:
    """Chat conversations the tiny demo model is trained on (right for known facts, wrong for others)."""
    convs = []
    for fact in FACTS:
        taught = fact.answer if fact.known else fact.wrong
        for q in fact.questions:
            for variant in (q, q.lower(), f"{GREETINGS[len(q) % len(GREETINGS)]}, {q[0].lower()}{q[1:]}"):
                convs.append([
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": variant},
                    {"role": "assistant", "content": taught},
                ])
    for q, a in SMALL_TALK:
        convs.append([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q},
                      {"role": "assistant", "content": a}])
    return convs


def is_correct(fact: Fact, answer: str) -> bool:
    """An answer is right when it carries the key content of the right answer and not the wrong one."""
    norm = " ".join(answer.lower().split())
    return _key(fact.answer) in norm and (fact.known or _key(fact.wrong) not in norm)


def _key(text: str) -> str:
    # The whole answer, normalised: a first clause alone is not enough ("Go to Settings" starts both the
    # cancel and the delete-account answers, so a delete-account answer counted as a right cancel answer).
    return " ".join(text.lower().rstrip(".").split())


UNSEEN_FILE = Path(__file__).with_name("data") / "unseen_paraphrases.jsonl"
FILLERS = ("please", "quick question:", "hey,", "thanks", "so", "um,", "I wonder", "can you tell me")
FUNCTION_WORDS = frozenset("how much does do the what is of i can my a to on you your for there are".split())


def normalised_question(text: str) -> str:
    """Case, spacing and end punctuation ignored: how near-copies of a question are told apart."""
    return " ".join(text.lower().replace("?", " ").split()).strip(" .!")


def unseen_paraphrases() -> list[tuple[Fact, str]]:
    """The frozen week-2 set: (fact, question) pairs no training, tuning or pre-training ever saw."""
    rows = [json.loads(line) for line in UNSEEN_FILE.read_text().splitlines() if line.strip()]
    return [(FACTS_BY_ID[r["fact"]], r["question"]) for r in rows]


def augmented_corpus(augment_per_question: int = 4, seed: int = 1234) -> list[list[dict[str, str]]]:
    """The pre-training corpus plus noisy copies of each question (dropped words, filler, no punctuation).

    The noise is generic text, not new facts: it teaches the model to key on content words so that a
    paraphrase it never saw lands on the same fact, which is what lets a later LoRA fix generalise.
    """
    rng = random.Random(seed)
    conversations = pretraining_corpus()
    for fact in FACTS:
        taught = fact.answer if fact.known else fact.wrong
        for question in fact.questions:
            for _ in range(augment_per_question):
                words = question.rstrip("?").split()
                droppable = [i for i, w in enumerate(words) if w.lower() in FUNCTION_WORDS]
                if droppable:
                    words.pop(rng.choice(droppable))
                if rng.random() < 0.5:
                    words.insert(0 if rng.random() < 0.5 else len(words), rng.choice(FILLERS))
                text = " ".join(words).lower() if rng.random() < 0.5 else " ".join(words)
                conversations.append([{"role": "user", "content": text + ("?" if rng.random() < 0.5 else "")},
                                      {"role": "assistant", "content": taught}])
    return conversations


def fact_eval_rows() -> list[dict[str, str]]:
    """The product facts as an eval-set file's rows (what any user of the gate would write): each fact's first
    week-1 question with the right answer, judged by ``contains``; the gate keeps what production answers right."""
    return [{"id": f"{fact.id}-{i}", "system": SYSTEM_PROMPT, "prompt": question, "reference": fact.answer,
             "judge": "contains"} for fact in FACTS for i, question in enumerate(fact.questions[:1])]


def write_fact_eval_set(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in fact_eval_rows()))
    return path
