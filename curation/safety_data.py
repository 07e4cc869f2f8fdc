"""Labelled synthetic data for the data-safety steps, made from this project's own templates.

The PII tests and benchmark measure leakage on the ``heldout`` splits, whose templates
are written separately from the ``dev``/``train`` ones (different wording, different contexts), so
a recognizer or head tuned on one split is scored on sentences it has not seen.

Faker fills the PII slots with values (names, phones, addresses, cards, IBANs in several locales);
its word lists are never used by the detectors.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

PII_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_AU", "en_IE")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


@dataclass
class LabelledText:
    text: str
    spans: list[Span] = field(default_factory=list)
    template: str = ""

    def values(self) -> list[tuple[str, str]]:
        return [(s.label, self.text[s.start:s.end]) for s in self.spans]


# Slots: {NAME} full name, {FIRST} first name, {LAST} last name, {EMAIL}, {PHONE}, {ADDRESS} street line,
# {FULL_ADDRESS} multi-line postal address, {CARD}, {IBAN}, {IP}, {SSN}. Text outside slots is not PII.
PII_TEMPLATES: dict[str, tuple[str, ...]] = {
    "dev": (
        "Hi, my name is {NAME} and I can't log in to my account.",
        "Hello, I'm {FIRST}. My email is {EMAIL}, please reset my password.",
        "Dear {NAME},\nyour export is ready. Reply to this mail if anything is missing.",
        "Please call me back on {PHONE}, I'm available after 5pm.",
        "My new address is {ADDRESS}, can you update the invoice?",
        "Ship the printed notebook to:\n{FULL_ADDRESS}",
        "I was charged twice on card {CARD}. Please refund one of them.",
        "Refund to my bank account please, IBAN {IBAN}.",
        "The sync fails from IP {IP} every night, is it blocked?",
        "For the tax form my SSN is {SSN}.",
        "Thanks for the quick fix!\n\nBest regards,\n{NAME}",
        "Hi {FIRST}, thanks for reaching out. The Plus plan costs 8 dollars per month.",
        "Can you ask {NAME} to call me at {PHONE}?",
        "This is {NAME} from accounting; send the receipt to {EMAIL}.",
        "Mr. {LAST} said the Team plan would be cheaper.",
        "I live at {ADDRESS} and the delivery never arrived.",
        "Contact details: {NAME}, {PHONE}, {EMAIL}",
        "Cheers,\n{FIRST}",
        "Invoice address:\n{NAME}\n{FULL_ADDRESS}",
        "{NAME} here, my card ending {CARD} keeps being declined.",
        "Hi there, how do I export my notes to PDF?",
        "The app crashed twice on Monday after the 3.2 update.",
        "Does the Free plan allow 500 notes or 100 notes?",
        "Windows 11 and macOS 14 both show the sync error E-1042.",
        "We moved to the Team plan in March 2025 and paid 15 dollars per user.",
    ),
    "heldout": (
        "Good morning, {NAME} speaking. I need help with my subscription.",
        "Could you send the confirmation to {EMAIL}? Thanks, {FIRST}",
        "You can reach me at {PHONE} or by mail.",
        "We are located at {ADDRESS}, second floor.",
        "Please post the replacement device to\n{FULL_ADDRESS}\nThank you!",
        "Charge the remaining balance to {CARD}.",
        "Our company account is {IBAN}, reference 2291.",
        "Login attempts from {IP} look suspicious to me.",
        "Social security number: {SSN}",
        "Kind regards,\n{NAME}",
        "Hey {FIRST}! Did the refund go through?",
        "My colleague {NAME} ({EMAIL}) will take over the ticket.",
        "Ms. {LAST} asked whether notes can be shared with guests.",
        "Send it to {NAME}, {ADDRESS}.",
        "Name: {NAME}\nPhone: {PHONE}\nEmail: {EMAIL}",
        "Dear {FIRST}, your ticket has been closed.",
        "I am {NAME} and I forgot which email I signed up with.",
        "Thank you so much,\n{FIRST} {LAST}",
        "The parcel went to {FULL_ADDRESS} instead of my office.",
        "Pay the invoice with card number {CARD}, expiry next year.",
        "Is the Plus plan really 8 dollars per month?",
        "Version 4.1 fixed the crash on Android 14.",
        "I exported 230 notes on Friday and 12 were missing.",
        "Our team in Berlin uses the Team plan since January.",
        "The error code was 0x80070005 after restarting.",
    ),
}

PII_SLOT = re.compile(r"\{(NAME|FIRST|LAST|EMAIL|PHONE|ADDRESS|FULL_ADDRESS|CARD|IBAN|IP|SSN)\}")
SLOT_LABEL = {
    "NAME": "PERSON", "FIRST": "PERSON", "LAST": "PERSON", "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER",
    "ADDRESS": "STREET_ADDRESS", "FULL_ADDRESS": "STREET_ADDRESS", "CARD": "CREDIT_CARD", "IBAN": "IBAN_CODE",
    "IP": "IP_ADDRESS", "SSN": "US_SSN",
}
_MILITARY = re.compile(r"\b(?:APO|FPO|DPO|USNS|USNV|USS|USCGC|PSC|Unit)\b")


def _grouped(digits: str, rng: random.Random) -> str:
    """Cards and IBANs are written in groups of four as often as not."""
    return " ".join(digits[i:i + 4] for i in range(0, len(digits), 4)) if rng.random() < 0.5 else digits


def _international(phone: str, country_code: str, rng: random.Random) -> str:
    digits = re.sub(r"\D", "", phone.split("x")[0]).lstrip("0")[-10:]
    if rng.random() < 0.5 or len(digits) < 8:
        return phone
    return f"+{country_code} {digits[:3]} {digits[3:6]} {digits[6:]}"


_COUNTRY_CODE = {"en_US": "1", "en_GB": "44", "de_DE": "49", "fr_FR": "33", "es_ES": "34", "it_IT": "39",
                 "nl_NL": "31", "en_AU": "61", "en_IE": "353"}


def _slot_value(slot: str, fake, locale: str, rng: random.Random, person: tuple[str, str]) -> str:
    first, last = person
    if slot == "NAME":
        return f"{first} {last}"
    if slot == "FIRST":
        return first
    if slot == "LAST":
        return last
    if slot == "EMAIL":
        return fake.free_email() if rng.random() < 0.5 else re.sub(r"[^\w.]", "", f"{first}.{last}".lower()) + "@" + fake.free_email_domain()
    if slot == "PHONE":
        return _international(fake.phone_number(), _COUNTRY_CODE[locale], rng)
    if slot in ("ADDRESS", "FULL_ADDRESS"):
        address = fake.address()
        while _MILITARY.search(address):
            address = fake.address()
        lines = [line.strip() for line in address.splitlines() if line.strip()]
        if slot == "ADDRESS":
            return fake.street_address()
        return "\n".join(lines) if rng.random() < 0.6 else ", ".join(lines)
    if slot == "CARD":
        card = fake.credit_card_number(card_type=rng.choice(["visa16", "visa19", "mastercard", "amex", "discover"]))
        return _grouped(card, rng)
    if slot == "IBAN":
        return _grouped(fake.iban(), rng)
    if slot == "IP":
        return fake.ipv4_public()
    if slot == "SSN":
        return fake.ssn() if locale == "en_US" else f"{rng.randint(101, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    raise KeyError(slot)


def pii_examples(n: int, split: str = "dev", seed: int = 0) -> list[LabelledText]:
    """``n`` labelled texts from the ``split`` templates; same arguments give the same texts."""
    from faker import Faker

    templates = PII_TEMPLATES[split]
    fakers = {loc: Faker(loc) for loc in PII_LOCALES}
    rng = random.Random(f"{split}:{seed}")
    out = []
    for i in range(n):
        template = templates[i % len(templates)]
        locale = rng.choice(PII_LOCALES)
        fake = fakers[locale]
        fake.seed_instance(rng.getrandbits(32))
        person = (fake.first_name(), fake.last_name())
        text, spans, pos = "", [], 0
        for m in PII_SLOT.finditer(template):
            text += template[pos:m.start()]
            value = _slot_value(m.group(1), fake, locale, rng, person)
            spans.append(Span(len(text), len(text) + len(value), SLOT_LABEL[m.group(1)]))
            text += value
            pos = m.end()
        text += template[pos:]
        out.append(LabelledText(text, spans, template))
    return out


def conversation_with_pii(seed: int = 0) -> dict:
    """One support conversation in which the same person, email and phone come back in several turns."""
    ex = pii_examples(3, "dev", seed)
    name = ex[0].values()[0][1]
    email = f"{name.split()[0]}.{name.split()[-1]}@example.org".lower()
    return {"messages": [
        {"role": "system", "content": "You are the support assistant for Lumen Notes."},
        {"role": "user", "content": f"Hi, my name is {name}. My email is {email} and my phone is +44 20 7946 0958."},
        {"role": "assistant", "content": f"Thanks {name.split()[0]}! I sent a reset link to {email}."},
        {"role": "user", "content": f"Got it. Please also call +44 20 7946 0958 if needed. Regards, {name}"},
        {"role": "assistant", "content": f"Will do, {name}. Anything else?"},
    ]}


# --- benign support text ----------------------------------------------------------------------------
# Support and product text with no personal data at all: what the scrubber must leave alone. Slots are
# filled from the lists below (products, plans, quantities with units, dates, UI words, app names);
# sentence-initial capitalised words and capitalised UI labels are there on purpose.
BENIGN_SLOTS: dict[str, tuple[str, ...]] = {
    "PRODUCT": ("Lumen Notes", "Lumen", "the Lumen app", "Lumen for Teams"),
    "PLAN": ("Free", "Plus", "Team", "Pro", "Business", "Enterprise", "Starter", "Family"),
    "APP": ("Evernote", "Notion", "OneNote", "Google Keep", "Google Drive", "Dropbox", "Slack", "Trello",
            "Obsidian", "Bear", "Simplenote", "Outlook", "Gmail", "Zapier", "Todoist", "Apple Notes",
            "Microsoft Word", "PayPal", "Stripe", "Zoom", "Jira", "Confluence", "Asana", "Box", "iCloud"),
    "FORMAT": ("Markdown", "PDF", "HTML", "CSV", "JSON", "DOCX", "Plain text", "ENEX", "OPML", "RTF"),
    "QTY": ("3 seats", "10 seats", "200 MB", "50 GB", "1.5 GB", "100 KB", "30 days", "14 days", "90 days",
            "2 devices", "5 devices", "500 notes", "100 notes", "15 users", "25 users", "2 hours", "45 minutes",
            "4 weeks", "12 months", "3 years", "20 percent", "50 percent", "8 dollars", "15 dollars",
            "10 attachments", "1,000 pages", "40 tags", "3 notebooks", "6 members", "24 hours", "2 TB",
            "300 characters", "12 MB", "5 GB", "7 days"),
    "PRICE": ("$8", "8 dollars", "$15 per user", "€12.50", "15 USD", "$96 a year", "£7", "120 EUR"),
    "DATE": ("March 3", "3 June", "2025-03-01", "Monday", "next Friday", "January 2026", "the 15th",
             "12/05/2024", "last Tuesday", "May 1st", "Q3", "yesterday at 9 am"),
    "UI": ("File", "Import", "Export", "Settings", "Billing", "Account", "Security", "Share", "Help", "View",
           "Edit", "Tools", "Preferences", "Sync", "Trash", "Archive", "Templates", "Search", "Profile",
           "Notifications", "Integrations", "Members", "Plan", "Storage", "Backup", "Restore", "Advanced",
           "Privacy", "Appearance", "Shortcuts", "Devices", "General", "Upgrade", "Downgrade", "Labs"),
    "DEVICE": ("iPhone 15", "Pixel 8", "Windows 11", "macOS 14", "Android 14", "an iPad", "a Chromebook",
               "Ubuntu 22.04", "Galaxy S23", "Surface Pro 9", "iOS 17.4"),
    "VERSION": ("3.2", "4.1", "4.1.7", "5.0 beta", "2024.11", "10.3.1"),
    "ERROR": ("E-1042", "0x80070005", "ERR_SYNC_409", "code 503", "E-77", "HTTP 429"),
    "KEY": ("Ctrl+Shift+E", "Cmd+K", "Alt+F4", "Ctrl+P", "Cmd+Option+N", "F11"),
    "NUM": ("2", "3", "5", "8", "12", "30", "100", "250", "1,200"),
}

BENIGN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "dev": (
        "The {PLAN} plan needs at least {QTY}.",
        "Attachments can be up to {QTY} each on {PLAN}.",
        "Max upload size?",
        "Can students pay less for {PRODUCT}?",
        "Yes, use {UI}, then {UI}, and choose {APP} or {FORMAT} files.",
        "Can I import notes from {APP}?",
        "How much does the {PLAN} plan cost?",
        "The {PLAN} plan costs {PRICE} per month.",
        "Open {UI}, choose {UI}, and pick {FORMAT} or {FORMAT}.",
        "Go to {UI}, then {UI}, and click {UI}.",
        "Version history is kept for {QTY} on {PLAN} and {PLAN}.",
        "{PRODUCT} syncs across {QTY} on the {PLAN} plan.",
        "Sync stopped on {DEVICE} after the {VERSION} update.",
        "Export fails with {ERROR} when the note is over {QTY}.",
        "Press {KEY} to open {UI} quickly.",
        "Does {PRODUCT} work with {APP}?",
        "We moved from {APP} to {PRODUCT} on {DATE} and lost {QTY}.",
        "Refunds are possible within {QTY} of purchase.",
        "Storage on {PLAN} is limited to {QTY}.",
        "Backup runs every {QTY} and keeps {QTY} of history.",
        "Invite up to {QTY} to a shared notebook from {UI}.",
        "Connect {APP} under {UI} > {UI}.",
        "Why does {DEVICE} show {ERROR} after {DATE}?",
        "Support answers every day from {NUM} am to {NUM} pm UTC.",
        "Students get {QTY} off {PLAN} with a school email.",
        "Turn on two-factor in {UI} under {UI} with an authenticator app.",
        "Upgrade to {PLAN} to get {QTY} of storage and {QTY}.",
        "Minimum {QTY} for the {PLAN} plan?",
        "Limit is {QTY} per note on {PLAN}.",
        "Pay with {APP} or a credit card; the {PLAN} plan is {PRICE}.",
        "I made a notebook called {UI} and it vanished.",
        "Send the invite to {QTY} from {UI}.",
        "Customer Success will reach out within {QTY}.",
        "Regards, {PRODUCT} Support",
        "This is {PRODUCT} {VERSION} on {DEVICE}.",
        "Thanks {PRODUCT} team, the {FORMAT} export works now.",
        "Mark all as read does nothing on {DEVICE}.",
        "Dear Support, my {FORMAT} export failed with {ERROR}.",
    ),
    "heldout": (
        "Is it true that {PLAN} only allows {QTY}?",
        "Each workspace on {PLAN} can hold {QTY} at most.",
        "Largest attachment you allow?",
        "Is there a cheaper option of {PRODUCT} for schools?",
        "Click {UI}, pick {UI} and select {APP} as the source.",
        "Is importing from {APP} or {FORMAT} supported?",
        "What does {PLAN} cost per year?",
        "{PLAN} is billed at {PRICE} every month.",
        "Under {UI} > {UI} you can export to {FORMAT}.",
        "From {UI}, open {UI} and press {UI}.",
        "Old versions stay restorable for {QTY}.",
        "Works on up to {QTY} with {PRODUCT} {PLAN}.",
        "After updating to {VERSION} on {DEVICE} the editor freezes.",
        "Got {ERROR} while uploading {QTY} of scans.",
        "Shortcut {KEY} toggles {UI}.",
        "Will {PRODUCT} sync my {APP} notebooks?",
        "Since {DATE} the {PLAN} workspace shows only {QTY}.",
        "Cancel within {QTY} to get the money back.",
        "Quota for {PLAN}: {QTY}.",
        "Snapshots are taken every {QTY}.",
        "Share with {QTY} via {UI}.",
        "Link {APP} from {UI} → {UI}.",
        "Random logouts on {DEVICE} since {DATE}.",
        "Chat support runs {NUM} am to {NUM} pm on weekdays.",
        "Discount for nonprofits is {QTY} on {PLAN}.",
        "Enable passkeys from {UI} in the {UI} tab.",
        "Moving up to {PLAN} adds {QTY} and {QTY}.",
        "Smallest team size on {PLAN}?",
        "Cap per upload is {QTY}.",
        "Checkout accepts {APP}, cards and invoices; {PLAN} costs {PRICE}.",
        "Create a tag named {UI} first.",
        "Room for {QTY} on the {PLAN} plan?",
        "Partner Portal access is part of {PLAN}.",
        "Best, the {PRODUCT} team",
        "It's {FORMAT} only, not {FORMAT}.",
        "Grace period is {QTY} after renewal.",
        "Apartment hunting template, {NUM} Bedrooms, {NUM} Baths.",
        "Sync with {APP} or {APP} from {UI}.",
    ),
}
_BENIGN_SLOT = re.compile(r"\{(" + "|".join(BENIGN_SLOTS) + r")\}")


def benign_support_texts(n: int, split: str = "dev", seed: int = 0) -> list[str]:
    """``n`` support/product texts with no personal data (the scrubber must return them unchanged)."""
    rng = random.Random(f"benign:{split}:{seed}")
    templates = BENIGN_TEMPLATES[split]
    out = []
    for i in range(n):
        text = _BENIGN_SLOT.sub(lambda m: rng.choice(BENIGN_SLOTS[m.group(1)]), templates[i % len(templates)])
        out.append(text[0].upper() + text[1:])
    return out
