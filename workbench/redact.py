"""Privacy redaction: find personal data and secrets in text and replace them with typed placeholders.

Five detectors, each a set of precompiled patterns behind a cheap prefilter, with validators that
reject look-alikes (dates, versions, order numbers, prices, hashes, IMEIs):

    EMAIL   local@domain.tld (a local part in any one script, CJK text may touch it), and
            the obfuscated "jane[at]example[dot]com"
    PHONE   +CC international forms, national forms valid in libphonenumber's plans, and
            numbers of 6 to 15 digits next to a word such as "phone", "Tel.", "電話" or "… is my
            new number", or with an extension written out
    CARD    13 to 19 digits, bare or in card-shaped groups, that pass the Luhn check
    IP      IPv4 and IPv6, validated with `ipaddress`
    SECRET  API keys and tokens by shape, Bearer/Basic credentials, values assigned to names
            like `api_key` or `password` (only the value is replaced), passwords in URLs, in
            "my password is ..." and after "password for the test account:", PEM private keys

Findings never overlap: the higher-priority kind wins (SECRET > CARD > EMAIL > IP > PHONE),
then the longer match. `redact` repeats until nothing is found, so its output is a fixed point.

Patterns that run over the whole text start with a literal or a character class and check their
left boundary with a lookbehind after that first character, so `re` can skip ahead quickly.
"""

from __future__ import annotations

import bisect
import html
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import phonenumbers

from workbench.errors import ConfigError

__all__ = [
    "KINDS",
    "Finding",
    "find",
    "redact",
    "redact_html",
    "redact_json",
    "redact_shapes",
    "scan",
]

KINDS: Final = ("EMAIL", "PHONE", "CARD", "IP", "SECRET")

_PRIORITY: Final = {"SECRET": 5, "CARD": 4, "EMAIL": 3, "IP": 2, "PHONE": 1}
_MAX_PASSES: Final = 16


@dataclass(frozen=True)
class Finding:
    """One detected span: its kind, its [start, end) offsets and the matched text."""

    kind: str
    start: int
    end: int
    text: str


_Span = tuple[int, int]


@dataclass(frozen=True)
class _Doc:
    """The text the detectors read: folded to ASCII look-alikes, and lowercased, same offsets."""

    text: str
    lower: str


def _compile(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile with ASCII classes, so a digit class means 0-9 and nothing else."""
    return re.compile(pattern, flags | re.ASCII)


def _words(words: Iterable[str], before: str = "a-z0-9") -> str:
    """An alternation of lowercase words, each opening with a literal and a boundary lookbehind."""
    return "|".join(f"{w[0]}(?<![{before}]{re.escape(w[0])}){w[1:]}" for w in words)


# Full-width forms (common in Japanese and Chinese text), no-break and thin spaces, Unicode
# hyphens, and the digits of other scripts (Arabic-Indic, Persian, Devanagari, Bengali, Thai, …)
# fold to ASCII one character for one, so offsets into the original text stay valid.
_DIGIT_ZEROS: Final = (
    0x0660, 0x06F0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810,
)  # fmt: skip
_FOLD: Final = {
    **{cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)},
    **{cp: 0x20 for cp in (0x00A0, 0x2007, 0x2009, 0x202F, 0x3000)},
    **{cp: 0x2D for cp in (0x2010, 0x2011, 0x2012, 0x2212)},
    **{zero + i: 0x30 + i for zero in _DIGIT_ZEROS for i in range(10)},
}
_FOLDABLE = re.compile(
    "[\u00a0\u2007\u2009\u202f\u3000\u2010-\u2012\u2212\uff01-\uff5e"
    + "".join(f"{chr(zero)}-{chr(zero + 9)}" for zero in _DIGIT_ZEROS)
    + "]"
)


def _fold_char(m: re.Match[str]) -> str:
    """The ASCII look-alike of one foldable character."""
    return chr(_FOLD[ord(m.group())])


def _doc(text: str) -> _Doc:
    """Fold and lowercase `text` without moving any offset."""
    if not text.isascii():
        text = _FOLDABLE.sub(_fold_char, text)
    lower = text.lower()
    if len(lower) != len(text):  # "İ" lowercases to two characters, "i" and a combining dot
        lower = "".join(c.lower()[0] for c in text)
    if "[" in text:
        lower = _PLACEHOLDER.sub(_blank, lower)
    return _Doc(text, lower)


# Placeholders in the text (from an earlier pass, or an earlier redaction) are blanked where cue
# words are looked for: "[PHONE]" must not read as the word "phone" and make the next number a
# phone, and no cue reaches across one.
_PLACEHOLDER = re.compile(r"\[(?:email|phone|card|ip|secret)\]")


def _blank(m: re.Match[str]) -> str:
    """As many NUL characters as the placeholder is long."""
    return "\x00" * len(m.group())


# ---------------------------------------------------------------------------------------------
# Cue words

# A cue ending in "*" is a stem that takes any inflection ("telefon*": "Telefonnummer",
# "телефон*": "телефону"); any other cue is a whole word.
_SUFFIX = "[a-z\u00df-\u02af\u0430-\u045f]*"


_LETTER = "a-z0-9\u00df-\u02af\u0430-\u045f"


def _cues(words: Iterable[str]) -> str:
    """Cue words and stems as one flat alternation (which `re` scans fastest), each with a word
    boundary before it (none in Japanese, Chinese and Korean, which glue words to numbers)."""
    branches = []
    for w in words:
        word = w.rstrip("*")
        branch = word if word[0] >= "\u3040" else _words([word], _LETTER)
        branches.append(branch + (_SUFFIX if w.endswith("*") else f"(?![{_LETTER}])"))
    return "|".join(branches)


# Phone cues are looked up word by word in the few words before a candidate number, rather
# than with a pattern over the whole text: a word (a run of letters; in Japanese and Chinese, a
# run of text between punctuation) is a cue when it is one of the words, starts with one of the
# stems, or, written without spaces, contains one.
_WORD = re.compile(r"[^\s\d\x00-/:-@\[-`{-~°º\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+")


@dataclass(frozen=True)
class _CueWords:
    """A set of cue words and stems (ending in "*"), as `_WORD` finds them in lowercased text."""

    whole: frozenset[str]
    stems: frozenset[str]
    inner: tuple[str, ...]

    @classmethod
    def of(cls, words: Iterable[str]) -> _CueWords:
        words = list(words)
        unspaced = tuple(w.rstrip("*") for w in words if "\u3040" <= w[0] <= "\u9fff")
        return cls(
            frozenset(w for w in words if not w.endswith("*")),
            frozenset(w[:-1] for w in words if w.endswith("*") and w[:-1] not in unspaced),
            unspaced,
        )

    def has(self, word: str) -> bool:
        """Whether `word` is one of the cues."""
        if word in self.whole:
            return True
        if any(word[:n] in self.stems for n in range(2, min(len(word), 14) + 1)):
            return True
        return "\u3040" <= word[0] <= "\u9fff" and any(cue in word for cue in self.inner)


# ---------------------------------------------------------------------------------------------
# EMAIL

_LATIN = "A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af"
_LOCAL = rf"(?<![{_LATIN}._%+\-])[{_LATIN}_%+\-]+(?:\.[{_LATIN}_%+\-]+)*"
# The same local part read backwards from the "@": the language is its own mirror image.
_LOCAL_REVERSED = _compile(rf"[{_LATIN}_%+\-]+(?:\.[{_LATIN}_%+\-]+)*")
# Domains in Latin letters, or internationalised in a script written with spaces (".укр").
_IDN = "\u0370-\u03ff\u0400-\u04ff\u0530-\u058f\u0590-\u05ff\u0600-\u06ff\u0900-\u097f\u10a0-\u10ff"
_DOMAIN = _compile(
    rf"@(?:[{_LATIN}{_IDN}](?:[{_LATIN}{_IDN}\-]{{0,61}}[{_LATIN}{_IDN}])?\.)+"
    rf"(?:[A-Za-z]{{2,24}}|[{_IDN}]{{2,24}})(?![{_LATIN}{_IDN}_\-@]|\.[{_LATIN}{_IDN}])"
)
# A local part may be written in any script (RFC 6531), but in one: read back from the "@" while
# the letters stay in the script of the last one, so the sentence it is glued to in Japanese or
# Chinese ("メールはトモヤ@…") stays. Digits and ._%+- go with any script.
_SCRIPTS: Final = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u1e00-\u1eff",  # Latin, IPA's "ə" too
    "\u0370-\u03ff\u1f00-\u1fff",  # Greek
    "\u0400-\u052f",  # Cyrillic
    "\u0531-\u0556\u0559\u0561-\u0587",  # Armenian letters (not its punctuation)
    "\u10a0-\u10c5\u10d0-\u10fa\u10fc-\u10ff\u1c90-\u1cbf",  # Georgian letters
    "\u0590-\u05ff",  # Hebrew
    "\u0600-\u06ff\u200c",  # Arabic, and the zero-width non-joiner of Persian
    "\u0900-\u0dff\u200c\u200d",  # Indic scripts, their vowel signs and (non-)joiners included
    "\u0e00-\u0eff",  # Thai, Lao
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",  # Hangul
    # Japanese and Chinese: kana and Han, one script here, since a Japanese name mixes them
    "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
)
_SCRIPT_OF = [re.compile(f"[{chars}]") for chars in _SCRIPTS]
# Apostrophes join letters inside a name: "o'brien", and Ukrainian "Лукʼян" with the modifier
# letter apostrophe (or the typographic one).
_APOSTROPHES: Final = "'\u02bc\u2019"
_LOCAL_RUNS = [re.compile(f"[{chars}0-9._%+{_APOSTROPHES}\\-]{{1,64}}") for chars in _SCRIPTS]
_LOCAL_SYMBOLS: Final = frozenset("0123456789._%+-'")
# Particles and words that end the sentence before an address written in kana or Han:
# "メールアドレスはくみ子.前田@…", "邮箱是王芳@…".
_CJK_STOPS: Final = frozenset("はがをにでへ是为為在到给給发發至或及的")
_AT_GATE = _compile(r"[\[(] ?at ?[\])]")
_AT, _DOT = r"\s?[\[(]\s?at\s?[\])]\s?", r"\s?[\[(]\s?dot\s?[\])]\s?"
_EMAIL_OBFUSCATED = _compile(
    rf"{_LOCAL}{_AT}[{_LATIN}\-]+(?:(?:{_DOT}|\.)[{_LATIN}\-]+)*(?:{_DOT}|\.)[a-z]{{2,24}}"
    rf"(?![{_LATIN}])"
)


def _local_start(text: str, reversed_text: str, at: int) -> int:
    """Where the local part ending at `at` (the "@") starts, or `at` when there is none."""
    i = at - 1
    while i >= 0 and text[i] in _LOCAL_SYMBOLS:
        i -= 1
    script = 0
    if i >= 0 and text[i] not in _LOCAL_SYMBOLS:
        script = next((k for k, p in enumerate(_SCRIPT_OF) if p.match(text[i])), -1)
        if script < 0:
            i = -1  # a letter of no known script, or punctuation: digits and symbols only
    run = _LOCAL_RUNS[max(script, 0)].match(reversed_text, len(text) - at)
    if run is None:
        return at
    start = at - (run.end() - run.start())
    if script == len(_SCRIPTS) - 1:
        start = max([start] + [k + 1 for k in range(start, at) if text[k] in _CJK_STOPS])
    while start < at and text[start] in "." + _APOSTROPHES:  # "o'brien@…" keeps it, "'x@…'" not
        start += 1
    return start


def _anchored(text: str, reversed_text: str, at: int, pattern: re.Pattern[str]) -> _Span | None:
    """The match of `pattern` whose local part ends just before position `at`, if any."""
    local = _LOCAL_REVERSED.match(reversed_text, len(text) - at)
    if local is None:
        return None
    m = pattern.match(text, at - (local.end() - local.start()))
    return m.span() if m is not None and m.end() > at else None


def _emails(doc: _Doc) -> Iterator[_Span]:
    """Spans of email addresses, plain or written with [at] and [dot]."""
    # Start from each "@" rather than trying a local part at every letter of the text.
    text, reversed_text = doc.text, doc.text[::-1]
    at = text.find("@")
    while at != -1:
        start = _local_start(text, reversed_text, at)
        domain = _DOMAIN.match(text, at) if start < at else None
        at = text.find("@", domain.end() if domain else at + 1)
        if domain:
            yield start, domain.end()
    gates = list(_AT_GATE.finditer(doc.lower))
    reversed_lower = doc.lower[::-1] if gates else ""
    for gate in gates:
        at = gate.start() - (gate.start() > 0 and doc.lower[gate.start() - 1].isspace())
        span = _anchored(doc.lower, reversed_lower, at, _EMAIL_OBFUSCATED)
        if span:
            yield span


# ---------------------------------------------------------------------------------------------
# PHONE

# A candidate is any run of digit groups joined by one separator (" ", "-", ".", "/", possibly
# with spaces around it) or by brackets, with an optional "+" and extension, that is not glued
# to a word, a path or a longer number. `_phone_end` then decides what it is.
_PHONE = _compile(
    r"(?<![A-Za-z0-9_+\-./#@=&%$\\])"
    r"(?P<n>(?:\+ ?)?(?:\(\+?\d{1,5}(?:[ \-]\d{1,4})?\)|\d++)"
    r"(?:(?: ?[\-./] ?| |(?<=\))|(?=\())(?:\(\+?\d{1,5}(?:[ \-]\d{1,4})?\)|\d++)){0,8})"
    r"(?P<x> ?(?i:x|ext\.?|extn\.?|extension|#|доб\.?) ?\d{1,6})?"
    r"(?![A-Za-z0-9_@]|[\-./]\d)"
)
_PHONE_CUES = (
    # English, then German, Dutch and Nordic, Romance, Slavic, Baltic, Finnic, Hungarian, Greek,
    # Turkish, Indonesian, Vietnamese, Thai, Hebrew
    "phone*", "telephone*", "tel", "mobile", "mob", "cell", "cellphone", "fax", "call*",
    "ring", "text", "sms", "whatsapp", "viber", "telegram", "signal", "number", "reach",
    "dial", "hotline", "landline", "contact", "telefon*", "handy*", "mobil*", "rufnummer",
    "nummer", "anruf*", "rufen", "ruf", "erreichbar", "durchwahl", "telefoon*", "mobiel*", "bel",
    "bellen", "tlf", "puh", "puhelin*", "soita*", "soit*", "téléphone*", "tél", "portable", "joindre",
    "appel*", "rappel*", "numéro", "numero", "número", "teléfono", "telefono", "móvil", "movil",
    "celular", "llam*", "contacto", "telefone", "fone", "ligar", "ligue", "liga", "contato",
    "cellulare", "chiam*", "contatt*", "kom", "komórk*", "komork*", "numer*", "zadzwo*", "dzwo*",
    "zavolej*", "čísl*", "čisl*", "cisl*", "cep", "ara*", "numara*", "телефон*", "тел", "моб*",
    "номер*", "позвон*", "звон*", "зателефон*", "дзвон*", "контакт*", "rückruf*", "llám*",
    "zavola*", "nazov*", "zov*", "mobitel*", "skambin*", "обадете*", "suna*", "hív*",
    "τηλέφων*", "τηλ", "κινητ*", "καλέ*", "hubungi*", "telepon*", "telp", "hp", "wa", "nomor",
    "thoại", "sđt", "gọi", "số", "โทร*", "טלפון*", "נייד",
    # Icelandic, Estonian, Latvian, Slovenian, Bosnian, Albanian, Macedonian, Azerbaijani,
    # Georgian, Armenian, Persian, Arabic, Bengali, Tamil, Zulu, Maltese
    "sím*", "hringdu", "hringi*", "helista*", "numbri*", "tālru*", "zvan*", "pokli*", "broj*",
    "nazovi*", "numri*", "telefononi", "јави*", "број*", "nömrə*", "zəng*", "ტელეფონ*",
    "ნომერ*", "დარეკ*", "հեռախոս*", "զանգ*", "համար*", "تلفن*", "شماره*", "موبایل*", "تماس*",
    "هاتف*", "جوال*", "رقم*", "اتصل*", "ফোন*", "মোবাইল*", "নম্বর*", "தொலைபேசி*", "கைபேசி*",
    "அழை*", "ucingo", "inombolo", "shayela", "ċempel*", "cempel*", "numru*", "mowbajl*",
    # Irish, Luxembourgish, Amharic, Gujarati, Sinhala, Hausa, Yoruba; and more words for
    # "reachable" and the line of a landline
    "glaoigh", "fón*", "uimhir*", "rufft", "uruff*", "telefonsnummer", "ስልክ*", "ይደውሉ*",
    "ફોન*", "કૉલ*", "નંબર*", "දුරකථන*", "අමතන්න", "waya", "lamba", "fóònù", "nọ́mbà", "pè",
    "joignable", "festnetz*", "line",
    # Japanese, Chinese, Korean, Hindi
    "電話*", "携帯*", "ケータイ*", "連絡*", "番号*", "电话*", "手机*", "手機*", "号码*", "號碼*",
    "联系*", "聯絡*", "拨打*", "致电*", "전화*", "휴대폰*", "핸드폰*", "연락*", "번호*",
    "फ़ोन*", "फोन*", "मोबाइल*", "कॉल*", "नंबर*", "संपर्क*",
)  # fmt: skip
_PHONE_CUE = _CueWords.of(_PHONE_CUES)
# A cue reaches up to 30 characters, not across a digit, a line, a placeholder or a sentence end.
# (A full stop after a word of up to three letters is an abbreviation's: "Tel.", "no.", "Nr.".)
_PHONE_CUE_GAP = _compile(
    r"(?:[^\n\d\x00.!?。！？]|\.(?!\s)|(?<=[a-z\u00df-\u024f\u0370-\u045f])"
    r"(?<![a-z\u00df-\u024f\u0370-\u045f]{4})\.){0,30}"
)
# The same clause: a few words of letters, no digit, no punctuation but an opening bracket
# ("… is my new number", "… (mobile)").
_CLAUSE_GAP = re.compile(
    r"(?:[^\W\d_]|[\u0300-\u036f\u0900-\u0963\u0966-\u0dff])*"  # letters, and Indic vowel signs
    r"(?:[ '\u2019(](?:[^\W\d_]|[\u0300-\u036f\u0900-\u0963\u0966-\u0dff])*){0,5}"
)
# Numbers introduced as orders, invoices, tickets and the like are not phones, nor is a number
# introduced by a phone cue and then by one of these ("phone ... order 123").
_NOT_PHONE_CUES = (
    "order*", "invoice*", "inv", "ref", "reference", "serial", "sn", "sku", "tracking",
    "track", "parcel", "shipment", "package", "account", "acct", "iban", "case", "ticket",
    "part", "id", "isbn", "imei", "ean", "upc", "batch", "lot", "transaction", "txn", "receipt",
    "confirmation", "booking", "reservation", "policy", "claim", "member", "customer",
    "voucher", "coupon", "zip", "postcode", "plz", "version", "build", "firmware", "release",
    "patch", "model", "room", "page", "refund*",
    "cpf", "cnpj", "vat", "fedex", "ups", "usps", "dhl", "dpd", "gls", "hermes", "tnt",
    "bestell*", "rechnung*", "kunden*", "sendung*", "auftrag*", "vertrag*", "pedido", "factura",
    "cuenta", "commande", "facture", "ordine", "fattura", "bestelling", "factuur", "zamówieni*",
    "zamowieni*", "faktur*", "заказ*", "счет*", "счёт*", "sipari*", "objedn*", "tilau*",
    "fatura", "注文*", "請求*", "订单*", "訂單*", "单号*", "單號*", "주문*", "송장*", "ऑर्डर*",
)  # fmt: skip
_NOT_PHONE_CUE = _CueWords.of(_NOT_PHONE_CUES)
_NOT_PHONE_CUE_GAP = _compile(r"[^\n\d\x00]{0,16}")
# Words that say "number" after an order cue: "order number", "Bestellnr.", "n° de commande".
_NUMBER_WORDS = (
    r"number|no\.?|nr\.?|n[º°o]\.?|#|nummer|num[eé]ro|n[uú]mero|numer|номер|id|番号|号|번호"
)
_NUMBER_WORD: Final = frozenset(
    {"number", "no", "nr", "n", "nummer", "numéro", "numero", "número", "numer", "номер", "id"}
)
_NANP = _compile(r"(?:1[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}")
_RU_TRUNK = _compile(r"8[ \-]?(?:\(\d{3}\)|\d{3})[ \-]?\d{3}[ \-]?\d{2}[ \-]?\d{2}")
_DATE = _compile(
    r"(?:[0-3]?\d[./][01]?\d[./](?:\d\d)?\d\d|[0-3]?\d-[01]?\d-(?:19|20)\d\d"
    r"|(?:19|20)\d\d[./\-][01]?\d[./\-][0-3]?\d)(?!\d)"
)
_CURRENCY = _compile(r"\s?(?:[€$£¥₹₽₩元円]|zł|kr|eur|usd|gbp|chf|rub|руб|pln|brl|r\$)", re.I)
_PHONE_SEPARATORS = frozenset(" .-/()")
_DOTTED_QUAD = _compile(r"\d{1,3}(?:\.\d{1,3}){3}")
# Where a grouped number with no other sign is checked against libphonenumber's numbering plans.
_REGIONS: Final = (
    "GB", "DE", "FR", "ES", "IT", "NL", "BE", "PT", "BR", "MX", "AR", "JP", "CN", "TW", "KR",
    "IN", "RU", "UA", "PL", "CZ", "SE", "DK", "NO", "FI", "TR", "AT", "CH", "AU", "NZ", "IE",
)  # fmt: skip


def _digit_count(s: str) -> int:
    """How many ASCII digits `s` holds."""
    return sum(map(str.isdigit, s))


def _phone_cue(lower: str, start: int) -> str:
    """ "+" after a phone cue, "-" after an order-number cue (the nearer wins), else ""."""
    words = list(_WORD.finditer(lower, max(0, start - 48), start))
    for i in range(len(words) - 1, -1, -1):
        word, end = words[i].group(), words[i].end()
        if _NOT_PHONE_CUE_GAP.fullmatch(lower, end, start) and (
            _NOT_PHONE_CUE.has(word)
            or lower[words[i].start() - 2 : end] == "s/n"
            or (
                word in _NUMBER_WORD
                and i > 0
                and words[i].start() - words[i - 1].end() <= 2
                and _NOT_PHONE_CUE.has(words[i - 1].group())
            )
        ):
            return "-"
        if not _PHONE_CUE_GAP.fullmatch(lower, end, start):
            return ""
        if _PHONE_CUE.has(word):
            return "+"
    return ""


def _phone_cue_after(lower: str, end: int, *, clause: bool = False) -> bool:
    """Whether a phone cue follows the number: "… is my new number", "…までお電話ください",
    "…로 연락 주세요", "… numarasından arayın". An order-number cue on the way ends the search;
    with `clause`, so does any punctuation."""
    gap = _CLAUSE_GAP if clause else _PHONE_CUE_GAP
    for w in _WORD.finditer(lower, end, end + 32):
        word = w.group()
        if not gap.fullmatch(lower, end, w.start()) or _NOT_PHONE_CUE.has(word):
            return False
        if _PHONE_CUE.has(word):
            return True
    return False


def _possible(number: str) -> bool:
    """Whether an international number ("+44 20 …", "0044 20 …") has a possible length."""
    if number.startswith("00"):
        number = "+" + number[2:]
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def _valid_somewhere(number: str) -> bool:
    """Whether a national number is valid in one of `_REGIONS`."""
    for region in _REGIONS:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(number, region)):
                return True
        except phonenumbers.NumberParseException:
            return False
    return False


def _trims(number: str) -> Iterator[str]:
    """The number, then with its trailing groups dropped one by one (a year or count after it)."""
    yield number
    for i in range(len(number) - 1, 0, -1):
        if number[i] in " .-/" and number[i - 1].isdigit():
            head = number[:i]
            if _digit_count(head) < 8:
                return
            yield head


def _national_shape(number: str, digits: int) -> bool:
    """Whether a number with no "+" and no cue is written the way phone numbers are."""
    if _NANP.fullmatch(number) or _RU_TRUNK.fullmatch(number):
        return True
    seps = {c for c in number if c in _PHONE_SEPARATORS}
    if number.startswith(("0", "(0")) and not number.startswith("00"):
        # A trunk prefix: "020 7946 0958", "089/1234567", "06.12.34.56.78", "0556662419", and
        # the longest German numbers ("05386/48069011") when they are valid.
        return (9 <= digits <= 12 or (digits == 13 and _valid_somewhere(number))) and (
            "." not in seps or seps == {"."}
        )
    if number.startswith("("):  # an area code in brackets: "(83) 7352-3246"
        return digits >= 8
    if number.isdigit():  # a bare run: only a Chinese mobile number stands alone
        return digits == 11 and number[1] in "3456789" and _valid_in(number, "CN")
    groups = re.split(r"[ \-.]", number)
    # Dotted groups are a phone only when they are not shaped like an IPv4 address or a version.
    dotted = "." in seps and (seps != {"."} or bool(_DOTTED_QUAD.fullmatch(number)))
    return (
        not dotted
        and len(groups) >= 3
        and 8 <= digits <= 12
        and all(len(g) >= 2 for g in groups[1:])
        and _valid_somewhere(number)
    )


def _valid_in(number: str, region: str) -> bool:
    """Whether `number` is a valid number of `region`."""
    return phonenumbers.is_valid_number(phonenumbers.parse(number, region))


def _phone_end(doc: _Doc, start: int, number: str, ext: str, *, listed: bool = False) -> int:
    """Where the phone number starting at `start` ends, or 0 when the candidate is none.

    `listed` says a phone number ends just before, joined to this one by "or", "try", a comma
    or a slash ("use X; if nobody answers try Y"): that counts as a cue for a number of 7 or
    more digits that is no dotted quad and no timestamp.
    """
    signed = number[0] == "+" or number.startswith("(+")
    if signed or (
        number.startswith("00")
        and number[2:3] != "0"
        and _phone_cue(doc.lower, start) != "-"
        and (not number.isdigit() or _phone_cue(doc.lower, start) == "+")
    ):
        # Trailing groups are dropped (a year or a count after the number) only from a number
        # that says it is one, with its "+" or a cue: "0096-0955-9765-5366" is a reference.
        trusted = signed or _phone_cue(doc.lower, start) == "+"
        for head in _trims(number) if trusted else (number,):
            if _possible(head):
                return start + len(head) + (len(ext) if head == number else 0)
        return 0
    digits = _digit_count(number)
    date = _DATE.match(number)
    if not 6 <= digits <= 15 or (date and number[date.end() : date.end() + 1] in " "):
        return 0
    end = start + len(number)
    text = doc.text
    if _CURRENCY.match(text, end) or text[max(0, start - 2) : start].strip() in _CURRENCY_SIGNS:
        return 0
    cue = _phone_cue(doc.lower, start)
    if (
        cue == ""
        and listed
        and digits >= 7
        and not _DOTTED_QUAD.fullmatch(number)
        and not _TIMESTAMP.fullmatch(number)
    ):
        cue = "+"
    if digits == 6:  # a short local number ("Tel. 25 17 72"), grouped and after a cue only
        return end + len(ext) if cue == "+" and not number.isdigit() else 0
    # A cue after the number counts for a grouped one, and for a bare run in the same clause
    # ("08325111 is my new number") unless it is shaped like a Unix timestamp.
    after = cue == "" and _phone_cue_after(doc.lower, end + len(ext), clause=number.isdigit())
    if _DOTTED_QUAD.fullmatch(number):
        # An address or a version, unless cued, or followed by a cue with no one-digit group
        # ("612.30.86.39 is my new number"; not "updated to 12.17.1.21, the number …").
        version = _VERSION_CUE.search(doc.lower, max(0, start - 32), start)
        if cue != "+" and (version or not after or min(map(len, number.split("."))) < 2):
            return 0
    if after and (not number.isdigit() or not _TIMESTAMP.fullmatch(number)):
        cue = "+"
    # An extension written out makes a grouped national number a phone: "(022) 39542 ext. 7".
    if cue == "" and _EXTENSION_WORD.match(ext) and not number.isdigit():
        cue = "+"
    if cue == "+" or (cue == "" and _national_shape(number, digits)):
        return end + len(ext)
    return 0


_CURRENCY_SIGNS: Final = frozenset({"€", "$", "£", "¥", "₹", "₽", "R$"})
_TIMESTAMP = _compile(r"1\d{9}(?:\d{3})?")  # seconds or milliseconds, 2001 to 2033
_EXTENSION_WORD = _compile(r" ?(?i:ext\.?|extn\.?|extension|доб\.?) ?\d")


# Words that join two phone numbers of a list: "X or Y", "use X; if nobody answers try Y".
_LIST_WORDS: Final = frozenset(
    {
        "or", "and", "try", "else", "otherwise", "oder", "sonst", "ou", "sinon", "o", "y", "e",
        "oppure", "of", "lub", "albo", "nebo", "или", "або", "ili", "veya", "atau", "hoặc",
        "または", "或", "또는",
    }
)  # fmt: skip


def _listed(lower: str, last: int, start: int) -> bool:
    """Whether the number at `start` continues a list whose previous phone number ends at `last`."""
    if not _PHONE_CUE_GAP.fullmatch(lower, last, start):
        return False
    gap = lower[last:start].rstrip(" \t(")
    if gap.endswith((",", ";", "/", "|")):
        return True
    words = _WORD.findall(gap)
    return bool(words) and words[-1] in _LIST_WORDS and gap.endswith(words[-1])


_TWO_NUMBERS = re.compile(r"[^ ]+")
_TWO_NUMBERS_BRACKETED = re.compile(r"(?:^|(?<= ))\(.*?(?= \(|$)|^[^(]+(?= \()")


def _phones(doc: _Doc) -> Iterator[_Span]:
    """Spans of phone numbers."""
    last = -1  # where the last phone number found ends
    for m in _PHONE.finditer(doc.text):
        number, start = m.group("n"), m.start()
        if _digit_count(number) < 6:
            continue
        ext = m.group("x") or ""
        listed = last >= 0 and _listed(doc.lower, last, start)
        end = _phone_end(doc, start, number, ext, listed=listed)
        if end:
            last = end
            yield start, end
            continue
        # Two numbers a space apart ("031-688-6268 02-210-0898", "(351) 924 707 007 (351) 274
        # 237 680"): each on its own, the extension with the last.
        split = _TWO_NUMBERS_BRACKETED if " (" in number else _TWO_NUMBERS
        if " " not in number or (split is _TWO_NUMBERS and not set(number) & set("-./")):
            continue
        chunks = list(split.finditer(number))
        for i, chunk in enumerate(chunks):
            if _digit_count(chunk.group()) >= 7:
                final = i == len(chunks) - 1
                end = _phone_end(doc, start + chunk.start(), chunk.group(), ext if final else "")
                if end:
                    last = end
                    yield start + chunk.start(), end


# ---------------------------------------------------------------------------------------------
# CARD

_CARD = _compile(r"\d(?<![A-Za-z0-9_\-.,+]\d)(?:[ \-]?\d){12,18}(?![A-Za-z0-9_]|[\-.,]\d)")
# IMEIs are Luhn-valid 15-digit numbers too, and any long reference number may pass by chance.
_NOT_CARD_CUE = _compile(
    rf"(?:{_cues(('imei', 'imeisv', 'meid', 'iccid', 'imsi', 'isbn', 'ean', 'upc', 'gtin', 'order*', 'ref', 'reference', 'tracking', 'invoice*', 'serial', 'ticket', 'case', 'transaction', 'bestell*', 'pedido', 'commande', 'ordine', 'bestelling', 'заказ*', '注文*', '订单*'))})"
    rf"(?:\s*(?:{_NUMBER_WORDS}))?[^\w\n]{{0,3}}\Z"
)
# Group lengths written on cards: 4-4-4-4(-3), 4-4-4-1 (13 digits), Amex 4-6-5, Diners 4-6-4.
_CARD_GROUPS: Final = frozenset(
    {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 4, 5), (4, 6, 5), (4, 6, 4)}
)


def _luhn(digits: str) -> bool:
    """Whether an ASCII digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _issued(digits: str) -> bool:
    """Whether a number starts with an issuer prefix that issues cards of its length.

    ISBNs (978, 979), millisecond timestamps (1…) and most order numbers start elsewhere.
    """
    n, two, four = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return n in (13, 16, 19)
    if two in (34, 37):  # American Express
        return n == 15
    if two in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:  # Diners Club
        return n in (14, 16)
    if 51 <= two <= 55 or 2221 <= four <= 2720:  # Mastercard
        return n == 16
    # JCB (3528-3589, but all of 35 is theirs), Mir, Discover, UnionPay, Maestro, RuPay
    return (
        two == 35 or 2200 <= four <= 2204 or digits[0] == "6" or two in (50, 56, 57, 58, 81, 82)
    ) and 16 <= n <= 19


def _card_ok(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is card-shaped (bare or consistently grouped) and Luhn-valid."""
    candidate = text[start:end]
    seps = {c for c in candidate if not c.isdigit()}
    if len(seps) > 1:
        return False
    digits = candidate
    if seps:
        sep = seps.pop()
        groups = candidate.split(sep)
        if tuple(len(g) for g in groups) not in _CARD_GROUPS:
            return False
        # Four groups out of a longer grouped number (a USPS tracking number) are not a card.
        before, after = text[max(0, start - 5) : start], text[end : end + 5]
        if (before[-1:] == sep and before[:-1].isdigit() and len(before) == 5) or (
            after[:1] == sep and after[1:].isdigit() and len(after) == 5
        ):
            return False
        digits = "".join(groups)
    return 13 <= len(digits) <= 19 and _issued(digits) and _luhn(digits)


def _cards(doc: _Doc) -> Iterator[_Span]:
    """Spans of Luhn-valid card numbers."""
    for m in _CARD.finditer(doc.text):
        start, end = m.span()
        if _card_ok(doc.text, start, end) and not _NOT_CARD_CUE.search(
            doc.lower, max(0, start - 24), start
        ):
            yield start, end


# ---------------------------------------------------------------------------------------------
# IP

_IPV4 = _compile(r"\d(?<![A-Za-z0-9_.]\d)\d{0,2}(?:\.\d{1,3}){3}(?![A-Za-z0-9_]|\.\d|-[A-Za-z])")
_IPV6_GATE = _compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6 = _compile(
    r"[0-9A-Fa-f:](?<![A-Za-z0-9_:.].)"
    r"(?:(?<=:)|(?<=[0-9A-Fa-f])[0-9A-Fa-f]{0,3}:)(?:[0-9A-Fa-f]{0,4}:){1,6}"
    r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?"
    r"(?:%[A-Za-z0-9]+)?"
    r"(?![A-Za-z0-9_]|\.\d)"
)
# A dotted quad after one of these ("after updating to 12.17.1.21", "app 4.13.18.160") or before
# "update" is a version. The stems take any inflection and one short word after them.
_VERSION_CUES = (
    "version", "ver", "build", "release", "firmware", "rev", "revision", "patch", "updat*",
    "upgrad*", "app", "sdk", "driver", "ios", "android", "versi[oó]n", "vers[aã]o", "versie",
    "aggiornament*", "mise [aà] jour", "actualizaci[oó]n", "atualiza[cç][aã]o", "aktualisier*",
    "wersj*", "aktualizacj*", "обновлени*", "верси*", "バージョン*", "版本*", "升级*", "更新*",
    "버전*", "업데이트*", "संस्करण*",
)  # fmt: skip
_VERSION_CUE = _compile(
    rf"(?:{_cues(_VERSION_CUES)})(?:[^\w\n]{{1,3}}(?:to|auf|zu|à|a|al|alla|para|naar|na|do|до|la))?"
    r"[^\w\n]{0,3}\Z"  # (in ASCII mode \w is no CJK letter: "升级到")
)
_VERSION_AFTER = _compile(r"[ \-]?(?:update|upgrade|release|build|version|版|업데이트)", re.I)


def _ipv6_ok(candidate: str) -> bool:
    """Whether a candidate is a real IPv6 address rather than `a::b` code or a MAC address."""
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    if candidate.lower() == "::1":
        return True
    address = candidate.split("%", 1)[0]
    hextets = [h for h in address.split(":") if h]
    # "Cafe::Bad" and "x[1::2]" parse as IPv6 too; real addresses have a digit and a long group.
    return (
        len(hextets) >= 2
        and any(len(h) >= 3 for h in hextets)
        and any(c.isdigit() for c in address)
    )


# Loopback and unspecified addresses name no one's machine but the reader's own
# ("listening on 127.0.0.1:4318"): they stay, as do "::1" and "::".
_OWN_IPV6: Final = frozenset({"::1", "::", "0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0:0"})


def _ips(doc: _Doc) -> Iterator[_Span]:
    """Spans of IPv4 and IPv6 addresses (not loopback or unspecified ones)."""
    text = doc.text
    if "." in text:
        for m in _IPV4.finditer(text):
            try:
                address = ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if address.is_loopback or address.is_unspecified:  # this machine, no one's
                continue
            if _VERSION_CUE.search(doc.lower, max(0, m.start() - 32), m.start()):
                continue
            if _VERSION_AFTER.match(text, m.end()):
                continue
            # "Tlf. 32.10.64.53": two-digit groups after a phone cue (or before one, "… is my
            # new number") are a Nordic or French phone number.
            if m.end() - m.start() == 11 and (
                _phone_cue(doc.lower, m.start()) == "+" or _phone_cue_after(doc.lower, m.end())
            ):
                continue
            yield m.span()
    gate = _IPV6_GATE.search(text)
    if gate is not None:
        for m in _IPV6.finditer(text, max(0, gate.start() - 5)):
            candidate = m.group()
            if candidate.endswith(":") and not candidate.endswith("::"):
                candidate = candidate[:-1]
            if _ipv6_ok(candidate) and candidate not in _OWN_IPV6:
                yield m.start(), m.start() + len(candidate)


# ---------------------------------------------------------------------------------------------
# SECRET

_TOKEN_SHAPES = _compile(
    "(?:"
    + _words(
        (
            r"sk-[A-Za-z0-9_\-]{20,}",  # OpenAI sk-, sk-proj-, Anthropic sk-ant-
            r"sk_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
            r"rk_(?:live|test)_[A-Za-z0-9]{16,}",
            r"pk_(?:live|test)_[A-Za-z0-9]{16,}",
            r"AKIA[0-9A-Z]{16}",  # AWS access key ids
            r"ASIA[0-9A-Z]{16}",
            r"gh[pousr]_[A-Za-z0-9]{36,}",  # GitHub
            r"github_pat_[A-Za-z0-9_]{22,}",
            r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
            r"whsec_[A-Za-z0-9+/=]{24,}",  # Stripe webhook signing secret
            r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab
            r"npm_[A-Za-z0-9]{36}",
            r"hf_[A-Za-z0-9]{30,}",  # Hugging Face
            r"AIza[0-9A-Za-z_\-]{35}",  # Google
            r"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*",  # JWT
        ),
        before=r"A-Za-z0-9_\-",
    )
    + r")(?![A-Za-z0-9_\-])"
)
_TOKEN_HINTS: Final = (
    "sk-", "_live_", "_test_", "AKIA", "ASIA", "gh", "github_pat_", "xox", "AIza", "eyJ",
    "whsec_", "glpat-", "npm_", "hf_",
)  # fmt: skip
_AUTH_HEADER = _compile(
    rf"(?:{_words(('bearer', 'basic', 'token'))})\s+(?P<v>[a-z0-9\-._~+/]{{12,}}=*)"
    r"(?![a-z0-9\-._~+/=])"
)
_SECRET_NAMES = (
    r"api[_\- ]?key", "apikey", r"access[_\- ]?token", r"auth[_\- ]?token", r"refresh[_\-]?token",
    r"id[_\-]?token", r"session[_\-]?token", r"session[_\-]?id", r"client[_\- ]?secret",
    r"secret[_\-]?access[_\-]?key", r"secret[_\- ]?key", r"private[_\- ]?key", "secret", "token",
)  # fmt: skip
# "Password" in the languages of the locales the corpus covers (Maltese, Twi and Bosnian
# support texts write "password" or "lozinka"), and a few more.
_PASSWORD_WORDS = (
    "password", "passwort", "passwd", "passcode", "passphrase", "pwd", "kennwort",
    "contrase[ñn]a", "senha", "mot[_ ]de[_ ]passe", "mdp", "wachtwoord", "l[öo]senord",
    "adgangskode", "passord", "salasana", "şifre", "sifre", "şifrə", "heslo", "hasło", "haslo",
    "jelsz[óo]", "parol[aă]", "parole", "parol", "пароль", "κωδικός", "סיסמה", "パスワード",
    "密码", "密碼", "口令", "비밀번호", "암호", "पासवर्ड", "รหัสผ่าน", "kata sandi", "sandi",
    "mật khẩu", "lozinka", "лозинка", "парола", "slaptažodis", "geslo", "parool", "contrasenya",
    "lykilorð", "fjalëkalim", "პაროლი", "գաղտնաբառ", "كلمة المرور", "كلمة السر", "كلمة مرور",
    "رمز عبور", "گذرواژه", "کلمه عبور", "পাসওয়ার্ড", "கடவுச்சொல்", "iphasiwedi", "pasfhocal",
    "passwuert", "የይለፍ ቃል", "પાસવર્ડ", "මුරපදය", "kalmar sirri", "ọrọ igbaniwọle",
)  # fmt: skip
# Short forms seen in "user: bob / pass: x" and "DB_PW=x", cues only before ":" or "=".
_PASSWORD_SHORT = ("pass", "pw")
# Their stems in running text, where they inflect ("пароля", "Salasanani", "Şifrem", "hasła"),
# except where the stem would be an English prefix ("hasl" of "hasLines" in minified code).
_PASSWORD_STEMS = tuple(
    w if w == "haslo" else (w[:-1] if w[-1] in "aeoьа" else w) + "*" for w in _PASSWORD_WORDS
)
_SECRET_HINTS: Final = (
    "key", "token", "secret", "session", "pass", "pw", "wort", "contrase", "senha", "mdp",
    "mot de", "mot_de", "wacht", "senord", "kode", "ifre", "hesl", "hasł", "hasl", "jelsz",
    "parol", "salasan", "парол", "κωδικ", "סיסמ", "パスワード", "密码", "密碼", "口令", "비밀번호",
    "암호", "पासवर्ड", "รหัสผ่าน", "sandi", "khẩu", "lozink", "лозинк", "slaptažod", "geslo",
    "parool", "contrasenya", "lykilor", "ifrə", "fjalëkalim", "პაროლ", "գաղտնաբառ",
    "المرور", "السر", "مرور", "عبور", "گذرواژه", "পাসওয়ার্ড", "கடவுச்சொல்", "phasiwedi",
    "pasfhocal", "passwuert", "የይለፍ", "પાસવર્ડ", "මුරපදය", "sirri", "igbaniw",
)  # fmt: skip
# A bare value: printable ASCII up to a space, a quote, a comma, a semicolon or an angle bracket.
_VALUE = r"[!#-&(-+\--:=?-_a-~]"
# Run over the lowercased text; offsets are the same in the original.
_ASSIGNMENT = _compile(
    rf"(?:(?P<pw>{_cues((*_PASSWORD_STEMS, *_PASSWORD_SHORT))})|(?P<k>{_words(_SECRET_NAMES)}))"
    r"\\?[\"']?\s*(?:[:=]|=>)\s*(?:"
    r"\\\"(?P<e>[^\"\\\n]{4,256})\\\""
    r"|\"(?P<d>(?:[^\"\\\n]|\\.){4,256})\""
    r"|'(?P<s>(?:[^'\\\n]|\\.){4,256})'"
    rf"|(?P<b>{_VALUE}{{6,256}})"
    r")"
)
# "my password is X", "the password I set was X", "Mein Passwort ist X", "パスワードは X です",
# "le mot de passe du compte de test est X" (up to five words between); with no verb between
# ("Мой пароль X") the value must hold a letter and a digit.
_COPULAS = (
    r"is|was|are|ist|war|lautet|es|era|est|[eé]tait|[ée]|è|är|var|er|on|oli|je|jest|to|byl[oa]?"
    r"|это|—|–|-"
)
_PASSWORD_PROSE = _compile(
    rf"(?:{_cues(_PASSWORD_STEMS)})"
    rf"(?:(?:\s+[^\s\d\x00:=]{{1,12}}){{0,5}}?(?:\s+(?:{_COPULAS})\s+|\s*[は是为為는은]\s*)"
    r"|\s+(?=[!-~]*[a-z])(?=[!-~]*[\d!#$%&()*+=?@^~|\[\]{}]))"
    rf"(?:\"(?P<d>[^\"\n]{{4,64}})\"|'(?P<s>[^'\n]{{4,64}})'|(?P<v>{_VALUE}{{4,64}}))"
)
# "Pwd for the test tenant: X", "пароль от тестового стенда = X": a password word, then up to
# five words (no digit, no punctuation), then ":" or "=".
_PASSWORD_LABEL = _compile(
    rf"(?:{_cues(_PASSWORD_STEMS)})(?:[ \t]+[^\s\d\x00:=,.;!?()\[\]{{}}<>\"'@/]{{1,24}}){{1,5}}"
    r"[ \t]*[:=][ \t]*"
    rf"(?:\"(?P<d>[^\"\n]{{4,64}})\"|'(?P<s>[^'\n]{{4,64}})'|(?P<v>{_VALUE}{{4,64}}))"
)
# What a label introduces that is no password: an address, a link.
_NOT_PASSWORD = _compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}$|[a-z][a-z0-9+.\-]*://", re.I)
# A date, a time or a year is no password either ("password changed on 2026-06-21", where "on"
# is the Estonian "is"; "… on 2027年05月25日" leaves the year).
_DATE_OR_YEAR = _compile(
    r"\d{1,4}(?:[./\-]\d{1,2}[./\-]\d{1,4}|[./\-]\d{1,2}|(?::\d\d){1,2})|(?:19|20)\d\d"
)
# A JSON field whose name ends in a secret name: "password", "db_password", "OPENAI_API_KEY".
_SECRET_FIELD = _compile(
    rf"(?i)(?:.*[_\-\s.])?(?:{'|'.join(_SECRET_NAMES)}|(?P<pw>{'|'.join(_PASSWORD_WORDS + _PASSWORD_SHORT)}))"
)
_QUERY_NEXT = _compile(r"&[a-z_][a-z0-9_.\-]*=")
_URL_PASSWORD = _compile(r"://[^\s/:@\[\]]+:(?P<v>[^\s/@\[\]]{3,})@")
_PEM = _compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    # The body stops at the next "-----", so a BEGIN without an END costs no rescan.
    r"(?:(?:[^-]++|-(?!----))*+-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    r"|(?:(?:\\n|\\r|\s)+[A-Za-z0-9+/=]{16,})*)"
)
_PLACEHOLDERS_ONLY = _compile(r"(?:\s*\[(?:EMAIL|PHONE|CARD|IP|SECRET)\])+\s*")
_DUMMY_VALUES: Final = frozenset(
    {"null", "none", "nil", "true", "false", "undefined", "redacted", "<redacted>", "hidden"}
)


# A value that is a template or a command, not a secret: "%(db_password)s", "$(cat /run/pw)".
_TEMPLATE = _compile(r"%\(\w+\)[a-z]|\$\([^()]*\)$")
# A value that is code, as minified JavaScript assigns to a variable named "pw" or "pass": a call
# ("W((Nzr", "function(e){return") or a member path without digits ("Hge.CIRCLE_SIDES").
_CODE = _compile(
    r"[A-Za-z_$][\w$]*\((?:\(|[\w$,]*\)(?:[{;.,)]|$))"
    r"|[A-Za-z_$][A-Za-z_$]*(?:\.[A-Za-z_$][A-Za-z_$]*)*\.[A-Za-z_$]*(?:[a-z][A-Z]|_)[A-Za-z_$]*$"
)
_PASSWORD_SYMBOLS: Final = frozenset("!#$%&()*+=?@^~|[]{}\\/")


def _real_value(value: str, *, quoted: bool, password: bool, code: bool = False) -> bool:
    """Whether an assigned value looks like a credential rather than a placeholder or a word.

    `code` says the value may be code: a bare value after an ASCII name ("pw=W((Nzr" in
    minified JavaScript). Code names no variable "пароль", and prose is no code.
    """
    if _PLACEHOLDERS_ONLY.fullmatch(value) or value.lower() in _DUMMY_VALUES:
        return False
    if not value.strip("*xX.•…-_ ") or value.startswith(("${", "{{", "<")):
        return False
    if _TEMPLATE.match(value) or (code and _CODE.match(value)) or _DATE_OR_YEAR.fullmatch(value):
        return False
    looks_random = any(c.isdigit() for c in value) or len(value) >= 16
    if password:
        # Symbols among letters make a password too ("!(BWrcbbb(YDPf"), and so does a mix of
        # cases beyond a capital initial ("DZLIAGggwJUyh"); a final "!" or "?" may end the
        # sentence instead ("my password is wrong!").
        symbols = any(c in _PASSWORD_SYMBOLS for c in value[:-1])
        letters = any(c.isalpha() for c in value)
        mixed = sum(c.isupper() for c in value[1:]) >= 1 and any(c.islower() for c in value)
        return quoted or looks_random or (letters and symbols) or (len(value) >= 8 and mixed)
    return looks_random and len(value) >= 8 and not any(c.isspace() for c in value)


def _bare_end(text: str, key: int, start: int, end: int) -> int:
    """Where a bare value really ends: before "&next=" in a query string ("?pw=x&user=y"), before a full stop or
    colon that ends the sentence, and before a closing bracket that closes one opened before
    the key on its line ("(password: x)")."""
    value = text[start:end]
    query = _QUERY_NEXT.search(value.lower()) if text[key - 1 : key] in ("?", "&") else None
    if query is not None:
        value = value[: query.start()]
    before = text[text.rfind("\n", 0, key) + 1 : key]
    while value:
        last = value[-1]
        opener = "([{"[")]}".index(last)] if last in ")]}" else ""
        if last in ".:" or (
            opener
            and value.count(last) > value.count(opener)
            and before.count(opener) > before.count(last)
        ):
            value = value[:-1]
        else:
            break
    return start + len(value)


def _credential_ok(value: str) -> bool:
    """Whether a Bearer/Basic value looks random (a digit, or both cases) rather than a word."""
    return any(c.isdigit() for c in value) or (value.lower() != value and value.upper() != value)


def _secrets(doc: _Doc) -> Iterator[_Span]:
    """Spans of secrets: key shapes, auth headers, assigned values, URL passwords, PEM keys."""
    text, lower = doc.text, doc.lower
    if any(hint in text for hint in _TOKEN_HINTS):
        for m in _TOKEN_SHAPES.finditer(text):
            yield m.span()
    if "bearer" in lower or "basic" in lower or "token" in lower:
        for m in _AUTH_HEADER.finditer(lower):
            if _credential_ok(text[m.start("v") : m.end("v")]):
                yield m.span("v")
    if any(hint in lower for hint in _SECRET_HINTS):
        for m in _ASSIGNMENT.finditer(lower):
            group = m.lastgroup or "b"
            start, end = m.span(group)
            if group == "b":
                end = _bare_end(text, m.start(), start, end)
            password = m.group("pw") is not None
            name = m.group("pw") or m.group("k")
            code = group == "b" and name.isascii()
            if _real_value(text[start:end], quoted=group != "b", password=password, code=code):
                yield start, end
        for m in _PASSWORD_PROSE.finditer(lower):
            group = m.lastgroup or "v"
            start, end = m.span(group)
            if group == "v":
                end = _bare_end(text, m.start(), start, end)
            if _real_value(text[start:end], quoted=group != "v", password=True):
                yield start, end
        for m in _PASSWORD_LABEL.finditer(lower):
            group = m.lastgroup or "v"
            start, end = m.span(group)
            if group == "v":
                end = _bare_end(text, m.start(), start, end)
            value = text[start:end]
            code = group == "v" and lower[m.start() : m.start() + 1].isascii()
            if not _NOT_PASSWORD.search(value) and _real_value(
                value, quoted=group != "v", password=True, code=code
            ):
                yield start, end
    if "://" in text:
        for m in _URL_PASSWORD.finditer(text):
            if not _PLACEHOLDERS_ONLY.fullmatch(m.group("v")):
                yield m.span("v")
    if "-----BEGIN" in text:
        for m in _PEM.finditer(text):
            yield m.span()


# ---------------------------------------------------------------------------------------------
# API

_DETECTORS: Final[dict[str, Callable[[_Doc], Iterator[_Span]]]] = {
    "EMAIL": _emails,
    "PHONE": _phones,
    "CARD": _cards,
    "IP": _ips,
    "SECRET": _secrets,
}
_NEEDS_DIGIT: Final = frozenset({"PHONE", "CARD", "IP"})
_DIGIT = _compile(r"\d")


def _kind_set(kinds: Iterable[str]) -> frozenset[str]:
    """Validate the requested kinds."""
    chosen = frozenset((kinds,) if isinstance(kinds, str) else kinds)
    unknown = sorted(chosen - set(KINDS))
    if unknown:
        raise ConfigError(
            f"unknown redaction kind(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(KINDS)}"
        )
    return chosen


def find(text: str, kinds: Iterable[str] = KINDS) -> list[Finding]:
    """Non-overlapping findings in `text`, sorted by start; higher priority, then longer, wins."""
    chosen = _kind_set(kinds)
    doc = _doc(text)
    has_digit = _DIGIT.search(doc.text) is not None
    candidates: list[tuple[int, int, int, str]] = []
    for kind in KINDS:
        if kind not in chosen or (kind in _NEEDS_DIGIT and not has_digit):
            continue
        priority = _PRIORITY[kind]
        candidates.extend(
            (priority, start, end, kind) for start, end in _DETECTORS[kind](doc) if end > start
        )
    candidates.sort(key=lambda c: (-c[0], c[1] - c[2], c[1]))
    starts: list[int] = []
    kept: list[tuple[int, int, str]] = []
    for _, start, end, kind in candidates:
        i = bisect.bisect_right(starts, start)
        if (i and kept[i - 1][1] > start) or (i < len(kept) and kept[i][0] < end):
            continue
        starts.insert(i, start)
        kept.insert(i, (start, end, kind))
    return [Finding(kind, start, end, text[start:end]) for start, end, kind in kept]


def _replace(text: str, findings: list[Finding]) -> str:
    """`text` with every finding replaced by its placeholder."""
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append(f"[{f.kind}]")
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


def redact(text: str, kinds: Iterable[str] = KINDS) -> str:
    """Replace every finding with its typed placeholder ("[EMAIL]", "[SECRET]", ...)."""
    chosen = _kind_set(kinds)
    # A placeholder changes the characters next to it, which can expose a match that a boundary
    # check hid; repeating to a fixed point makes redact idempotent. No pattern matches inside a
    # placeholder, so every pass consumes original characters and the loop ends, in practice
    # after one or two passes.
    for _ in range(_MAX_PASSES):
        findings = find(text, chosen)
        if not findings:
            break
        text = _replace(text, findings)
    return text


def redact_json(value: Any, kinds: Iterable[str] = KINDS) -> Any:
    """A copy of a JSON value with every string value redacted; keys, numbers and shape unchanged.

    A string stored under a secret-looking key ("password", "api_key", "db_token", ...) is
    replaced whole by "[SECRET]" when SECRET is among the kinds: no assignment is left to match.
    """
    return _redact_value(value, _kind_set(kinds), field="")


def _redact_value(value: Any, kinds: frozenset[str], *, field: str) -> Any:
    """Recursive step of `redact_json`; `field` is the nearest enclosing key, lowercased."""
    if isinstance(value, str):
        secret_field = _SECRET_FIELD.fullmatch(field) if field and "SECRET" in kinds else None
        if secret_field is not None:
            password = secret_field.group("pw") is not None
            if _real_value(value, quoted=True, password=password):
                return "[SECRET]"
        return redact(value, kinds)
    if isinstance(value, dict):
        return {
            k: _redact_value(v, kinds, field=k.strip().lower() if isinstance(k, str) else "")
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_value(v, kinds, field=field) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact_value(v, kinds, field=field) for v in value)
    return value


def redact_shapes(text: str) -> str:
    """Replace only high-confidence secrets (API-key and token shapes, PEM private keys) by "[SECRET]".

    Safe on code: these shapes never occur in legitimate JavaScript or CSS, and a replacement only
    swaps characters inside what was a string literal, so the code around it still parses.
    """
    if not any(hint in text for hint in _TOKEN_HINTS) and "-----BEGIN" not in text:
        return text
    spans = [m.span() for m in _TOKEN_SHAPES.finditer(text)]
    if "-----BEGIN" in text:
        spans += [m.span() for m in _PEM.finditer(text)]
    findings = [Finding("SECRET", a, b, text[a:b]) for a, b in sorted(spans)]
    kept = [f for i, f in enumerate(findings) if not i or f.start >= findings[i - 1].end]
    return _replace(text, kept)


# ---------------------------------------------------------------------------------------------
# HTML

# Markup is split into comments, raw-text elements (script, style), tags and text. Text and
# attribute values are redacted in their decoded form and re-escaped; a piece nothing was found
# in keeps its original bytes. Script and style bodies are code: running every detector over
# them corrupts it (plotly.js holds SVG paths that read as IPs and "0000000000000" padding
# strings that pass the Luhn check), so they get the high-confidence secret shapes only, except
# the JSON string literals of a plotly figure's data, which are chart labels and get the full set.
_MARKUP = re.compile(
    r"(?P<comment><!--.*?(?:-->|\Z))"
    r"|(?P<raw>(?P<open><(?P<tag>script|style)\b(?:\"[^\"]*\"|'[^']*'|[^'\">])*>)"
    r"(?P<body>.*?)(?P<close></(?P=tag)\s*>|\Z))"
    r"|(?P<element></?[A-Za-z!?](?:\"[^\"]*\"|'[^']*'|[^'\">])*>)",
    re.DOTALL | re.IGNORECASE,
)
_ATTRIBUTE = re.compile(
    r"(?P<name>[^\s\"'<>/=]+)(?P<eq>\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+)"
)
_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_SCRIPT_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "/": "\\u002f"}


def redact_html(markup: str, kinds: Iterable[str] = KINDS) -> str:
    """Redact an HTML (or SVG) fragment without breaking its markup or its scripts.

    Text and attribute values get every chosen detector; event-handler and style attributes,
    and script and style bodies, get only the high-confidence secret shapes (see
    `redact_shapes`), except the string literals of a plotly figure's data, which get all.
    """
    chosen = _kind_set(kinds)
    parts: list[str] = []
    pos = 0
    for m in _MARKUP.finditer(markup):
        parts.append(_redact_text_node(markup[pos : m.start()], chosen))
        if m.group("comment") is not None:
            parts.append(redact(m.group("comment"), chosen))
        elif m.group("raw") is not None:
            parts.append(_redact_tag(m.group("open"), chosen))
            parts.append(_redact_code(m.group("body"), chosen))
            parts.append(m.group("close"))
        else:
            parts.append(_redact_tag(m.group("element"), chosen))
        pos = m.end()
    parts.append(_redact_text_node(markup[pos:], chosen))
    return "".join(parts)


def _redact_text_node(text: str, kinds: frozenset[str]) -> str:
    """A text node, redacted in its decoded form; unchanged bytes when nothing was found."""
    if not text:
        return text
    decoded = html.unescape(text)
    redacted = redact(decoded, kinds)
    return text if redacted == decoded else html.escape(redacted, quote=False)


def _redact_tag(tag: str, kinds: frozenset[str]) -> str:
    """A start tag with its attribute values redacted (code-valued ones by shape only)."""

    def one(m: re.Match[str]) -> str:
        raw = m.group("value")
        quoted = raw[:1] in "\"'"
        decoded = html.unescape(raw[1:-1] if quoted else raw)
        name = m.group("name").lower()
        if name.startswith("on") or name == "style":
            redacted = redact_shapes(decoded) if "SECRET" in kinds else decoded
        else:
            redacted = redact(decoded, kinds)
        if redacted == decoded:
            return m.group()
        return f'{m.group("name")}{m.group("eq")}"{html.escape(redacted, quote=True)}"'

    return _ATTRIBUTE.sub(one, tag) if "=" in tag else tag


def _redact_code(body: str, kinds: frozenset[str]) -> str:
    """A script or style body: secret shapes anywhere, all kinds in a plotly figure's strings."""
    if "SECRET" in kinds:
        body = redact_shapes(body)
    if "Plotly.newPlot(" not in body or "plotly.js v" in body[:300]:
        return body

    def literal(m: re.Match[str]) -> str:
        try:
            value = json.loads(m.group())
        except ValueError:
            return m.group()
        redacted = redact(value, kinds)
        if redacted == value:
            return m.group()
        encoded = json.dumps(redacted, ensure_ascii=False)
        return re.sub(r"[<>&/]", lambda c: _SCRIPT_ESCAPES[c.group()], encoded)

    return _JSON_STRING.sub(literal, body)


def scan(text: str, needles: Iterable[str]) -> list[str]:
    """The given literal secrets that occur in `text`, in the order given, without duplicates."""
    found: list[str] = []
    for needle in needles:
        if needle and needle not in found and needle in text:
            found.append(needle)
    return found
