"""Privacy redaction: find personal data and secrets in text and replace them with typed placeholders.

Five detectors, each a set of precompiled patterns behind a cheap prefilter, with validators that
reject look-alikes (dates, versions, order numbers, prices, hashes, IMEIs):

    EMAIL   local@domain.tld (accented Latin letters allowed, CJK text may touch it), and
            the obfuscated "jane[at]example[dot]com"
    PHONE   +CC international forms, US/UK/DE/FR/ES/JP national forms, 8 to 15 digits, and bare
            digit runs right after a word such as "phone", "Tel." or "電話"
    CARD    13 to 19 digits, bare or in card-shaped groups, that pass the Luhn check
    IP      IPv4 and IPv6, validated with `ipaddress`
    SECRET  API keys and tokens by shape, Bearer/Basic credentials, values assigned to names
            like `api_key` or `password` (only the value is replaced), passwords in URLs and
            in "my password is ...", PEM private key blocks

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


# Full-width forms (common in Japanese and Chinese text), no-break and thin spaces, and Unicode
# hyphens fold to ASCII one character for one, so offsets into the original text stay valid.
_FOLD: Final = {
    **{cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)},
    **{cp: 0x20 for cp in (0x00A0, 0x2007, 0x2009, 0x202F, 0x3000)},
    **{cp: 0x2D for cp in (0x2010, 0x2011, 0x2012, 0x2212)},
}
_FOLDABLE = re.compile("[\u00a0\u2007\u2009\u202f\u3000\u2010-\u2012\u2212\uff01-\uff5e]")
_ASCII_LOWER: Final = {cp: cp + 32 for cp in range(0x41, 0x5B)}


def _fold_char(m: re.Match[str]) -> str:
    """The ASCII look-alike of one foldable character."""
    return chr(_FOLD[ord(m.group())])


def _doc(text: str) -> _Doc:
    """Fold and lowercase `text` without moving any offset."""
    if not text.isascii():
        text = _FOLDABLE.sub(_fold_char, text)
    lower = text.lower()
    if len(lower) != len(text):  # a few non-ASCII letters lowercase to two characters
        lower = text.translate(_ASCII_LOWER)
    return _Doc(text, lower)


# ---------------------------------------------------------------------------------------------
# EMAIL

_LATIN = "A-Za-z0-9\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_LOCAL = rf"(?<![{_LATIN}._%+\-])[{_LATIN}_%+\-]+(?:\.[{_LATIN}_%+\-]+)*"
# The same local part read backwards from the "@": the language is its own mirror image.
_LOCAL_REVERSED = _compile(rf"[{_LATIN}_%+\-]+(?:\.[{_LATIN}_%+\-]+)*")
_EMAIL = _compile(
    rf"{_LOCAL}@(?:[{_LATIN}](?:[{_LATIN}\-]{{0,61}}[{_LATIN}])?\.)+[A-Za-z]{{2,24}}"
    rf"(?![{_LATIN}_\-@]|\.[{_LATIN}])"
)
_AT_GATE = _compile(r"[\[(] ?at ?[\])]")
_AT, _DOT = r"\s?[\[(]\s?at\s?[\])]\s?", r"\s?[\[(]\s?dot\s?[\])]\s?"
_EMAIL_OBFUSCATED = _compile(
    rf"{_LOCAL}{_AT}[{_LATIN}\-]+(?:(?:{_DOT}|\.)[{_LATIN}\-]+)*(?:{_DOT}|\.)[a-z]{{2,24}}"
    rf"(?![{_LATIN}])"
)


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
        span = _anchored(text, reversed_text, at, _EMAIL)
        at = text.find("@", span[1] if span else at + 1)
        if span:
            yield span
    gates = list(_AT_GATE.finditer(doc.lower))
    reversed_lower = doc.lower[::-1] if gates else ""
    for gate in gates:
        at = gate.start() - (gate.start() > 0 and doc.lower[gate.start() - 1].isspace())
        span = _anchored(doc.lower, reversed_lower, at, _EMAIL_OBFUSCATED)
        if span:
            yield span


# ---------------------------------------------------------------------------------------------
# PHONE

# A phone starts after a space-like character: never glued to a word, a number or a path, and
# never as the next group of a longer number ("9400 1000 0000 ..."). The lookbehinds run after
# the first character is consumed (the `.` in them), so `re` can skip ahead on that character.
_PHONE_START = r"(?<![A-Za-z0-9_+\-./#@=].)(?<!\d .)"
_PHONE_END = r"(?![A-Za-z0-9_@]|[\-./]\d)"
_PHONE_INTL = _compile(
    r"\+"
    + _PHONE_START
    + r"[1-9]\d{0,2}+(?:[ .\-]?\(0\))?(?:[ .\-]?(?:\(\d{1,4}\)|\d++)){1,7}"
    + _PHONE_END
)
# "0044 20 7946 0958": the 00 international prefix, with separators so it is not a long number.
_PHONE_INTL_00 = _compile(
    r"0"
    + _PHONE_START
    + r"0[1-9]\d{0,2}+(?:[ .\-]?\(0\))?(?:[ .\-](?:\(\d{1,4}\)|\d++)){2,7}"
    + _PHONE_END
)
_PHONE_US = _compile(
    r"[(1-9]" + _PHONE_START + r"(?:(?<=1)[ .\-]?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .\-])"
    r"|(?<=\()[2-9]\d{2}\) ?|(?<=[2-9])\d{2}[ .\-])\d{3}[ .\-]\d{4}" + _PHONE_END
)
_PHONE_TRUNK = _compile(
    r"[(0]" + _PHONE_START + r"(?:(?<=\()0\d{1,4}\) ?|(?<=0)\d{1,4}[ .\-/])"
    r"\d{2,8}(?:[ .\-]\d{2,8}){0,4}" + _PHONE_END
)
_PHONE_ES = _compile(r"[6-9]" + _PHONE_START + r"\d{2}(?: \d{2}){3}" + _PHONE_END)
_PHONE_CUES = (
    "phone", "telephone", "tel", "mobile", "cell", "fax", "call", "whatsapp", "sms",
    "telefon", "handy", "mobil", "tel[eé]fono", "m[oó]vil", "llamar", "ll[aá]me",
    "t[eé]l[eé]phone", "portable", "電話", "携帯",
)  # fmt: skip
# A bare run of 8 to 15 digits is a phone only right after a cue word: found by the digits,
# then confirmed by looking back.
_DIGIT_RUN = _compile(r"[+0-9](?<![0-9A-Za-z_+.\-].)(?:(?<=\+)\d)?\d{7,14}(?![0-9A-Za-z_]|[.\-]\d)")
_PHONE_CUE_BEFORE = _compile(rf"(?:{_words(_PHONE_CUES, 'a-z')})[^\n\d+]{{0,14}}$")
# Numbers introduced as orders, invoices, tickets and the like are not phones.
_NOT_PHONE_CUES = (
    "order", "invoice", "inv", "ref", "reference", "serial", "s/n", "sn", "sku", "tracking",
    "account", "acct", "iban", "case", "ticket", "part", "bestellung", "bestellnummer",
    "rechnung", "rechnungsnummer", "pedido", "factura", "commande", "facture", "注文番号",
    "請求書番号",
)  # fmt: skip
_NOT_PHONE_CUE = _compile(
    rf"(?:{_words(_NOT_PHONE_CUES, 'a-z')})\s*(?:no\.?|nr\.?|number|num|n[º°o]\.?|#|id)?\s*[:#]?\s*$"
)
_PHONE_SEPARATORS = frozenset(" .-/")


def _trim_phone(candidate: str, max_digits: int) -> str:
    """Drop trailing groups until the candidate has at most `max_digits` digits."""
    while sum(c.isdigit() for c in candidate) > max_digits:
        cut = max(candidate.rfind(s) for s in " .-")
        if cut <= 0:
            return ""
        candidate = candidate[:cut].rstrip(" .-(")
    return candidate


def _consistent(candidate: str) -> bool:
    """Whether a national number uses one kind of separator ("/" only once, as in 089/1234567)."""
    body = candidate.split(")", 1)[-1]
    seps = {c for c in body if c in _PHONE_SEPARATORS}
    return len(seps) <= 1 and ("/" not in seps or (body.count("/") == 1 and ")" not in candidate))


@dataclass(frozen=True)
class _PhoneForm:
    """A phone pattern and how to validate its matches."""

    pattern: re.Pattern[str]
    min_digits: int
    max_digits: int
    national: bool  # a national number must not be trimmed and must use one separator
    gate: str = ""  # a substring the text must contain for the pattern to run


# An international number may run into a following year or count, so it is trimmed by groups; a
# national number that is too long is a longer number (an account, a tracking code), not a phone.
_PHONE_FORMS: Final = (
    _PhoneForm(_PHONE_INTL, 8, 15, national=False, gate="+"),
    _PhoneForm(_PHONE_INTL_00, 10, 17, national=False, gate="00"),
    _PhoneForm(_PHONE_US, 10, 11, national=False),
    _PhoneForm(_PHONE_TRUNK, 9, 12, national=True),
    _PhoneForm(_PHONE_ES, 9, 9, national=False),
)


def _phones(doc: _Doc) -> Iterator[_Span]:
    """Spans of phone numbers."""
    text = doc.text
    for form in _PHONE_FORMS:
        if form.gate not in text:
            continue
        for m in form.pattern.finditer(text):
            candidate = m.group()
            if form.national:
                if not _consistent(candidate):
                    continue
            else:
                candidate = _trim_phone(candidate, form.max_digits)
            if not form.min_digits <= sum(c.isdigit() for c in candidate) <= form.max_digits:
                continue
            if _NOT_PHONE_CUE.search(doc.lower, max(0, m.start() - 30), m.start()):
                continue
            yield m.start(), m.start() + len(candidate)
    for m in _DIGIT_RUN.finditer(text):
        if _PHONE_CUE_BEFORE.search(doc.lower, max(0, m.start() - 30), m.start()):
            yield m.span()


# ---------------------------------------------------------------------------------------------
# CARD

_CARD = _compile(r"\d(?<![A-Za-z0-9_\-.,+]\d)(?:[ \-]?\d){12,18}(?![A-Za-z0-9_]|[\-.,]\d)")
# IMEIs are Luhn-valid 15-digit numbers too.
_NOT_CARD_CUE = _compile(
    rf"(?:{_words(('imei', 'imeisv', 'meid', 'iccid', 'imsi'), 'a-z')})\W{{0,3}}$"
)
# Group lengths written on cards: 4-4-4-4(-3), 4-4-4-1 (13 digits), Amex 4-6-5, Diners 4-6-4.
_CARD_GROUPS: Final = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 6, 5), (4, 6, 4)})


def _luhn(digits: str) -> bool:
    """Whether an ASCII digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


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
    return 13 <= len(digits) <= 19 and _luhn(digits)


def _cards(doc: _Doc) -> Iterator[_Span]:
    """Spans of Luhn-valid card numbers."""
    for m in _CARD.finditer(doc.text):
        start, end = m.span()
        if _card_ok(doc.text, start, end) and not _NOT_CARD_CUE.search(
            doc.lower, max(0, start - 10), start
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
_VERSION_CUES = (
    "version", "ver", "build", "release", "firmware", "rev", "revision", "patch", "versi[oó]n",
    "バージョン",
)  # fmt: skip
_VERSION_CUE = _compile(rf"(?:{_words(_VERSION_CUES, 'a-z')})\W{{0,3}}$")


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


def _ips(doc: _Doc) -> Iterator[_Span]:
    """Spans of IPv4 and IPv6 addresses."""
    text = doc.text
    if "." in text:
        for m in _IPV4.finditer(text):
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            if not _VERSION_CUE.search(doc.lower, max(0, m.start() - 20), m.start()):
                yield m.span()
    gate = _IPV6_GATE.search(text)
    if gate is not None:
        for m in _IPV6.finditer(text, max(0, gate.start() - 5)):
            candidate = m.group()
            if candidate.endswith(":") and not candidate.endswith("::"):
                candidate = candidate[:-1]
            if _ipv6_ok(candidate):
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
    "sk-", "_live_", "_test_", "AKIA", "ASIA", "gh", "xox", "AIza", "eyJ", "whsec_", "glpat-",
    "npm_", "hf_",
)  # fmt: skip
_AUTH_HEADER = _compile(
    rf"(?:{_words(('bearer', 'basic', 'token'))})\s+(?P<v>[a-z0-9\-._~+/]{{12,}}=*)"
    r"(?![a-z0-9\-._~+/=])"
)
_SECRET_NAMES = (
    r"api[_\-]?key", "apikey", r"access[_\-]?token", r"auth[_\-]?token", r"refresh[_\-]?token",
    r"id[_\-]?token", r"session[_\-]?token", r"session[_\-]?id", r"client[_\-]?secret",
    r"secret[_\-]?access[_\-]?key", r"secret[_\-]?key", r"private[_\-]?key", "secret", "token",
    "password", "passwd", "pwd", "passphrase", "passwort", "kennwort", "contrase[ñn]a",
    "mot[_ ]de[_ ]passe", "パスワード",
)  # fmt: skip
_SECRET_HINTS: Final = (
    "key", "token", "secret", "session", "pass", "pwd", "wort", "contrase", "パスワード",
)  # fmt: skip
# Run over the lowercased text; offsets are the same in the original.
_ASSIGNMENT = _compile(
    rf"(?P<k>{_words(_SECRET_NAMES)})\\?[\"']?\s*(?:[:=]|=>)\s*(?:"
    r"\\\"(?P<e>[^\"\\\n]{4,256})\\\""
    r"|\"(?P<d>(?:[^\"\\\n]|\\.){4,256})\""
    r"|'(?P<s>(?:[^'\\\n]|\\.){4,256})'"
    r"|(?P<b>[^\s\"'`,;&\[\]{}()<>]{6,256})"
    r")"
)
# Any value assigned to a password is one; a value assigned to a token or key must look random,
# or logprobs ({"token": "Hello"}) and prose ("secret: don't tell") would be eaten.
_PASSWORD_NAMES: Final = ("pass", "pwd", "kennwort", "contrase", "mot", "パスワード")
_PASSWORD_PROSE = _compile(
    rf"(?:{_words(('password', 'passwort', 'kennwort', 'contrase[ñn]a', 'passcode', 'pwd'))})"
    r"\s+(?:is|was|ist|war|lautet|es|era|est)\s+(?:now\s+|jetzt\s+|ahora\s+)?"
    r"(?P<v>[^\s\"'`,;\[\]{}()<>]{4,64}?)(?=[.,;:!?)]*(?:\s|$))"
)
# A JSON field whose name ends in a secret name: "password", "db_password", "OPENAI_API_KEY".
_SECRET_FIELD = _compile(rf"(?i)(?:.*[_\-\s.])?(?:{'|'.join(_SECRET_NAMES)})")
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


def _real_value(value: str, *, quoted: bool, password: bool) -> bool:
    """Whether an assigned value looks like a credential rather than a placeholder or a word."""
    if _PLACEHOLDERS_ONLY.fullmatch(value) or value.lower() in _DUMMY_VALUES:
        return False
    if not value.strip("*xX.•…-_ ") or value.startswith(("${", "{{", "<", "%(", "$(")):
        return False
    looks_random = any(c.isdigit() for c in value) or len(value) >= 16
    if password:
        return quoted or looks_random
    return looks_random and len(value) >= 8 and not any(c.isspace() for c in value)


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
            value = text[m.start(group) : m.end(group)]
            password = m.group("k").startswith(_PASSWORD_NAMES)
            if _real_value(value, quoted=group != "b", password=password):
                yield m.span(group)
    if "pass" in lower or "pwd" in lower or "wort" in lower or "contrase" in lower:
        for m in _PASSWORD_PROSE.finditer(lower):
            if _real_value(text[m.start("v") : m.end("v")], quoted=False, password=True):
                yield m.span("v")
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
        if field and "SECRET" in kinds and _SECRET_FIELD.fullmatch(field):
            password = field.rsplit("_", 1)[-1].rsplit("-", 1)[-1].startswith(_PASSWORD_NAMES)
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
