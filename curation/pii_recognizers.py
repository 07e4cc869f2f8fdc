"""Presidio recognizers for what plain Presidio with spaCy ``en_core_web_sm`` misses.

Each one reads structure and context, never a list of known names or streets: names after greetings,
introductions, titles and before sign-offs; street addresses (single line, comma-separated or several
lines ending in a postcode); phone numbers in international and national formats with extensions;
card numbers of 12-19 digits checked with Luhn; US social security numbers. Scores are 0..1 and the
scrubber applies a threshold per entity type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import regex
from presidio_analyzer import EntityRecognizer, Pattern, RecognizerResult
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from curation.checksums import iban_ok, is_resident_id, luhn_ok
from curation.text import ideographs_as_spaces

if TYPE_CHECKING:
    from curation.pii import Found

# --- names ----------------------------------------------------------------------------------------
_WORD = r"\p{Lu}[\p{L}'’\-]{0,60}\p{L}(?!\p{L})"  # bounded: unbounded, a run of capitals made every pattern quadratic
# The lower-case particles inside a family name ("Ludwig van Beethoven", "Maria de la Cruz", "Omar ibn Saud").
_PARTICLE = r"(?:van|von|de|der|den|da|di|du|del|della|degli|la|le|ten|ter|bin|ibn|bint|abu|al|dos|das)"
_NAME = rf"{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_WORD}){{0,3}}"
_NAME2 = rf"{_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_WORD}){{1,3}}"
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra|Sig|Signora|Señor|Señora)\.?"
_SIGN_OFF = (
    r"(?i:thanks(?: again| a lot)?|thank you(?: (?:so|very) much)?(?: again)?|many thanks|regards|"
    r"best regards|kind regards|warm regards|best wishes|best|cheers|sincerely|yours(?: truly| sincerely)?|"
    r"take care|talk soon|all the best|mit freundlichen grüßen|viele grüße|liebe grüße|grüße|"
    r"cordialement|bien à vous|saludos|un saludo|atentamente|cordiali saluti|saluti|"
    r"met vriendelijke groet|groeten)"
)
_INTRO = (
    r"(?i:i am|i'm|this is|it's|ich bin|je suis|soy|sono|ik ben)"
)
_GREETING = r"(?i:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hallo|bonjour|hola|ciao|hej|greetings)"
_FIELD = r"(?i:name|full name|customer|client|contact|contact details|account holder|cardholder|attn|from|to)"
# Words that point at a person: a single capitalised word after them is a name ("my colleague Ana").
# Lower-case only: capitalised they name things ("Customer Success", "Partner Portal").
_PERSON_CUE = (
    r"(?:colleague|manager|boss|friend|wife|husband|partner|son|daughter|mother|father|brother|sister|"
    r"coworker|co-worker|teammate|assistant|accountant|lawyer|doctor|teacher|student|customer|client|agent|"
    r"spoke (?:to|with)|talked (?:to|with)|speak to|talk to|ask for|assigned to|cc|ping)"
)
# Weaker cues: verbs and prepositions that also come before products and menus ("import from Google
# Keep", "sync with Google Drive"): the words after them must look like a name (see ``name_words``).
_RELATION = r"(?i:ask|asked|tell|told|contact|from|with|by|to|for)"
_SPEECH = r"(?:said|says|told|asked|wrote|replied|mentioned|explained|promised|confirmed|suggested)"
_SPEECH_WORDS = frozenset(_SPEECH[3:-1].split("|"))

# (pattern, score, min_words, cue words): every pattern captures the name in group ``n``; where the cue is weak
# (min_words > 0) its words must also pass ``name_words``. A pattern with cue words runs only on a text holding one of
# them (case-folded, see ``folded``): every match of the pattern holds one.
_SIGN_OFF_WORDS = ("thank", "regards", "best", "cheers", "sincerely", "yours", "take care", "talk soon", "grü",
                   "cordialement", "bien à vous", "saludo", "atentamente", "saluti", "groet")
NAME_PATTERNS: tuple[tuple[str, float, int, tuple[str, ...]], ...] = (
    (rf"(?:^|(?<=[\n.!?:;]))[ \t]*{_GREETING}[ \t,]+(?:{_TITLE}[ \t]+)?(?P<n>{_NAME})", 0.8, 0, ()),
    (rf"\b(?i:my name is|my name's|name is|call me|ich heiße|mein name ist|je m'appelle|me llamo|mi chiamo|"
     rf"mijn naam is)[ \t]+(?P<n>{_NAME})", 0.7, 0,
     ("name is", "name's", "call me", "ich hei", "name ist", "m'appelle", "llamo", "chiamo", "naam is")),
    (rf"\b{_INTRO}[ \t]+(?P<n>{_NAME})", 0.7, 1, ()),
    (rf"\b{_TITLE}[ \t]+(?P<n>(?:{_PARTICLE}[ \t]+)*{_NAME})", 0.85, 0, ()),
    (rf"\b{_FIELD}[ \t]*:[ \t]*(?P<n>{_NAME})", 0.7, 0, ()),
    (rf"\b{_SIGN_OFF}[ \t]*[,!.:;]*[ \t]*\n?[ \t]*[-–—]*[ \t]*(?P<n>{_NAME})[ \t]*[.!]?[ \t]*(?=\n|$)", 0.85, 0,
     _SIGN_OFF_WORDS),
    (rf"(?:^|(?<=\n))[ \t]*[-–—]+[ \t]*(?P<n>{_NAME})[ \t]*(?=\n|$)", 0.7, 0, ()),
    (rf"(?:^|(?<=\n))(?P<n>{_NAME})[ \t]*[\n]?[ \t]*(?=(?:here|speaking)\b)", 0.75, 1, ("here", "speaking")),
    (rf"(?P<n>{_NAME}),?[ \t]+(?=here\b|speaking\b)", 0.75, 1, ("here", "speaking")),
    (rf"\b{_PERSON_CUE}[ \t]+(?P<n>{_NAME})", 0.7, 0, ()),
    (rf"\b(?i:someone|somebody|person|guy|man|woman|lady|girl|boy|user|customer|client|agent|rep|"
     rf"representative|technician|employee|member|colleague|friend|manager|child|kid|son|daughter|husband|wife|"
     rf"partner)[ \t]+(?i:named|called)[ \t]+(?P<n>{_NAME})", 0.7, 0, ("named", "called")),
    (rf"(?P<n>{_NAME})[ \t]+(?={_SPEECH}\b)", 0.7, 1, tuple(sorted(_SPEECH_WORDS))),
    (rf"\b(?i:thanks|thank you)[ \t,]+(?P<n>{_NAME})(?=[ \t]*[,!.]|[ \t]+for\b)", 0.7, 1, ("thank",)),
    (rf"\b{_RELATION}[ \t]+(?P<n>{_NAME2})", 0.6, 2, ()),
    (rf"(?P<n>{_NAME2})[ \t]*(?=[,(<:][ \t]*(?:\+|\(|\d|[\w.+-]+@))", 0.6, 2, ()),
    # One name word right before an e-mail address: "Send updates to Urkom at nvf13@aol.com", "Ana <ana@x.org>"
    (rf"\b(?!(?:To|From|Cc|Bcc|Email|Mail|Contact|Sender|Reply)\b)(?P<n>{_NAME})"
     rf"(?=[ \t]*(?:[,(<]|[ \t](?:at|via))[ \t]*[\w.+-]+@)", 0.6, 1, ("@",)),
    # A record of a person: "Varsan, 20, Male"
    (rf"\b(?P<n>{_NAME}),[ \t]*\d{{1,3}},[ \t]*(?i:male|female|man|woman|non-binary|nonbinary|m|f)\b", 0.6, 1, ()),
    (rf"(?P<n>{_NAME})(?='s[ \t]+(?:phone|number|email|e-mail|address|account|card|birthday)\b)", 0.7, 0, ("'s",)),
    # A degree after the name: "Abazari Mina MD", "Anne Han, M.D.", "Britz Marie B MD", "Bert Epstein PhD". A bare
    # "MD" after a comma or before a number is Maryland ("Baltimore, MD 21201").
    (rf"(?P<n>{_NAME})(?:[ \t]+\p{{Lu}}\.?)*(?:[ \t]*,[ \t]*|[ \t]+)"
     r"(?=(?:M\.D\.|Ph\.?D\b|DDS\b|D\.D\.S\.|DMD\b|PsyD\b|D\.O\.)|(?<![ \t]*,[ \t]*)MD\b(?![ \t,]*\d))", 0.85, 1,
     ("md", "m.d.", "phd", "ph.d", "dds", "d.d.s", "dmd", "psyd", "d.o.")),
)

# A name in lower case, as chat is typed, after a cue: "my name is jane doe", "this is john", "thanks, mike". After
# "my name is" / "call me" / "name:" (group ``strong``) any given name counts (see ``ContextNameRecognizer``).
LOWER_CASE_NAME = regex.compile(
    rf"(?:\b(?P<strong>(?P<intro>(?i:my name is|my name's|my name’s|name is))[ \t]+|(?i:call me)[ \t]+|(?i:name)[ \t]*:[ \t]*)"
    rf"|\b(?i:i am|i'm|i’m|im|this is|it's|it’s)[ \t]+"
    rf"|\b(?P<signoff>{_SIGN_OFF})[ \t]*[,!.:;]*[ \t]*\n?[ \t]*[-–—]*[ \t]*"
    rf"|(?:^|(?<=[\n.!?]))[ \t]*{_GREETING}[ \t,]+)"
    rf"(?P<n>\p{{Ll}}[\p{{Ll}}'’\-]+)(?:[ \t]+(?P<f>\p{{Ll}}[\p{{Ll}}'’\-]+))?(?![\p{{L}}\d])", regex.MULTILINE)

# A one-word name opening a sentence as its subject ("Morgan testified at the hearing.", "Dallas coordinated the
# vendors") or addressed ("Nushin, can you follow up?").
SENTENCE_SUBJECT = regex.compile(
    rf"(?:^|(?<=[\n.!?][ \t]*))(?P<n>\p{{Lu}}\p{{Ll}}{{2,}}(?:-\p{{Lu}}\p{{Ll}}+)?)"
    rf"(?:[ \t]+(?P<verb>\p{{Ll}}{{2,}}ed|{_SPEECH}|was[ \t]+born)[ \t]+\p{{L}}"
    rf"|,[ \t]+(?P<ask>(?i:can|could|would|will|please|did|do|are|have|let's|let|any)\b))", regex.MULTILINE)

# What a person does and a town, a state or a firm does not, in the records, support and business text we scrub:
# after one of these a sentence's first word is a person even where it names a place ("Dallas coordinated the
# vendor negotiations", "Houston called to confirm", "Virginia was born in 1978"). Not "said", "signed", "announced",
# "issued", "called for": governments and firms do those ("Washington said", "Morgan Industries announced").
HUMAN_VERBS = frozenset(
    "coordinated chaired organized organised presented reviewed prepared testified graduated volunteered apologized "
    "apologised thanked emailed texted phoned interviewed examined smiled laughed cried married retired "
    "studied attended helped called".split()) | {"was born"}
_CALLED_FOR = regex.compile(r"[ \t]+(?:for|on|upon|off)\b")

# A lone name after a word that points at a person ("belongs to Bianca.", "approved by Arthur last week", "on
# behalf of Vitus", "I met Oksana at the fair", "a note from Ingrid"), in the possessive ("Bianca's car"), or
# addressed at a clause's end ("fantastic, Suhade!", "Nice shooting, Tex!"). Products and places stand there too
# ("sync with Dropbox", "Austin's parks"): see ``lone_names``.
_LONE = r"\p{Lu}\p{Ll}{2,}(?:-\p{Lu}\p{Ll}+)?"
LONE_NAME = regex.compile(
    r"\b(?P<rel>(?i:by|with|behalf of|thanks|thank you|cc|ask|asked|tell|told|call|called|email|emailed|ping|pinged|"
    r"meet|met|invite|invited|remind|reminded|let|contact|contacted|"
    # "to" and "from" lead to places too ("back to Kent", "departs from Austin"): only after a verb or noun of
    # writing, giving and speaking
    r"(?:belongs?|belonged|send|sent|sending|forward|forwarded|talk|talked|speak|spoke|reply|replied|write|wrote|"
    r"written|give|gave|given|introduce|introduced|report|reports|reported|assigned|married|say|said|explain|"
    r"explained|mention|mentioned|listen|pass|passed|hand|handed|addressed)(?:[ \t]+(?:it|this|that|them|him|her))?"
    r"[ \t]+to|(?:message|email|e-mail|call|note|letter|text|reply|feedback|hear|heard|news|word|gift|request)"
    r"[ \t]+from))[ \t]+"
    rf"(?P<n>{_LONE})(?=[ \t]*(?:[.,;:!?)\n]|$)|[ \t]+\p{{Ll}})"
    rf"|(?<![\p{{L}}\d'’.\-])(?P<n>{_LONE})(?=(?P<poss>['’]s)(?![\p{{L}}\d]))"
    rf"|(?<=[\p{{L}}\d)][ \t]*,[ \t]*)(?P<n>{_LONE})(?=[ \t]*(?:[!?]|\.?[ \t]*$|\.[ \t]*\n))",
    regex.MULTILINE)

# A payee: the person a sum of money goes to ("send 350 bucks to Srinivas", "transfer $400 to Xiaoxue's checking
# account", "$1,600 from your savings to the savings account of xiaoxue", "give Xiaoxue 1580 bucks", "the checking
# account belonging to Srinivas"). Only next to a sum or an account: "send the logs to Splunk" or "transfer the
# domain to Namecheap" name no one; before a checking or savings account, never a bank ("to Chase checking").
# Lower-case, only a listed given name ("to peter").
BANKS = frozenset("chase wells citi citibank ally discover capital fidelity vanguard schwab barclays hsbc santander "
                  "revolut chime marcus monzo amex navy usaa".split())
_MONEY = r"(?:[$€£¥₹]|\b(?i:usd|eur|gbp|inr|rmb|dollars?|bucks|euros?|pounds|money|funds|cash|rupees|yuan|payment)\b)"
_GIVE = (r"\b(?i:send|sent|sending|transfer|transferring|transferred|pay|paying|paid|wire|wiring|wired|give|gave|"
         r"giving|lend|lent|owe|owes|refund|refunded)\b")
_PAYEE_WORD = rf"(?P<n>{_LONE}|\p{{Ll}}{{3,}})"
_PAYEE = rf"{_PAYEE_WORD}(?=['’]s[ \t]|[ \t]*(?:[.,;:!?)\n]|$)|[ \t]+\p{{Ll}})"
PAYEE = regex.compile(
    rf"{_GIVE}[ \t]+{_PAYEE_WORD}(?=[ \t]+(?:[$€£¥₹]|\d[\d,.]*[ \t]*{_MONEY}))"
    rf"|{_GIVE}(?=(?:[^.!?\n]|\.\d){{0,40}}?{_MONEY})(?:[^.!?\n]|\.\d){{0,60}}?[ \t]to[ \t]+(?:(?i:the|my|his|her|their)"
    rf"[ \t]+(?:(?i:checking|savings|bank)[ \t]+)?(?i:account)[ \t]+of[ \t]+)?{_PAYEE}"
    rf"|\b(?i:account|card)[ \t]+(?i:of|belonging to|held by|in the name of)[ \t]+{_PAYEE}"
    # "to Kagiso checking account", "to jerry' savings account", "of Philip 's savings": the owner of an account
    rf"|\b(?i:to|of|into|from)[ \t]+{_PAYEE_WORD}(?=[ \t]*['’]s?[ \t]+(?i:checking|savings)\b|[ \t]+(?i:checking|savings)\b)")

_EXCLAIMED = regex.compile(r"[ \t]*[!?]")

# The person an appointment is with: "an appointment with dale pearlman MD at 2 pm", "a visit to see Wolter Charlotte
# on March 8th", "appointment booking with the Ghina Morad on March 13th". Chat and booking text types these names in
# lower case and surname first; the time or date after them ends the name. The words are checked in ``_appointments``.
_APPOINTMENT_WORD = r"(?i:appointment|visit|booking|reservation|meeting|session|consultation|check-?up)"
# The degree after it, in any case: booking chat types "dale pearlman md", "dotz warren dr". (``pii.NAME_SUFFIX`` takes
# degrees after any found name, but case-sensitively and without "do" and "dr", which are words elsewhere.)
_DEGREE = r"(?i:md|m\.d\.|dr|np|dds|do|phd|psyd|lcsw|rn)\.?"
_FIRM_SUFFIXES = frozenset("inc corp co ltd llc llp plc gmbh ag sa bv group".split())
APPOINTMENT_WITH = regex.compile(
    rf"\b{_APPOINTMENT_WORD}\b[^.?!\n]{{0,60}}?\b(?i:with|see)[ \t]+(?:(?i:the|doctor|dr\.?)[ \t]+)?"
    rf"(?P<n>[\p{{L}}'’\-]+(?:,?[ \t]+[\p{{L}}'’\-]+){{0,3}}?)(?:,?[ \t]+{_DEGREE})?"
    r"(?=[ \t]+(?i:at|on|for|next|this|tomorrow|today)\b|[ \t]*(?:[.?!]|$))")

# A form's field for a person, then a colon: "Reported by: Field", "Patient: Nguyen, Thi Lan".
ROLE_FIELD = regex.compile(
    r"\b(?i:patient|applicant|employee|recipient|sender|beneficiary|payee|payer|owner|technician|tenant|"
    r"landlord|buyer|seller|author|supervisor|emergency contact|next of kin|spouse|guardian|physician|doctor|nurse|"
    r"passenger|traveler|traveller|policyholder|insured|witness|reviewer|(?:reported|submitted|requested|signed|"
    r"approved|prepared|created|opened|handled|updated|entered) by|assigned to)[ \t]*:[ \t]*"
    rf"(?P<n>{_NAME})")

# Capitalised words that start sentences or name products and roles, not people.
NOT_NAMES = frozenset(
    "I I'm I'd I'll I've It's I’m It’s The This That These Those It We You They He She Team Support Customer Service Everyone All There "
    "Sir Madam Thanks Thank Regards Best Hi Hello Hey Dear Good Morning Please Yes No Ok Okay Sorry Here "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March July "
    "September October November December Plus Free Pro Admin Manager Sales Billing Accounting "
    "Android Windows iOS Mac Linux Google Microsoft Apple Email Phone Address Name Card Account Cheers".split()
)


# Common English words of support and product text (menus, actions, software nouns, tiers, units):
# capitalised as a UI label or at a sentence start they are still not a name, unless a strong cue
# (greeting, title, "my name is", sign-off) says so. No given names here: "Max" or "Will" are left
# to context.
COMMON_WORDS = frozenset(w.casefold() for w in (
    "file files import export settings setting billing account accounts security share sharing help view "
    "edit tools preferences sync trash archive templates template search profile notifications integrations "
    "members plan plans storage backup restore advanced privacy appearance shortcuts devices device general "
    "upgrade downgrade labs home start menu tab tabs window page pages note notes notebook notebooks folder "
    "folders tag tags drive docs doc sheets slides calendar mail inbox keep box cloud desktop mobile web app "
    "apps store play editor dashboard workspace workspaces library gallery list lists board boards chat "
    "open close click choose select pick press tap use go connect enable disable turn add remove delete "
    "create new save send move copy paste update install download upload sign log reset change set try "
    "check contact cancel pay buy get make find read write print scan link unlink invite join leave "
    "max min maximum minimum free plus pro premium basic starter standard business enterprise family "
    "personal team teams dark light mode beta legacy classic lite ultimate student education nonprofit "
    "size limit cap quota price cost total monthly annual yearly weekly daily trial discount coupon invoice "
    "receipt payment card order support service status error code version update release feature "
    "sync offline online login password passkey user users admin owner guest editor viewer "
    "markdown text plain rich table image images video audio attachment attachments link links "
    "word excel pixel surface galaxy chrome safari edge stripe zoom bear slack notion outlook "
    "quick fast slow random snapshots cheaper largest smallest since after before under from".split()))
# Software, services and brands that stand alone in support and everyday text the way a surname would: spaCy's
# word alone does not make them a person (a cue still does: "Thanks Evernote, see you").
PRODUCT_WORDS = frozenset(
    "evernote onenote gmail zapier todoist simplenote jira asana dropbox trello icloud paypal github gitlab google "
    "youtube facebook instagram twitter whatsapp telegram wechat weibo tiktok linkedin reddit spotify netflix "
    "amazon ebay uber airbnb javascript typescript kubernetes docker linux ubuntu android macos powerpoint "
    "chatgpt openai microsoft samsung huawei xiaomi alibaba taobao baidu tencent alipay shopify wordpress "
    "figma canva photoshop salesforce hubspot mailchimp zendesk intercom discord skype webex meta "
    # voice assistants, named like people: "an Alexa skill", "a Siri shortcut"
    "alexa siri cortana bixby".split())
# Shops and brands named in the possessive after a person: "at Macy's" is a place to shop, not a person's.
SHOPS = frozenset("mcdonald wendy macy denny kohl lowe dillard arby hardee applebee chili domino kellogg sotheby "
                  "christie claire friendly zale".split())
_NON_SPACE = regex.compile(r"\S+")
_PARTICLE_OR_NT = regex.compile(rf"{_PARTICLE}|['’]t")
_NAME_TOKEN = regex.compile(r"(?:(?:Mc|Mac|O'|O’|D'|D’|De|Di|Da|La|Le|Van|Von|Fitz)(?=\p{Lu}))?\p{Lu}\p{Ll}+"
                            r"(?:[-'’]\p{Lu}?\p{Ll}+)*\.?")


def folded(text: str) -> str:
    """``text`` case-folded for a quick test whether a cue word of a ``(?i:…)`` pattern occurs in it: what the
    pattern matches folds to the cue word ("İ", which matches "i", folds to "i" and a combining dot, dropped)."""
    return text.casefold().replace("\u0307", "")


def name_words(words: list[str], min_words: int = 1) -> bool:
    """Words that can make up a person's name without a strong cue: each one capitalised with lower-case
    letters after (not "JSON", "OneNote", "iCloud"; "McKay", "O'Neil" are fine), none a common word of
    support text, particles allowed between them; at least ``min_words`` of them."""
    core = [w for w in words if not _PARTICLE_OR_NT.fullmatch(w)]
    return len(core) >= min_words and all(
        _NAME_TOKEN.fullmatch(w) and w.rstrip(".").casefold() not in COMMON_WORDS for w in core)


def trim_name(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Drop leading/trailing words that are known non-names; None when nothing is left."""
    words = list(_NON_SPACE.finditer(text[start:end]))
    while words and words[0].group() in NOT_NAMES:
        words.pop(0)
    while words and words[-1].group() in NOT_NAMES:
        words.pop()
    if not words:
        return None
    return start + words[0].start(), start + words[-1].end()


# The Arabic article glued to the name after it ("Hassan al-Turabi", "Salah ad-Din").
_ARTICLE = r"(?:al|el|ad|ar|as|at|az|an|ash|ul|ud)-"
_PARTICLES_AFTER = regex.compile(
    rf"(?:(?:[ \t]+{_PARTICLE}(?![\p{{L}}\d\-]))+[ \t]+(?:{_ARTICLE})?|[ \t]+{_ARTICLE})"
    r"\p{Lu}\p{Ll}[\p{L}'’]*(?:-\p{Lu}\p{Ll}[\p{L}'’]*)?(?![\p{L}\d])")
_LEADING_PARTICLES = regex.compile(rf"(?:{_PARTICLE}[ \t]+)+")
_PARTICLES_BEFORE = regex.compile(rf"(?<![\p{{L}}\d\-])(?:{_PARTICLE}[ \t]+)+$")
_GIVEN_BEFORE_PARTICLES = regex.compile(rf"(?<![\p{{L}}\d])(?P<g>\p{{Lu}}\p{{Ll}}+)[ \t]+(?:{_PARTICLE}[ \t]+)+$")


# A middle initial between two name words: "Helena A. Longin" (the tagger found "A. Longin"), "Mia T. Brown".
_NAME_WORD_BEFORE_INITIAL = regex.compile(r"(?<![\p{L}\d'’.\-])(?P<w>\p{Lu}[\p{Ll}'’\-]+)[ \t]+$")
_INITIAL_THEN_NAME_WORD = regex.compile(r"[ \t]+\p{Lu}\.?[ \t]+(?P<w>\p{Lu}[\p{Ll}'’\-]+)(?![\p{L}\d])")
_STARTS_WITH_INITIAL = regex.compile(r"\p{Lu}\.?[ \t]")


def with_name_particles(text: str, found: list[Found], lexicon: NameLexicon) -> list[Found]:
    """A name goes on through its particles and middle initials: the taggers often stop before them ("Hassan" of
    "Hassan al-Turabi", "Maria" and "Cruz" of "Maria de la Cruz", "Mia" of "Mia T. Brown") or start after them
    ("Silva" of "de Silva", "van Heeswijk" of "Max van Heeswijk", where a listed given name comes first; "A. Longin"
    of "Helena A. Longin"). The word across an initial must be a listed name or no English word, and no opener or
    role ("Dear J. Smith" stays). Only names already found grow: a particle or an initial makes none."""

    def name_word(word: str) -> bool:
        return word not in NOT_NAMES and word.casefold() not in COMMON_WORDS | NEVER_A_NAME and \
            (lexicon.is_name(word) or not lexicon.is_word(word))

    out = []
    for f in found:
        start, end = f.start, f.end
        if f.entity == "PERSON":
            if _STARTS_WITH_INITIAL.match(text, start) and \
                    (word := _NAME_WORD_BEFORE_INITIAL.search(text, max(0, start - 40), start)) and name_word(word["w"]):
                start = word.start()
            if (initial := _INITIAL_THEN_NAME_WORD.match(text, end)) and name_word(initial["w"]):
                end = initial.end()
            if after := _PARTICLES_AFTER.match(text, end):
                end = after.end()
            lead = _LEADING_PARTICLES.match(text, start, end)
            head = lead.end() if lead else start
            given = _GIVEN_BEFORE_PARTICLES.search(text, max(0, head - 40), head)
            if given and given.group("g") in lexicon.given:
                start = given.start()
            elif not lead and (before := _PARTICLES_BEFORE.search(text, max(0, start - 20), start)):
                start = before.start()
        out.append(replace(f, start=start, end=end))
    return out


class ContextNameRecognizer(EntityRecognizer):
    """PERSON from the words around a name: greetings, introductions, titles, sign-offs, relations; with a
    ``lexicon`` also lower-case names after those cues (``LOWER_CASE_NAME``)."""

    def __init__(self, lexicon: NameLexicon | None = None) -> None:
        self.patterns = [(regex.compile(p, regex.MULTILINE), s, n, tuple(folded(w) for w in cues))
                         for p, s, n, cues in NAME_PATTERNS]
        self.lexicon = lexicon
        super().__init__(supported_entities=["PERSON"], name="ContextNameRecognizer")

    def load(self) -> None:
        """Patterns are compiled in ``__init__``."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        text_folded = folded(text)
        for pattern, score, min_words, cues in self.patterns:
            if cues and not any(cue in text_folded for cue in cues):
                continue
            for m in pattern.finditer(text):
                span = trim_name(text, m.start("n"), m.end("n"))
                if not span or all(w.casefold() in NEVER_A_NAME for w in text[span[0]:span[1]].split()):
                    continue
                if not min_words or name_words(text[span[0]:span[1]].split(), min_words):
                    results.append(RecognizerResult("PERSON", span[0], span[1], score))
        if self.lexicon is not None:
            results += self._lower_case(text, self.lexicon) + self._role_fields(text, self.lexicon) + \
                self._appointments(text, self.lexicon)
        return results

    def subjects(self, text: str) -> list[tuple[RecognizerResult, bool]]:
        """``SENTENCE_SUBJECT``, each with whether a person's verb (``HUMAN_VERBS``) follows or the word is asked
        for something. Not in ``analyze``: the caller drops what spaCy calls a place or an organisation ("U.N.
        Council concerned") unless a person's verb follows or the word is asked. Before a past-tense verb a listed
        given name that is no verb or adjective ("Grant funded", "Chase offered" stay: a product or a bank may act
        too) or a family name that is no English word, never a country or state ("India blocked") unless a person's
        verb follows ("Virginia was born"); asked, also a word no dictionary holds ("Nushin, can you")."""
        lex = self.lexicon
        results: list[tuple[RecognizerResult, bool]] = []
        if lex is None:
            return results
        for m in SENTENCE_SUBJECT.finditer(text):
            word, verb = m.group("n"), m.group("verb")
            low = word.casefold()
            if low in NEVER_A_NAME or low in COMMON_WORDS or low in PRODUCT_WORDS or word in NOT_NAMES:
                continue
            # Asked for something ("Nushin, can you…") the word is someone, whatever spaCy calls it (an ORG, mostly).
            human = m.group("ask") is not None or verb is not None and " ".join(verb.split()) in HUMAN_VERBS \
                and not (verb == "called" and _CALLED_FOR.match(text, m.end("verb")))
            listed = (word in lex.given or word in lex.family and not lex.is_word(word)) and low not in lex.not_nouns \
                and (human or word not in places())
            if verb and not human and not lex.is_verb(verb) and verb not in _SPEECH_WORDS:
                continue
            if listed or m.group("ask") and len(word) >= 4 and not lex.is_word(word):
                results.append((RecognizerResult("PERSON", m.start("n"), m.end("n"), 0.6), human))
        return results

    def lone_names(self, text: str) -> list[tuple[RecognizerResult, str]]:
        """``LONE_NAME``'s and ``PAYEE``'s names, each with how it was found ("relation", "possessive", "addressed" or
        "payee": the caller drops those spaCy labels a place, a firm or a product, see
        ``PiiDetector._lone_name_vetoes``). A name is a listed given name, a listed family name that is no English
        word, or a double-barrelled name with every part listed; addressed, also a word of four letters or more that
        no dictionary holds, before "!" or "?" ("fantastic, Suhade!"); a payee, also a capitalised word no
        dictionary holds ("to Xiaoxue"). Never a role or opener, a support or product word, an adjective, verb or
        adverb that no locale gives as a name, a country or a state; never a possessive that opens a sentence
        ("Austin's parks are") or names a shop ("at Macy's")."""
        lex = self.lexicon
        results: list[tuple[RecognizerResult, str]] = []
        if lex is None:
            return results
        for m in LONE_NAME.finditer(text, overlapped=True):
            word = m.group("n")
            low = word.casefold()
            if low in NEVER_A_NAME or low in COMMON_WORDS or low in PRODUCT_WORDS or word in NOT_NAMES \
                    or word in places() or lex.never(word):
                continue
            parts = word.split("-")
            listed = word in lex.given or word in lex.family and not lex.is_word(word) \
                or len(parts) > 1 and all(lex.is_name(part) for part in parts)
            kind = "relation" if m.group("rel") else "possessive" if m.group("poss") else "addressed"
            if kind == "possessive" and (low in SHOPS or _sentence_initial(text, m.start("n"))):
                continue  # "at Macy's"; "Austin's parks are", "Ford's new model" open a sentence as a thing
            # Addressed, a word no dictionary holds needs "!" or "?" after it (", Mich." is a state, ", Ibiza" a list).
            if listed or kind == "addressed" and len(word) >= 4 and not lex.is_word(word) \
                    and _EXCLAIMED.match(text, m.end("n")) is not None:
                results.append((RecognizerResult("PERSON", m.start("n"), m.end("n"), 0.6), kind))
        for m in PAYEE.finditer(text):
            word = m.group("n")
            name = word.capitalize()
            low = word.casefold()
            if low in NEVER_A_NAME or low in COMMON_WORDS or low in PRODUCT_WORDS or name in NOT_NAMES \
                    or name in places() or lex.never(name) or low in BANKS:
                continue
            # After a sum of money a capitalised word no dictionary holds is a name too ("to Xiaoxue").
            if name in lex.given or word[0].isupper() and (name in lex.family or not lex.is_word(word)):
                results.append((RecognizerResult("PERSON", m.start("n"), m.end("n"), 0.6), "payee"))
        return results

    @staticmethod
    def _appointments(text: str, lex: NameLexicon) -> list[RecognizerResult]:
        """``APPOINTMENT_WITH``'s words when each is a listed name, a word no dictionary holds or an initial, and one
        of them at least three letters long: "the team", "our dentist", "Zoom" or "Acme Corp" are no one."""
        results = []
        for m in APPOINTMENT_WITH.finditer(text):
            words = [w.rstrip(",") for w in m.group("n").split()]
            if all(len(w) == 1 and w.isalpha() or (lex.is_name(w.capitalize()) or not lex.is_word(w))
                   and w.casefold() not in COMMON_WORDS | PRODUCT_WORDS | NEVER_A_NAME | _FIRM_SUFFIXES
                   for w in words) \
                    and any(len(w) >= 3 for w in words):
                results.append(RecognizerResult("PERSON", m.start("n"), m.end(), 0.6))
        return results

    @staticmethod
    def _role_fields(text: str, lex: NameLexicon) -> list[RecognizerResult]:
        """``ROLE_FIELD``: the field's first word if it is a listed name, then words none of the dictionary's, or a
        listed family name right after a listed given name ("Applicant: Cassie Jefferson Social Security" keeps
        "Jefferson", an English word too); "Applicant: Rosalind Whitfield Date of birth" stops before "Date"."""
        results = []
        for m in ROLE_FIELD.finditer(text):
            end = m.start("n")
            words = list(_NON_SPACE.finditer(text[:m.end("n")], pos=m.start("n")))
            for k, word in enumerate(words):
                w = word.group()
                surname = k == 1 and words[0].group() in lex.given and w in lex.family
                if not (k == 0 and lex.is_name(w) or (surname or not lex.is_word(w)) and not lex.never(w)) \
                        or w.casefold() in NEVER_A_NAME | COMMON_WORDS | PRODUCT_WORDS:
                    break
                end = word.end()
            if end > m.start("n"):
                results.append(RecognizerResult("PERSON", m.start("n"), end, 0.6))
        return results

    @staticmethod
    def _lower_case(text: str, lex: NameLexicon) -> list[RecognizerResult]:
        """Given names in lower case after a cue, and the family name after one; after a weak cue neither may be an
        adjective, verb or adverb that is no given name ("this is mark", "thanks john good work" stay). Where the
        name ends the clause ("regards alan cook", "i'm jimmy overgaard, my order", "thanks, hamza van rooij"),
        up to three more words that are listed names or no English word, particles between them."""
        from spacy.lang.en.stop_words import STOP_WORDS

        def word_ok(word: str, strong: bool, as_written: str) -> bool:
            return word not in STOP_WORDS and word not in COMMON_WORDS and word not in PRODUCT_WORDS \
                and word not in NEVER_A_NAME and (strong or not lex.never(as_written))

        def given_name(word: str) -> bool:  # "rolf-peter" too
            return all(part.capitalize() in lex.given for part in word.split("-") if part)

        def unlisted_name(word: str, min_len: int) -> bool:  # "krithika", "rooij"; not "sysadmin", "lgtm"
            return len(word) >= min_len and not lex.is_word(word) and word not in ROLE_AND_CHAT_WORDS \
                and _HAS_VOWEL.search(word) is not None

        def name_part(word: str) -> bool:
            low = word.casefold()
            if low in STOP_WORDS or low in NEVER_A_NAME or low in PRODUCT_WORDS or low in ROLE_AND_CHAT_WORDS:
                return False
            cap = word.capitalize()
            return cap in lex.family or cap in lex.given or unlisted_name(word, 4)

        results = []
        for m in LOWER_CASE_NAME.finditer(text, overlapped=True):
            given, family = m.group("n"), m.group("f")
            strong = m.group("strong") is not None
            # After "my name is" a word no dictionary holds is a name too ("my name is krithika"; "name: str" is code),
            # and so is one alone on the line under a sign-off ("Regards,\nkaran"; not "thanks haha").
            unknown_ok = m.group("intro") is not None or m.group("signoff") is not None and family is None \
                and "\n" in text[m.end("signoff"):m.start("n")] and len(given) >= 4 \
                and _LINE_END.match(text, m.end("n")) is not None
            if not (given_name(given) or unknown_ok and unlisted_name(given, 3)) \
                    or not word_ok(given, strong, given):
                continue
            end = m.end("n")
            rest = _LOWER_NAME_REST.match(text, end)
            if rest and all(name_part(w) for w in rest.group().split() if not _PARTICLE_WORD.fullmatch(w)):
                end = rest.end()
            # A family name is judged capitalised: "brown" is an adjective, "Brown" also a given name.
            elif family is not None and word_ok(family, strong, family.capitalize()) and (
                    family.capitalize() in lex.family or unknown_ok and unlisted_name(family, 4)):
                end = m.end("f")
            results.append(RecognizerResult("PERSON", m.start("n"), end, 0.7))
        return results


# After a lower-case given name: up to three more lower-case words (particles between them) ...
# that end a clause: punctuation, the line's end, or a word that follows a name ("i'm jo lee and", "… here").
_LOWER_NAME_REST = regex.compile(rf"(?:[ \t]+(?:{_PARTICLE}[ \t]+)*\p{{Ll}}[\p{{Ll}}'’\-]+){{1,3}}"
                                 r"(?=[ \t]*(?:[,.!?;:)\n]|$|(?:and|here|speaking|again|from|at)\b))")
_PARTICLE_WORD = regex.compile(_PARTICLE)
_LINE_END = regex.compile(r"[ \t]*[.!]?[ \t]*(?:\n|$)")
# A name has a vowel ("lgtm", "thx", "ptal" have none; "brynn", "krzysztof" have "y"); a non-Latin-ASCII letter may be one.
_HAS_VOWEL = regex.compile(r"[aeiouy]|[^\x00-\x7f]", regex.IGNORECASE)
# Roles, shared accounts and chat shorthand typed under a sign-off or after a name: no English word, no name either.
ROLE_AND_CHAT_WORDS = frozenset(
    "admin admins sysadmin sysadmins webmaster postmaster hostmaster noreply no-reply donotreply do-not-reply "
    "devops sre ops support helpdesk servicedesk team staff crew everyone everybody folks guys mods moderators "
    "bot lgtm ptal tia thx tnx ty np afaik imo imho fyi btw brb lol lmao omg asap tbh idk nvm wfh ooo eod eow "
    "ack nack wip".split())


# --- street addresses -----------------------------------------------------------------------------
STREET_WORDS = (
    "street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|square|sq|terrace|"
    "close|crescent|parkway|pkwy|highway|hwy|row|path|walk|gardens|hill|park|plaza|trail|circle|alley|mews|"
    "green|grove|rise|vale|view|wharf|quay|loop|pike|turnpike|expressway|freeway|route|"
    "esplanade|promenade|embankment|driveway|point|heights|drove|parade|"
    "rue|avenue|chemin|allée|impasse|quai|cours|passage|"
    "calle|c|avenida|avda|paseo|camino|carrer|ronda|travesía|cuesta|rambla|glorieta|pasaje|callejón|alameda|"
    "carretera|urbanización|plaza|"
    "via|viale|piazza|piazzale|corso|vicolo|largo|strada|contrada|borgo|lungomare|rotonda|"
    "rua|travessa|esplanada|rodovia|praça|estrada|ladeira|viela|"
    "ul|ulica|aleja|aleje|plac|(?<!\\bet[ \t])al(?=\\.)|"
    "straße|strasse|str|weg|gasse|platz|allee|damm|ring|"
    "ufer|chaussee|straat|laan|singel|gracht|plein|kade|dijk|steeg|hof|pad"
)
# The other US Postal Service street suffixes ("Johnson Glens", "Figueroa Pine", "Strickland Mission"): most are
# ordinary words too ("Center", "Union", "Station"), so they count only capitalised, after a capitalised name and a
# house number of three or more digits that is no year ("Windows 10 Action Center", "In 2023 Apple Park").
US_STREET_SUFFIXES = (
    "Branch|Bridge|Brooks?|Burgs?|Bypass|Camp|Canyon|Cape|Causeway|Centers?|Circles|Circus|Cliffs?|Club|Common|Corners?|"
    "Course|Courts|Coves?|Creek|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|Drives|Estates?|Extensions?|Falls?|"
    "Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Garden|Gateway|Glens?|Greens|Groves|Harbors?|Haven|Hills|"
    "Hollow|Inlet|Islands?|Isle|Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lights?|Loaf|Locks?|Lodge|Mall|Manors?|"
    "Meadows?|Mills?|Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parks|Parkways|Pass|Pines?|Plains?|"
    "Points|Ports?|Prairie|Radial|Ramp|Ranch|Rapids?|Rest|Ridges?|River|Roads|Run|Shoals?|Shores?|Skyway|Springs?|"
    "Spurs?|Squares|Station|Stravenue|Stream|Streets|Summit|Throughway|Trace|Track|Trafficway|Tunnel|Underpass|"
    "Unions?|Valleys?|Viaduct|Views|Villages?|Ville|Vista|Walks|Wall|Ways|Wells?"
)
US_STATES = ("al|ak|az|ar|ca|co|ct|de|dc|fl|ga|hi|id|il|in|ia|ks|ky|la|me|md|ma|mi|mn|ms|mo|mt|ne|nv|nh|nj|nm|ny|nc|"
             "nd|oh|ok|or|pa|ri|sc|sd|tn|tx|ut|vt|va|wa|wv|wi|wy|pr|gu|vi|aa|ae|ap")
# Street words that end a one-word street name ("Hauptstraße", "Jentesingel"); the short English ones
# ("st", "way", "row") are never a word ending on their own: "least 3", "lost 12".
COMPOUND_STREET_WORDS = (
    "straße|strasse|str|weg|gasse|platz|allee|damm|ring|ufer|chaussee|steig|markt|"
    "straat|laan|baan|singel|gracht|plein|kade|dijk|steeg|hof|pad|dreef|plantsoen|boulevard|kaai|"
    "street|road|lane|avenue|gate|gata|gatan|vej|veien|vegen|vägen|gade|stræde|straede|gränd|torget|torv|stien"
)
_STREET_SUFFIX = rf"(?i:{STREET_WORDS})\.?"
STREET_WORD = regex.compile(_STREET_SUFFIX)  # one word that names a street ("Road", "Rd.", "Calle", "Hill")
TITLE = regex.compile(_TITLE)  # a person's title as one word ("Dr", "Mrs.")
# A word's full stop that ends a sentence ("Poznań. Thanks", "(TO). Call me"), not an abbreviation ("St.", "H.No."):
# no capitalised word of an address ends with one.
_SENTENCE_END = r"(?:\p{Ll}{3}|\))\."
_ENDS_SENTENCE = regex.compile(rf"{_SENTENCE_END}$")
_CAPWORD = rf"[\p{{Lu}}][\p{{L}}'’.\-]*(?<!{_SENTENCE_END})"
_HOUSE = r"\d{1,5}[A-Za-z]?(?:[/-]\d{1,5}[A-Za-z]?)?"
# One postcode in the formats a street line's town may carry: US ZIP (+4), BR 01310-100, PL 00-950, the 4-6 digits of
# most of Europe, India and Australia, Canada's A1A 1A1, the UK's SW1A 1AA; a Brazilian CEP without its hyphen only
# before the "Town / UF" it heads (a state's code: "Release / QA" is none).
_BR_STATES = "AC|AL|AP|AM|BA|CE|DF|ES|GO|MA|MT|MS|MG|PA|PB|PR|PE|PI|RJ|RN|RS|RO|RR|SC|SP|SE|TO"
_BR_CEP_DIGITS = rf"\d{{8}}(?=[ \t]+[^\n,/]{{1,40}}/[ \t]*(?:{_BR_STATES})(?![\p{{L}}\d]))"
_POSTCODE_VALUE = (rf"(?:\d{{5}}(?:-\d{{4}}|-\d{{3}})?|\d{{2}}-\d{{3}}|\d{{4,6}}|{_BR_CEP_DIGITS}|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d"
                   r"|[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2})(?![\p{L}\d])")
# A number followed by a unit is a quantity ("200 MB", "3 seats", "30 days", "8 dollars"), never a house
# number: street patterns refuse these right after the number.
QUANTITY_UNITS = (
    "kb|mb|gb|tb|pb|kib|mib|gib|tib|bytes?|kilobytes?|megabytes?|gigabytes?|terabytes?|bits?|mbps|kbps|"
    "px|pt|dpi|ppi|fps|hz|khz|mhz|ghz|ms|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|weeks?|months?|"
    "years?|yrs?|am|pm|a\\.m|p\\.m|utc|gmt|percent|per|pct|times|dollars?|euros?|pounds?|cents?|pence|"
    "usd|eur|gbp|aud|cad|chf|jpy|inr|seats?|users?|members?|people|persons|licen[cs]es?|accounts?|devices?|"
    "notes?|notebooks?|pages?|items?|files?|attachments?|tags?|folders?|workspaces?|projects?|boards?|"
    "characters?|chars?|words?|columns?|records?|requests?|calls?|messages?|emails?|tickets?|"
    "steps?|clicks?|screens?|tabs?|versions?|releases?|updates?|backups?|snapshots?|copies|"
    "km|cm|mm|miles?|ft|feet|inch(?:es)?|kg|lbs?|oz|ml|kw|kwh|mah|cores?|threads?"
)
# A capitalised word that a year or a count names ("2023 Edition", "1999 Series", "14 Pro"): the number before it is
# no house number or postcode.
_COUNTED_WORD = (r"(?:Edition|Editions|Series|Model|Models|Version|Versions|Update|Updates|Release|Releases|Season|"
                 r"Seasons|Volume|Issue|Chapter|Part|Catalog|Catalogue|Collection|Report|Review|Budget|Census|Election|"
                 r"Olympics|World|Cup|Tour|Annual|Conference|Awards?|Games|Festival|Anniversary|Roadmap|Plan|"
                 r"Pro|Plus|Max|Mini|Ultra|Deluxe|Limited|Special|Spring|Summer|Autumn|Fall|Winter)(?![\p{L}\d])")
# Single letters (N, S, E, W: "200 W 34th St") stay possible after a house number.
_QUANTITY = rf"(?:(?i:{QUANTITY_UNITS})(?![\p{{L}}\d])|%)"
_UNIT_WORD = r"apt\.?|apartment|suite|ste\.?|unit|flat|studio|level|floor|fl\.?|room|#|puerta|piso|appartamento|piano|interno|bus|app\.?"
_UNIT = rf"(?i:{_UNIT_WORD})[ \t]*\d\w{{0,4}}"
_HOUSE_THEN = rf"{_HOUSE},?[ \t]+(?!{_QUANTITY})"
_ADDRESS_CONTEXT = (
    r"(?i:live at|living at|lives at|address(?: is)?|located at|based at|moved to|ship(?:ped)? to|send (?:it )?to|"
    r"deliver(?:ed)? to|post(?:ed)? to|mail(?:ed)? to|went to|wohne in|adresse|dirección|indirizzo|adres)"
)
# Words that open a question or a request, not a street's name.
_OPENER = (r"(?:Is|Are|Was|Does|Do|Did|Can|Could|Will|Would|Should|Please|The|My|Our|Your|Their|His|Her|Meet|Send|"
           r"Ship|Deliver|Visit|Try|Go|Take|From|To|At|In|On|Near|Behind)[ \t]")
# What starts a street line: "150 ", "Apt. 4, 150 ", or a unit line on its own ("Studio 6\n").
_STREET_LEAD = rf"(?:{_UNIT}[ \t,]*\n?[ \t]*(?:{_HOUSE_THEN})?|{_HOUSE_THEN})"
# Each street line pattern: (pattern, score, the words it needs somewhere in the text: a key of
# ``_street_words_held``, "" for none).
STREET_LINE_PATTERNS: tuple[tuple[str, float, str], ...] = (
    # 150 Anthony Plains Apt. 4 / 7, boulevard Paulette Gosselin / 74/391, Balasubramanian Path
    (rf"(?<![\w.,])(?P<a>{_HOUSE_THEN}(?:(?i:{STREET_WORDS})\.?[ \t]+)?(?:(?:{_CAPWORD}|{_PARTICLE}|d'|de la)[ \t]+){{0,4}}"
     rf"{_STREET_SUFFIX}(?:,?[ \t]+{_UNIT})?)(?!\w)", 0.85, "street"),
    # 6384 Johnson Glens / 996 Elizabeth Shoal Apt. 217
    (rf"(?<![\w.,])(?!(?:19\d|20[0-3])\d\b)(?P<a>\d{{3,5}}[A-Za-z]?[ \t]+(?:(?:N|S|E|W|North|South|East|West)\.?[ \t]+)?"
     rf"(?:{_CAPWORD}[ \t]+){{1,3}}(?:{US_STREET_SUFFIXES})\.?(?:,?[ \t]+{_UNIT})?)(?!\w)", 0.8, "us_suffix"),
    # A whole US address in any case, as chat is typed: "1234 elm street, springfield, il 62704", "p.o. box 889,
    # reno, nv 89501" (the state code and ZIP code at its end make it one)
    (rf"(?<![\w.,])(?P<a>(?i:(?:{_HOUSE}[ \t]+(?:[\p{{L}}'’.\-]+[ \t]+){{0,4}}(?:{STREET_WORDS}|{US_STREET_SUFFIXES})\.?"
     rf"|p\.?[ \t]?o\.?[ \t]?box[ \t]+\d{{1,6}}|post office box[ \t]+\d{{1,6}})(?:,?[ \t]+{_UNIT})?,?[ \t]+"
     rf"(?:[\p{{L}}'’.\-]+[ \t]+){{0,2}}[\p{{L}}'’.\-]+,?[ \t]+(?:{US_STATES}),?[ \t]+\d{{5}}(?:-\d{{4}})?))(?!\w)",
     0.85, "typed_us"),
    # Hauptstraße 12 / Jentesingel 391 / Baker Street 5: a capitalised compound or a name then the street word
    # (a sentence's first word is not part of it: "Is Nygränd 4 in your zone?")
    (rf"(?<![\w])(?!{_OPENER})(?P<a>(?:(?:{_CAPWORD}[ \t]+){{1,3}}(?i:{STREET_WORDS})\.?|(?:{_CAPWORD}[ \t]+){{0,2}}"
     rf"\p{{Lu}}[\p{{L}}\-]+(?i:{COMPOUND_STREET_WORDS})\.?),?[ \t]+{_HOUSE}(?![ \t]+{_COUNTED_WORD})"
     rf"(?:,?[ \t]+{_UNIT})?)(?!\w)", 0.8, "compound"),
    # Via Roma, 5 / Rambla Jose Luis Cifuentes 22
    (rf"(?<![\w])(?P<a>(?i:{STREET_WORDS})\.?[ \t]+(?:(?:{_CAPWORD}|{_PARTICLE}|d'|de la)[ \t]+){{0,4}}"
     rf"{_CAPWORD},?[ \t]+{_HOUSE})(?!\w)", 0.8, "street"),
    # 65, rue Emmanuelle Gosselin / 12 Avenue des Champs
    (rf"(?<![\w.,])(?P<a>{_HOUSE_THEN}(?i:{STREET_WORDS})\.?(?:[ \t]+(?:{_CAPWORD}|{_PARTICLE}|d'|de la)){{1,4}})(?!\w)",
     0.8, "street"),
    # A clause that is nothing but a street line: "Send it to Ann Lee, 91 Rhonda Walkway." / "Studio 6\nGill Walk"
    # (a bare number needs two capitalised words after it: ", 3 Bedrooms," is a list item)
    (rf"(?:(?<=[,:;])|(?<=\n)|^)[ \t]*(?P<a>(?:{_UNIT}[ \t,]*\n?[ \t]*(?:{_HOUSE_THEN})?"
     rf"(?:{_CAPWORD}[ \t]+){{0,2}}|{_HOUSE_THEN}(?:{_CAPWORD}[ \t]+){{1,2}}){_CAPWORD}"
     rf"(?:,?[ \t]+{_UNIT})?)(?=[ \t]*(?:[.,;!?\n]|$))", 0.65, ""),
    # After an address cue: 150 Anthony Plains (any capitalised street name)
    (rf"\b{_ADDRESS_CONTEXT}:?[ \t]+(?P<a>{_STREET_LEAD}(?:{_CAPWORD}[ \t]+){{0,3}}{_CAPWORD})(?!\w)", 0.7, ""),
    # A postcode named by its cue: "ZIP S74 9NW", "postcode: SW1A 1AA", "zip code 90210", "CEP 01310-100"; a bare
    # "zip" is also a verb ("zip 1000 files"), so before a plain number it counts only with ":", "#" or "is"
    (rf"\b(?:(?i:zip(?:[ \t-]?code|\+4)|post(?:al)?[ \t-]?code|postcode|plz|cep|code postal|código postal|"
     rf"codice postale)[ \t]*(?:(?i:is)[ \t]+|[:#][ \t]*)?|(?i:zip)[ \t]*(?:(?i:is)[ \t]+|[:#][ \t]*)"
     rf"|(?i:zip)[ \t]+(?!\d+(?![\p{{L}}\d\-])))(?P<a>{_POSTCODE_VALUE})", 0.7, ""),
    # After a bare "at" / "to": two capitalised words, or one that ends the clause ("to 3 Team members" is not)
    (rf"\b(?i:at|to)[ \t]+(?P<a>{_STREET_LEAD}(?:(?:{_CAPWORD}[ \t]+){{1,3}}{_CAPWORD}(?!\w)|{_CAPWORD}"
     rf"(?=[ \t]*(?:[.,;!?\n]|$))))", 0.7, ""),
)


def _alternatives(words: str) -> set[str]:
    """The literal words of an alternation such as ``STREET_WORDS`` ("Brooks?" gives "Brook" and "Brooks"; the
    lookaround around "al" is left out)."""
    out = set()
    for word in regex.sub(r"\(\?<?[!=][^)]*\)", "", words).split("|"):
        assert regex.fullmatch(r"\w+(?:s\?)?", word), word
        out |= {word[:-2], word[:-1]} if word.endswith("s?") else {word}
    return out


# What the street patterns need somewhere in a text (each whole word, as the patterns read it; the compound street
# words end a word): most texts with a digit have none, and the patterns' alternations are slow to try everywhere.
_STREET_WORD_SET = frozenset(w.lower() for w in _alternatives(STREET_WORDS))
_US_SUFFIX_SET = frozenset(_alternatives(US_STREET_SUFFIXES))
_ANY_STREET_WORD_SET = _STREET_WORD_SET | {w.lower() for w in _US_SUFFIX_SET}
_COMPOUND_ENDINGS = tuple(w.lower() for w in _alternatives(COMPOUND_STREET_WORDS))
_WORD = regex.compile(r"\w+")


def _street_words_held(text: str) -> set[str]:
    """The street pattern needs (``STREET_LINE_PATTERNS``' third item) this text meets: "street" a street word,
    "us_suffix" a capitalised US suffix, "typed_us" either in any case or a P.O. box, "compound" a street word or a
    word ending in a compound one; "" always."""
    words = _WORD.findall(text)
    low = {w.lower() for w in words}
    held = {""}
    if not low.isdisjoint(_STREET_WORD_SET):
        held |= {"street", "compound"}
    elif any(w.endswith(_COMPOUND_ENDINGS) for w in low):
        held.add("compound")
    if not _US_SUFFIX_SET.isdisjoint(words):
        held.add("us_suffix")
    if not low.isdisjoint(_ANY_STREET_WORD_SET) or "box" in text.lower():
        held.add("typed_us")
    return held


_AU_STATE = r"(?:NSW|VIC|QLD|SA|WA|TAS|NT|ACT)"  # the only codes that stand before a bare four-digit postcode
_POSTCODE = (  # never the digits after a decimal point ("0.03567")
    r"(?<!\d[.,])(?:\b[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}\b"  # UK
    r"|\b[A-Z]\d[A-Z][ \t]?\d[A-Z]\d\b"                    # CA
    r"|\b\d{5}-\d{3}\b"                                    # BR
    r"|\b\d{4}[ \t]?[A-Z]{2}\b"                            # NL
    r"|\b\d{5}(?:-\d{4})?\b"                               # US, DE, FR, ES, IT
    rf"|\b{_AU_STATE},?[ \t]+\d{{4}}\b"                     # AU: ACT, 2008 (not "DOB 1990")
    r"|-\d{6}\b|(?<=\p{Lu}\p{Ll}+[ \t]+)\d{6}\b"              # IN: Indore-636083, Dehri 409854
    rf"|\b{_BR_CEP_DIGITS}"                                # BR: 01310100 São Paulo / SP
    r"|\b[A-Z]\d[\dW](?:[ \t][A-Z\d]{4}|(?=[A-Z\d]{0,3}[A-Z])[A-Z\d]{4})\b)"  # IE Eircode; glued, with a letter
    # among its last four: a letter and six digits is a code ("货号A123456", a Hong Kong ID), no Eircode
)
# Parts of a postal block: split at commas and line breaks, and at Chinese punctuation, which ends a clause the same
# way in mixed text ("……一厢情愿。PSC 4328, Box 8402, APO AP 39174": "PSC" is no word glued to "。").
_SEGMENT = regex.compile(r"[^,\n，。；！？、]+")
# A segment that opens with a 4-digit postcode after one that is a state code alone (AU: "Willisport, WA, 2630").
_FOUR_DIGITS = regex.compile(r"\s*\d{4}\b")
_STATE_CODE = regex.compile(rf"\s*{_AU_STATE}\s*")
_AU_POSTCODE = regex.compile(r"\d{4}\b")
# A postal block of one segment only is an address with a state and ZIP code, or letters and digits mixed.
_ONE_SEGMENT_BLOCK = regex.compile(r"[A-Z]{2}[ \t]+\d{5}|\d.*\p{L}{3}.*\d|\p{L}{3}.*\d.*\p{L}{3}")
_SEGMENT_OK_WORD = regex.compile(rf"^(?:/|[\p{{Lu}}\d(#][\p{{L}}\d'’.\-/()#]*|{_PARTICLE}|do|d'\S*|(?i:{STREET_WORDS})\.?|(?i:{_UNIT}))$")


Word = tuple[int, int, str]


def _words(text: str, start: int, end: int) -> list[Word]:
    return [(start + m.start(), start + m.end(), m.group()) for m in _NON_SPACE.finditer(text[start:end])]


def _address_word(word: str) -> bool:
    return _SEGMENT_OK_WORD.match(word) is not None and not word.endswith(("?", "!"))


def _ok_prefix(words: list[Word]) -> int:
    """How many words from the start look like part of an address (at most 7)."""
    n = 0
    while n < min(7, len(words)) and _address_word(words[n][2]):
        n += 1
    return n


def _ok_suffix(words: list[Word]) -> int:
    """How many words at the end look like part of an address (at most 7)."""
    n = 0
    while n < min(7, len(words)) and _address_word(words[len(words) - 1 - n][2]):
        n += 1
    return n


# ", Springfield", ", New York, NY 10118" after a street line: up to three capitalised words (not a sign-off or a
# sentence's next clause), then a state code and a postcode if they follow.
# A town on the street line's next line must carry a postcode (before or after it: "4405 Sankt Johann im Pongau",
# "Michaelport, NB H7C 6H3"), else the next line is anything ("Phone: …").
_NOT_TOWN = r"(?!(?:Thanks|Thank|Please|Regards|Best|Cheers|And|But|So|Then|Also|Sincerely|I|We|You)\b)"
_TOWN_WORD = r"\p{Lu}[\p{Ll}'’.\-]+(?:\p{Lu}[\p{Ll}'’.\-]+)?"  # "Kędzierzyn-Koźle" too
_TOWN = (rf"{_TOWN_WORD}(?:(?<!{_SENTENCE_END})[ \t]+(?:(?:im|am|an|der|de|da|do|dos|das|di|del|la|le|sur|upon|on)[ \t]+)?"
         rf"{_TOWN_WORD}){{0,2}}(?![\p{{L}}\d])")
_STATE = r"(?:,?[ \t]+[A-Z]{2,3}\b)"
# The province or state after an Italian or Brazilian town: "Gabella (PI)", "Porto da Praia / MA".
_PROVINCE = r"(?:[ \t]+\([A-Z]{2}\)|[ \t]*/[ \t]*[A-Z]{2}(?![\p{L}\d]))"
# "4405 Sankt Johann im Pongau", "56011, Gabella (PI)"; "2023 Edition" is a year, not a postcode and a town.
_POSTCODE_TOWN = rf"{_POSTCODE_VALUE},?[ \t]+(?!{_COUNTED_WORD}){_TOWN}"
_TOWN_TAIL = regex.compile(
    rf",[ \t]*{_NOT_TOWN}(?:{_POSTCODE_TOWN}|{_TOWN}{_STATE}?(?:,?[ \t]+{_POSTCODE_VALUE})?){_PROVINCE}?"
    rf"|[ \t]*\n[ \t]*{_NOT_TOWN}(?:{_POSTCODE_TOWN}|{_TOWN}{_STATE}?,?[ \t]+{_POSTCODE_VALUE}){_PROVINCE}?"
    r"(?=[ \t]*(?:[\n,.;]|$))")


_SENTENCE_NEXT = regex.compile(r"\s*(?:$|\n|[\p{Lu}\d\"'“(])")


def _full_stop(text: str, end: int) -> bool:
    """The "." that ends ``text[:end]`` closes the sentence ("… 55-226 Kraśnik. Can you"), so it is no part of
    the address; "Main St. now" keeps its abbreviation."""
    return text[end - 1] == "." and _SENTENCE_NEXT.match(text, end) is not None


class StreetAddressRecognizer(EntityRecognizer):
    """STREET_ADDRESS: a street line, and postal blocks (comma- or line-separated) ending in a postcode."""

    def __init__(self) -> None:
        self.street_patterns = [(regex.compile(p), s, need) for p, s, need in STREET_LINE_PATTERNS]
        self.postcode = regex.compile(_POSTCODE)
        self.unit_tail = regex.compile(rf",?[ \t]*(?<=[\s,]|\.){_UNIT}\b|(?<=(?i:{_UNIT_WORD}))[ \t]*\w{{1,5}}\b")
        super().__init__(supported_entities=["STREET_ADDRESS"], name="StreetAddressRecognizer")

    def load(self) -> None:
        """Patterns are compiled in ``__init__``."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        text = ideographs_as_spaces(text)
        results = []
        held = _street_words_held(text)
        for pattern, score, need in self.street_patterns:
            if need not in held:
                continue
            for m in pattern.finditer(text):
                end = m.end("a")
                while unit := self.unit_tail.match(text, end):
                    end = unit.end()
                for _ in range(2):  # the town after the street (and its postcode line): never half an address
                    if town := _TOWN_TAIL.match(text, end):
                        end = town.end()
                end -= _full_stop(text, end)
                results.append(RecognizerResult("STREET_ADDRESS", m.start("a"), end, score))
        results.extend(self._postal_blocks(text))
        return results

    def _postal_blocks(self, text: str) -> Iterator[RecognizerResult]:
        """Address-like words around a postcode, back over earlier segments (split at commas and line
        breaks) while they look like address lines, e.g. "Studio 6, Neil Oval, Port Jane, B7E 9EP".

        Prose around the block ("The parcel went to ... instead of my office") stops it."""
        segments = [(m.start(), m.end()) for m in _SEGMENT.finditer(text)]
        for i, (start, end) in enumerate(segments):
            if _DIGIT_RUN.search(text, start, end) is None:
                continue  # every postcode has a digit
            codes = list(self.postcode.finditer(text, start, end))
            if not codes and self._after_state(text, segments, i):
                codes = [_AU_POSTCODE.search(text, start, end)]
            for code in codes:
                before = _words(text, start, code.start())
                after = _words(text, code.end(), end)
                n_before, n_after = _ok_suffix(before), _ok_prefix(after)
                n_after = next((k + 1 for k, w in enumerate(after[:n_after]) if _ENDS_SENTENCE.search(w[2])), n_after)
                block_start = before[len(before) - n_before][0] if n_before else code.start()
                block_end = after[n_after - 1][1] if n_after else code.end()
                first = i
                while n_before == len(before) and first > 0 and i - first < 4:
                    before = _words(text, *segments[first - 1])
                    n_before = _ok_suffix(before)
                    if not n_before:
                        break
                    block_start = before[len(before) - n_before][0]
                    first -= 1
                if n_after == len(after) and i + 1 < len(segments):
                    nxt = _words(text, *segments[i + 1])
                    n_next = _ok_prefix(nxt)
                    # ", United Kingdom" goes with the block; a next line only when its first sentence is
                    # address-like ("\nLuttelgeest. /64", not "\nCode seems to...")
                    sentence = next((k + 1 for k, w in enumerate(nxt) if _ENDS_SENTENCE.search(w[2])), len(nxt))
                    whole_line = n_next >= sentence or text[segments[i][1]] == ","
                    n_next = min(n_next, sentence)
                    if 0 < n_next <= 4 and whole_line and \
                            not self.postcode.search(text, nxt[0][0], nxt[n_next - 1][1]):
                        block_end = nxt[n_next - 1][1]
                block_end -= _full_stop(text, block_end)
                block = text[block_start:block_end]
                if first == i and not _ONE_SEGMENT_BLOCK.search(block):
                    continue
                yield RecognizerResult("STREET_ADDRESS", block_start, block_end, 0.8)

    @staticmethod
    def _after_state(text: str, segments: list[tuple[int, int]], i: int) -> bool:
        """A segment starting with 4 digits right after a 2-3 letter state (AU: "Willisport, WA, 2630")."""
        return i > 0 and _FOUR_DIGITS.match(text[segments[i][0]:segments[i][1]]) is not None \
            and _STATE_CODE.fullmatch(text[segments[i - 1][0]:segments[i - 1][1]]) is not None


# --- phones, cards, SSNs --------------------------------------------------------------------------
# Not after a letter, digit or one dot (".830" is a decimal); after an ellipsis ("……830-482-6842", NFKC "......")
# a number starts afresh.
_PHONE = regex.compile(
    r"(?<![\w+\-/])(?<!(?<!\.)\.)(?P<p>(?:\+|00)?\(?\d[\d \t\-.()/]{5,}\d(?:[ \t]*(?:x|ext\.?|extension)[ \t]*\d{1,6})?)(?![\w\-]|:\d)"
)
# The cue words of numbers start a word: inside one they are no cue ("ring" in "Engineering", "tel" in "hotel",
# "call" in "recall", "charge" in "discharge", "tax" in "syntax"); a Chinese cue needs no boundary.
_WORD_START = r"(?<!\p{L})"
_PHONE_CONTEXT = regex.compile(
    rf"{_WORD_START}(?i:phone|call|tel|telephone|mobile|cell|reach|text me|whatsapp|fax|number|ring|contact|handy|"
    r"téléphone|teléfono|telefono|hotline|helpline|dial|landline|sms)|电话|手机|致电|拨打|请拨|热线|座机"
)
# What may stand between a value and the cue word that names it after it: "2025550143 is my number", "890082186
# (my SSN)".
_BEFORE_CUE = regex.compile(r"[ \t]*[,:(\-–]?[ \t]*(?:(?:is|was|are|=)[ \t]+)?(?:(?:my|our|his|her|their|the|a)[ \t]+)?"
                            r"(?:(?:new|old|work|home|personal|direct|office|business)[ \t]+)?", regex.IGNORECASE)


def cued(cue: regex.Pattern, text: str, start: int, end: int) -> bool:
    """A cue word in the 40 characters before the value at ``start:end``, or naming it right after it."""
    return cue.search(text, max(0, start - 40), start) is not None or \
        cue.match(text, _BEFORE_CUE.match(text, end).end()) is not None


_DIGIT_RUN = regex.compile(r"\d+")
_TRUNK_LAYOUT = regex.compile(r"0\d{4}[ \t]\d{5,6}")
_NON_DIGIT = regex.compile(r"\D")
_PHONE_SEPARATOR = regex.compile(r"[\-.()/]")
_EXTENSION = regex.compile(r"(?i)x|ext")
_DATE_LIKE = regex.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_IP_LIKE = regex.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
# Numbers that are no phone whatever their length: a span of years ("2005-2007"), a decimal ("0.0145926",
# "41007.08"), and decimals written one after another, as odds and prices are ("2.752.902" for 2.75 2.90 2,
# "1.30/4.20/8.50", "1.22-4.80-10.00", "106.5 / 107.0"): a single digit and a dot starts a decimal, and of phones
# only North America's trunk 1 is written so ("1.800.555.0199").
_YEAR_SPAN = regex.compile(r"^(?:19|20)\d\d[ \t]?[-–][ \t]?(?:19|20)\d\d$")
_DECIMALS = regex.compile(r"^\d+\.\d{1,2}$|^0\.\d+$|^(?!1\.\d{3}\.\d{3}\.\d{4}$)\d\.\d+(?:\.\d+)+$"
                          r"|^\d{1,4}\.\d{1,2}(?:[ \t]*[/\-][ \t]*\d{1,4}\.\d{1,2})+$")


def _number_list(value: str, cued: bool) -> bool:
    """A list of numbers, not one phone number: "123456 12345678 111111" (a password list) has several groups of
    five or more digits separated by blanks; "123456789" or "1111111" alone only counts up or repeats. After a
    phone cue ("call 1234567890", "TELEPHONENUM: 09315 293923") one or two groups are a number all the same, and
    so they are after a "+" ("+44113 4960772") or in a trunk-0 layout of 10-11 digits ("07624 236276"): no list
    is written so."""
    groups = _DIGIT_RUN.findall(value)
    if len(groups) <= 2 and (cued or value.startswith("+") or _TRUNK_LAYOUT.fullmatch(value)):
        return False
    if sum(len(g) >= 5 for g in groups) >= 2 and not _PHONE_SEPARATOR.search(value):
        return True
    return len(groups) == 1 and (value in "01234567890" or value in "98765432109" or len(set(value)) == 1)


class PhoneNumberRecognizer(EntityRecognizer):
    """PHONE_NUMBER in any country's format: 7-15 digits, separators, +CC / 00CC, extensions."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PHONE_NUMBER"], name="PhoneNumberRecognizer")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        for m in _PHONE.finditer(ideographs_as_spaces(text)):
            value = m.group("p").rstrip(" \t-.(/")
            main = _EXTENSION.split(value)[0]
            digits = _NON_DIGIT.sub("", main)
            context = cued(_PHONE_CONTEXT, text, m.start(), m.end())
            if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(value) or _IP_LIKE.match(value) \
                    or _YEAR_SPAN.match(value) or _DECIMALS.match(value) or _number_list(main, context):
                continue
            # The 3-2-4 layout of a US social security number is no phone number's, unless a phone is named and no
            # social security number: SsnRecognizer takes it, so its surrogate is an SSN ("123-45-6789").
            if _SSN.fullmatch(value) and (not context or cued(_SSN_CONTEXT, text, m.start(), m.end())):
                continue
            if value.count("(") != value.count(")") and not value.startswith("+"):
                value = value.lstrip("(")
            separated = len(_DIGIT_RUN.findall(main)) >= 2
            if value.startswith(("+", "00")):
                score = 0.75
            elif separated:
                score = 0.6
            elif digits.startswith("0") and len(digits) >= 9:
                score = 0.5
            else:
                score = 0.3
            if context:
                score = min(1.0, score + 0.3)
            start = m.start("p") + m.group("p").index(value)
            results.append(RecognizerResult("PHONE_NUMBER", start, start + len(value), score))
        return results


_CARD = regex.compile(r"(?<![\d\-])(?P<c>\d(?:[ \-]?\d){11,18})(?![\d\-])")
_CARD_CONTEXT = regex.compile(
    rf"{_WORD_START}(?i:card|visa|mastercard|amex|credit|debit|charge|cc|ending|kreditkarte|carte|tarjeta|carta)"
    r"|卡号|银行卡|信用卡|储蓄卡|借记卡")


# The name of an order, parcel or ticket number right before a number: that number is the reference, whatever
# check it passes (a Taobao order number has 18 digits, one in ten passes Luhn). Read on the Simplified view.
_REFERENCE_BEFORE = regex.compile(
    r"(?:(?i:order|tracking|invoice|reference|ref|ticket|case|booking|confirmation|transaction|shipment|waybill|"
    r"parcel)(?:[ \t]*(?:#|(?i:number|no\.?|id|code)))?|单号|编号|流水号|交易号)[ \t]*(?:[:是为]|(?i:is))?[ \t]*$")


def names_a_reference(text: str, start: int) -> bool:
    """Whether the number at ``start`` is named an order, tracking, invoice or ticket number (订单号, 运单号…); the
    card rules still take it when a card is named before it ("use this card for the booking: 4111…")."""
    return _REFERENCE_BEFORE.search(text, max(0, start - 24), start) is not None


class CardNumberRecognizer(EntityRecognizer):
    """CREDIT_CARD of 12-19 digits (19-digit Visa and Maestro included), Luhn-checked; never a 身份证 number."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["CREDIT_CARD"], name="CardNumberRecognizer")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        results = []
        for m in _CARD.finditer(text):
            digits = _NON_DIGIT.sub("", m.group("c"))
            context = _CARD_CONTEXT.search(text, max(0, m.start() - 40), m.start()) is not None
            # A 身份证 number may pass Luhn too; an order number named as one is no card unless a card is named too.
            if is_resident_id(digits) or names_a_reference(text, m.start("c")) and not context:
                continue
            if luhn_ok(digits):
                score = 0.95 if context else 0.85
            elif context:
                score = 0.6
            else:
                continue
            results.append(RecognizerResult("CREDIT_CARD", m.start("c"), m.end("c"), score))
        return results


# An IBAN written whole or in groups of four: two letters, two check digits, 11-30 letters and digits.
_IBAN = regex.compile(r"(?<![\p{L}\d])(?P<i>[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?))"
                      r"(?![\p{L}\d])")


class IbanChecksumRecognizer(EntityRecognizer):
    """IBAN_CODE whose MOD 97-10 check digits hold, whatever length its country code's table expects: Presidio's
    recognizer refuses an account of a country it lists with another length (a bank's own test value, a
    mistyped code); one random uppercase string in 97 passes the check, so none comes without it."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["IBAN_CODE"], name="IbanChecksumRecognizer")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        return [RecognizerResult("IBAN_CODE", m.start("i"), m.end("i"), 0.6)
                for m in _IBAN.finditer(ideographs_as_spaces(text)) if iban_ok(m.group("i").replace(" ", ""))]


_SSN = regex.compile(r"(?<![\d\-])(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}(?![\d\-])")
# After an SSN cue any nine digits in the SSN layout are one (dots, no separator, test and ITIN ranges too).
_SSN_AFTER_CUE = regex.compile(r"(?<![\d\-.])\d{3}([- .]?)\d{2}\1\d{4}(?![\d\-]|\.\d)")
_SSN_CONTEXT = regex.compile(rf"{_WORD_START}(?i:ssn|social security|social-security|social\b|tax)")


class SsnRecognizer(EntityRecognizer):
    """US_SSN as ddd-dd-dddd in the valid ranges; next to a cue word ("SSN", "social security", "my social:",
    "… is my SSN") any nine digits laid out as one (``123.45.6789``, ``123456789``)."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["US_SSN"], name="SsnRecognizer")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        found = {}
        for m in _SSN.finditer(text):
            found[m.span()] = 0.9 if cued(_SSN_CONTEXT, text, m.start(), m.end()) else 0.6
        for m in _SSN_AFTER_CUE.finditer(text):
            if cued(_SSN_CONTEXT, text, m.start(), m.end()):
                found[m.span()] = 0.9
        return [RecognizerResult("US_SSN", s, e, score) for (s, e), score in found.items()]


# --- e-mail ----------------------------------------------------------------------------------------
class LatinEmailRecognizer(EmailRecognizer):
    """Presidio's email recognizer with a Latin-script pattern: its own reads ``\\w``, which takes Chinese
    characters as part of the address, so "请发到zhang@163.com谢谢" lost the whole clause around it; an ASCII-only
    one cut "josé.garcía@correo.es" to "a@correo.es", leaving the name before it. The local part starts with a
    letter, digit or "_" (a "?" or an ellipsis before it ends the sentence: "好吗？a@b.com", "呢…a@b.com", which
    NFKC makes "..."; a single dot after a letter starts none) and then takes every character an address may hold
    ("o'brien'16@", "a+b@", "zoë.müller@"). The TLD check (``validate_result``, offline tldextract) is
    Presidio's."""

    PATTERNS = [Pattern("Email (Latin)", r"(?<![\p{Latin}\p{M}0-9_%+'\-])(?<![\p{Latin}\p{M}0-9_%+'\-]\.)[\p{Latin}0-9_]"
                                         r"[\p{Latin}\p{M}0-9.!#$%&'*+/=?^_`{|}~\-]{0,63}@"
                                         r"[\p{Latin}0-9](?:[\p{Latin}\p{M}0-9\-]{0,62}[\p{Latin}\p{M}0-9])?"
                                         r"(?:\.[\p{Latin}0-9](?:[\p{Latin}\p{M}0-9\-]{0,62}[\p{Latin}\p{M}0-9])?)*"
                                         r"\.[A-Za-z]{2,24}(?![\p{Latin}\p{M}0-9\-])", 0.5)]


_SPELLED_DOT = r"(?:[ \t]*[\[(<{][ \t]*dot[ \t]*[\])>}][ \t]*|[ \t]+dot[ \t]+)"
_SPELLED_AT = r"(?:[ \t]*[\[(<{][ \t]*at[ \t]*[\])>}][ \t]*|[ \t]*\([ \t]*@[ \t]*\)[ \t]*|[ \t]+at[ \t]+)"
_EMAIL_LABEL = r"[\p{Latin}\p{M}0-9_%+\-]+"
_TLD = (r"(?:com|org|net|edu|gov|mil|int|info|biz|io|co|ai|app|dev|me|tv|us|uk|ca|au|nz|ie|de|fr|es|it|nl|be|ch|at|"
        r"se|no|dk|fi|pl|pt|br|mx|ar|in|jp|kr|cn|ru)")
OBFUSCATED_EMAIL = regex.compile(
    rf"(?<![\p{{Latin}}\p{{M}}0-9_.%+\-])(?P<e>{_EMAIL_LABEL}(?:(?:{_SPELLED_DOT}|\.){_EMAIL_LABEL})*{_SPELLED_AT}"
    rf"{_EMAIL_LABEL}(?:(?:{_SPELLED_DOT}|\.){_EMAIL_LABEL})*(?:{_SPELLED_DOT}|\.){_TLD})(?![\p{{Latin}}\p{{M}}0-9\-])",
    regex.IGNORECASE)
_OBFUSCATION = regex.compile(rf"{_SPELLED_DOT}|[\[(<{{][ \t]*(?:at|@)[ \t]*[\])>}}]", regex.IGNORECASE)


class ObfuscatedEmailRecognizer(EntityRecognizer):
    """EMAIL_ADDRESS written to dodge scrapers: "jane dot doe at gmail dot com", "ann [at] example [dot] org",
    "mike_r(at)yahoo.com". A plain " at " before a dotted domain stays prose ("look at github.com"): one spelled
    "dot" or a bracketed "at"/"dot" must be in it."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["EMAIL_ADDRESS"], name="ObfuscatedEmailRecognizer")

    def load(self) -> None:
        """Nothing to load."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        return [RecognizerResult("EMAIL_ADDRESS", m.start("e"), m.end("e"), 0.8) for m in OBFUSCATED_EMAIL.finditer(text)
                if _OBFUSCATION.search(m.group("e"))]


# --- English person names: what spaCy finds, kept or refused, and a gazetteer for what it misses ----------
# Words that are never a person on their own, whatever spaCy says: roles in a chat transcript, sentence
# openers, titles and field labels.
NEVER_A_NAME = frozenset(
    "human assistant user system bot chatbot ai gpt chatgpt model narrator interviewer interviewee moderator "
    "host guest speaker customer agent admin sure alright okay ok yes yeah yep no nope well hi hello hey dear "
    "hallo bonjour salut hola ciao hej servus moin grüß gruezi olá buongiorno buenos bonsoir "
    "thanks thank absolutely certainly great cool right oh wow hmm please sorry sir madam ma'am mr mrs ms dr "
    "name email phone address subject re fw fwd regards cheers best note notes step steps answer question "
    "january february march april june july august september october november december monday tuesday "
    "wednesday thursday friday saturday sunday today tomorrow yesterday god lord jesus christ allah".split())
_LATIN_NAME = regex.compile(r"\p{Latin}[\p{Latin}'’\-]*")
_TOKEN = regex.compile(r"\p{L}[\p{L}'’\-]*\p{L}|\p{L}")


@dataclass(frozen=True)
class NameLexicon:
    """Given and family names of every Latin-script locale Faker ships (a gazetteer: evaluation is on public
    data, not on Faker's text), and the English words WordNet lists as adjectives, verbs and adverbs or as
    nouns (shipped inside spaCy's model as its lemmatizer's index): "Sure", "Canadian", "English" are words."""

    given: frozenset[str]
    family: frozenset[str]
    not_nouns: frozenset[str]
    nouns: frozenset[str]
    verbs: frozenset[str]

    def is_verb(self, word: str) -> bool:
        """A verb in any simple inflection ("signed", "feels", "added", "makes")."""
        return any(form in self.verbs for form in _lemmas(word.casefold()))

    def is_name(self, word: str) -> bool:
        return word in self.given or word in self.family

    def is_word(self, word: str) -> bool:
        """An English word in any simple inflection ("Therapists", "Looks"), or a stop word ("The", "Our")."""
        return _is_word(self, word)

    def never(self, word: str) -> bool:
        """Not a name alone: a role or opener, or an adjective/verb/adverb that no locale gives as a name."""
        low = word.casefold().rstrip(".")
        return low in NEVER_A_NAME or (low in self.not_nouns and word not in self.given)

    def group_plural(self, word: str) -> bool:
        """"Canadians", "Democrats", "Puerto Ricans": a plural whose singular is a word or a demonym, while the
        plural itself is no name ("Williams", "Evans" stay names)."""
        if len(word) < 4 or not word.endswith("s") or self.is_name(word):
            return False
        singular = word[:-1]
        return self.is_word(singular) or _DEMONYM_END.search(singular) is not None


_DEMONYM_END = regex.compile(r"(?:an|ian|ean|ite|er|ist)$")
_APOSTROPHE = regex.compile(r"['’]")


@lru_cache(maxsize=100_000)
def _is_word(lexicon: NameLexicon, word: str) -> bool:
    from spacy.lang.en.stop_words import STOP_WORDS

    low = _APOSTROPHE.split(word.casefold())[0]  # "You're", "Night's"
    if low in STOP_WORDS:
        return True
    return any(form in lexicon.not_nouns or form in lexicon.nouns for form in _lemmas(low))


def _lemmas(low: str) -> tuple[str, ...]:
    """A lower-case word and the stems its regular inflections (-s, -es, -ies, -ied, -ed, -ing) may come from."""
    forms = [low]
    for suffix, stems in (("ies", ("y",)), ("es", ("", "e")), ("s", ("",)), ("ied", ("y",)), ("ed", ("", "e")),
                          ("ing", ("", "e")),
                          ("iest", ("y",)), ("est", ("", "e")), ("ier", ("y",)), ("er", ("", "e")), ("ly", ("",))):
        if low.endswith(suffix) and len(low) - len(suffix) >= 3:
            forms += [low[:-len(suffix)] + stem for stem in stems]
            break
    return tuple(forms)


@cache
def places() -> frozenset[str]:
    """Countries and US states (Faker's English lists): "India blocked", "Georgia passed" are no persons."""
    from faker.providers.address.en import Provider as English
    from faker.providers.address.en_US import Provider as American

    return frozenset(word for place in (*English.countries, *American.states) for word in place.split())


@cache
def name_lexicon(nlp=None) -> NameLexicon:
    """Built once per process (about two seconds: Faker's person providers, spaCy's lemma index)."""
    import importlib

    from faker.config import AVAILABLE_LOCALES

    given: set[str] = set()
    family: set[str] = set()
    for locale in AVAILABLE_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:
            continue
        for attr, target in (("first_names", given), ("first_names_male", given), ("first_names_female", given),
                             ("first_names_nonbinary", given), ("last_names", family)):
            values = provider.__dict__.get(attr)
            if isinstance(values, (list, tuple, dict, set, frozenset)) or hasattr(values, "keys"):
                target.update(v for v in values if isinstance(v, str) and _LATIN_NAME.fullmatch(v) and len(v) > 1)
    index = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index") if nlp is not None else {}
    not_nouns = {w for pos in ("adj", "verb", "adv") for w in index.get(pos, ()) if "_" not in w}
    nouns = {w for w in index.get("noun", ()) if "_" not in w}
    verbs = {w for w in index.get("verb", ()) if "_" not in w}
    return NameLexicon(frozenset(given), frozenset(family), frozenset(not_nouns), frozenset(nouns), frozenset(verbs))


def _sentence_initial(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\"'“‘(*-•>":
        i -= 1
    return i < 0 or text[i] in ".!?\n:;"


def person_words_ok(text: str, start: int, end: int, lexicon: NameLexicon) -> bool:
    """Whether spaCy's PERSON span is a person: not a role, opener or adjective alone, not a group in the
    plural, not a common word alone unless some locale gives it as a name."""
    words = _TOKEN.findall(text[start:end])
    if not words or any(lexicon.never(w) for w in words if len(words) == 1) or lexicon.group_plural(words[-1]):
        return False
    if any(len(w) >= 3 and w.isupper() for w in words):
        return False  # an acronym inside: "Meine IBAN", "Contact HR"
    if len(words) == 1:
        word = words[0]
        if word.casefold() in PRODUCT_WORDS or lexicon.is_word(word) and _sentence_initial(text, start):
            return False  # "select Evernote as the source"; "Mark all as read"
        return lexicon.is_name(word) or not lexicon.is_word(word)
    # "Gender Male", "Admission Date": a field label and its value, both English words ("Strobe Talbott" is a name).
    def common(w: str) -> bool:
        return lexicon.never(w) or len(w) > 3 and lexicon.is_word(w) and not lexicon.is_name(w)

    return not (lexicon.never(words[0]) or common(words[0]) and lexicon.is_word(words[-1])
                or all(common(w) for w in words))


class GazetteerNameRecognizer(EntityRecognizer):
    """PERSON from the name lists where spaCy is silent: "given family" pairs (also lower-case, as in social
    media), and a capitalised given name inside a sentence that is not an English word."""

    def __init__(self, lexicon: NameLexicon) -> None:
        self.lexicon = lexicon
        super().__init__(supported_entities=["PERSON"], name="GazetteerNameRecognizer")

    def _family_after(self, text: str, tokens: list[tuple[int, int, str]], i: int) -> int | None:
        """The index of the family name after the given name at ``i`` ("Ana Lima", "Keith A. Walker"), if any."""
        lex = self.lexicon
        j = i + 1
        if j < len(tokens) and len(tokens[j][2]) == 1 and tokens[j][2].isupper() and \
                text[tokens[j][1]:tokens[j][1] + 1] == ".":
            j += 1  # a middle initial
        if j >= len(tokens) or text[tokens[j - 1][1]:tokens[j][0]] not in (" ", ". "):
            return None
        word = tokens[j][2]
        if word[0].isupper() and not word.isupper() and word in lex.family and not lex.never(word) \
                and not lex.group_plural(word):
            return j
        return None

    def load(self) -> None:
        """The lexicon is given."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts=None) -> list[RecognizerResult]:
        lex = self.lexicon
        tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
        results = []
        i = 0
        while i < len(tokens):
            start, end, word = tokens[i]
            nxt = tokens[i + 1] if i + 1 < len(tokens) and text[end:tokens[i + 1][0]] in (" ", ". ") else None
            after = text[end:end + 1]
            taken = 1
            capitalised = word[0].isupper() and not word.isupper() and len(word) > 1
            if capitalised and word in lex.given and not lex.never(word):
                family = self._family_after(text, tokens, i)
                if family:
                    results.append(RecognizerResult("PERSON", start, tokens[family][1], 0.7))
                    taken = family - i + 1
                elif not _sentence_initial(text, start):
                    if not lex.is_word(word):
                        results.append(RecognizerResult("PERSON", start, end, 0.6))
                elif not lex.is_word(word) and (after == "," or (nxt and nxt[2].islower() and lex.is_verb(nxt[2]))):
                    results.append(RecognizerResult("PERSON", start, end, 0.6))  # "Satwinder may join", "Nushin, …"
            elif capitalised and len(word) >= 3 and not lex.is_word(word) and not lex.never(word) \
                    and _sentence_initial(text, start) \
                    and (after == "," or (nxt and nxt[2].islower() and lex.is_verb(nxt[2]))):
                results.append(RecognizerResult("PERSON", start, end, 0.55))  # "Nushin, can you…", "Eaves signed…"
            elif word.islower() and len(word) >= 3 and nxt and nxt[2].islower() and len(nxt[2]) >= 3:
                first, last = word.capitalize(), nxt[2].capitalize()
                if first in lex.given and last in lex.family and not lex.never(first) and not lex.never(last) \
                        and not (lex.is_word(word) and lex.is_word(nxt[2])):
                    results.append(RecognizerResult("PERSON", start, nxt[1], 0.6))
                    taken = 2
            i += taken
        return results
