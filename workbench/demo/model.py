"""A deterministic, offline support-ticket triage "model" with two versions.

It fakes an LLM for the demo: answers come from keyword rules plus wordllama embedding
similarity to per-category prototype sentences. ``triage-v2`` behaves like a real model
upgrade relative to ``triage-v1``. It reads German, Spanish, French and Portuguese tickets
(and classifies, but cannot summarise, Japanese ones), tells shipping problems from billing
ones, and ignores prompt injection that v1 obeys. But it also mistakes some login and
password tickets for security incidents, and it copies the customer's style in two fields:
an upper-case priority such as ``"P2"`` when the customer shouts URGENT/ASAP, and
``needs_human: "yes"`` when the customer asks for a person. A JSON-schema contract catches
both.

Sampling: at ``temperature`` 0 the answer depends only on (version, ticket). Above 0, one
field may change, with a probability that grows with temperature, drawn from a
``random.Random`` seeded by a SHA-256 of (version, ticket, seed); a ``seed`` of None counts
as seed 0, so every call stays reproducible.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench import embeddings

__all__ = [
    "CATEGORIES",
    "PRIORITIES",
    "VERSIONS",
    "Completion",
    "complete",
    "count_tokens",
    "extract_ticket",
    "message_text",
    "respond",
    "triage",
]

VERSIONS: tuple[str, ...] = ("triage-v1", "triage-v2")
CATEGORIES: tuple[str, ...] = (
    "billing",
    "account",
    "bug",
    "feature_request",
    "shipping",
    "security",
    "outage",
)
PRIORITIES: tuple[str, ...] = ("p1", "p2", "p3", "p4")

_EMBED_WEIGHT = 8.0  # embedding similarity (about 0..0.7) against keyword weights (about 1..3)
_FLIP_PER_TEMPERATURE = 0.18  # chance per unit of temperature that one field changes
_MAX_FLIP = 0.6
_SUMMARY_WORDS = 16
_SUMMARY_CHARS = 160
_MAX_PROSE_CHARS = 4000

# -- keyword rules ------------------------------------------------------------
# (category, regex, weight). English rules are shared by both versions.

_EN_RULES: tuple[tuple[str, str, float], ...] = (
    ("billing", r"\bcharg(e|ed|es|ing)\b", 2.0),
    ("billing", r"\b(billing|billed|bill)\b", 2.0),
    ("billing", r"\brefund(s|ed)?\b|money back|\bcredit (us|the)\b", 1.5),
    ("billing", r"\binvoices?\b", 0.5),
    ("billing", r"\bsubscription\b|\b(monthly|annual|yearly) (plan|billing)\b", 1.5),
    ("billing", r"\b(paid|pay|payment)\b", 1.0),
    ("billing", r"\bpric(e|es|ing)\b|\bper user\b|\bdiscount\b|\bprorat", 1.5),
    ("billing", r"\bseats?\b|\b(starter|pro|enterprise) plan\b|\bdowngrad|\bupgrad", 1.0),
    ("billing", r"\bvat\b|\b(sales )?tax\b|\breceipt\b|\bcurrency\b", 1.0),
    ("billing", r"\bovercharg|\bchargeback\b|\bpast due\b|\bnon-payment\b|\bfree trial\b", 2.5),
    ("billing", r"\b(bank|wire) transfer\b|\bsepa\b|\bfee\b", 1.0),
    ("account", r"\blog ?in\b|\bsign(ed)? ?(in|up)\b|\bsign-in\b|\blogs? me out\b", 1.5),
    ("account", r"\bpassword\b", 1.5),
    ("account", r"\b2fa\b|\bauthenticator\b|\brecovery codes?\b", 2.0),
    ("account", r"\blocked( out)?\b|\bunlock", 1.5),
    ("account", r"\badmin(s)?\b|\bowner(ship)?\b|\brole\b", 1.5),
    ("account", r"\bworkspace\b|\bteam workspace\b|\bmy account\b|\bour account\b", 1.0),
    ("account", r"\binvit(e|es|ation)\b|\bemail address\b|\bprofile\b|\bdisplay name\b", 1.5),
    ("account", r"\bsso\b|\bsaml\b|\bokta\b|\bgoogle sign", 1.5),
    (
        "account",
        r"\bmerge\b|\breactivate\b|\b(close|delete) my account\b|\brename\b|\bsurname\b",
        2.0,
    ),
    ("account", r"\bgoogle sign-in\b|\busername\b|\bwhich email\b", 1.5),
    ("bug", r"\berror\b|\bcrash(es|ed|ing)?\b|\bbug\b|\bglitch\b|\bundefined\b", 2.0),
    ("bug", r"does nothing|not working|doesn't work|isn't saved|won't save|\bbroke(n)?\b", 2.0),
    ("bug", r"\bbreaks?\b|\bwrong (month|format|date)\b|\bgarbled\b|\bunreadable\b|\btypo\b", 2.0),
    ("bug", r"\breturns? (a )?500\b|\b500 error\b|\bsomething went wrong\b", 2.0),
    ("bug", r"\bsince (the|your) (latest |last )?update\b|\bafter (your|the) update\b", 2.0),
    ("bug", r"\bexport(s|ed)?\b|\bcsv\b|\bpdf\b|\bwebhook payload\b|\bsearch\b", 1.5),
    ("bug", r"\btwice\b|\bduplicated?\b|\bincorrect(ly)?\b|\bsplits?\b|\binstead of\b", 1.0),
    ("bug", r"\b(app|page|pdf|preview|chart|table) (shows|displays|prints)\b", 1.5),
    ("bug", r"\bsteps\b|\bexpected\b|\bactual\b|\bsent twice\b|\bapplied twice\b", 1.5),
    ("bug", r"\bfail(s|ed|ing)?\b|\bdata loss\b|\blost all\b|\bnot generated\b", 1.0),
    ("bug", r"\bios\b|\bandroid\b|\bchrome\b|\bmacos\b|\bapp version\b|\bfirmware\b", 1.0),
    ("feature_request", r"\bwould (be great|be nice|love)\b|\bi wish\b|\blove an?\b", 2.5),
    ("feature_request", r"\bfeature request\b|\bsuggestion\b|\bidea\b|\broadmap\b", 3.0),
    ("feature_request", r"\b(please|could you|can you) (add|make|support)\b", 3.0),
    ("feature_request", r"\bcould (the|you|your) [\w ]{0,30}\bsupport\b", 2.5),
    (
        "feature_request",
        r"\bany plans\b|\bis it possible to add\b|\bwe need an? [\w-]+ role\b",
        2.5,
    ),
    ("feature_request", r"\b(option|ability) to\b|\bconfigurable\b|\bcustomi[sz]e\b", 1.5),
    ("feature_request", r"\bintegration\b|\bprovisioning\b|\boffline mode\b|\bdark mode\b", 1.0),
    ("shipping", r"\bship(ping|ped|ment|ments|s)?\b|\bdeliver(y|ed|ies)?\b", 2.0),
    ("shipping", r"\btracking\b|\bcourier\b|\bparcel\b|\bpackage\b|\bcustoms\b", 2.0),
    ("shipping", r"\barriv(ed|e|es)\b|\breceived (two|the wrong|a)\b|\bthe box\b", 1.5),
    ("shipping", r"\border(ed|s)?\b|#th-\d+", 1.5),
    (
        "shipping",
        r"\b(card )?readers?\b|\b(receipt )?printers?\b|\bcash drawer\b|\bstarter kit\b",
        1.0,
    ),
    ("shipping", r"\bdhl\b|\bups\b|\bfedex\b|\breturn label\b|\bexpedite\b|\bcracked\b", 2.0),
    ("security", r"\bhack(ed|er|ers)?\b|\bcompromised?\b|\bbreach\b|\battacker\b", 3.0),
    ("security", r"\bphishing\b|\bfake login\b|\bsuspicious\b|\bmalware\b|\bfraud\b", 3.0),
    ("security", r"\bvulnerab|\bxss\b|<script|\bidor\b|\bcard-testing\b|\bbug bounty\b", 3.0),
    ("security", r"\bleak(ed)?\b|\bpublic (github )?repo\b|\bsecret key\b|\bapi keys?\b", 2.0),
    ("security", r"\bunauthori[sz]ed\b|\bdidn't authori[sz]e\b|\bwithout authori|wasn't me\b", 2.5),
    ("security", r"\bsoc ?2\b|\bpen(etration )?test\b|\bencrypt|\bgdpr\b|\bauditor\b", 2.5),
    (
        "security",
        r"\bsecurity\b|\bcookies?\b|\bcredentials\b|\brevoke\b|\bdidn't (ask|request)",
        2.0,
    ),
    ("outage", r"\bdown\b|\boutage\b|\bincident\b|\bstatus page\b", 3.0),
    ("outage", r"\b50[234]s?\b|\bbad gateway\b|\bservice (temporarily )?unavailable\b", 3.0),
    ("outage", r"\bunreachable\b|\boffline\b|\bcannot connect\b|\bcan't connect\b", 2.5),
    ("outage", r"\btiming out\b|\btimeouts?\b|\blatency\b|\bextremely slow\b|spins forever", 2.0),
    ("outage", r"\beveryone\b|\bnobody\b|\bnone of\b|\bevery (store|page|request)\b", 1.5),
    ("outage", r"\ball (our )?(staff|stores|requests|endpoints|locations|connected)\b", 1.5),
    ("outage", r"\bstopped\b|\bintermittent\b|\bmaintenance\b|\bproduction\b|nothing loads", 1.5),
)

# Non-English rules (v2 only): (category, regex, weight, English clause for the summary).
_INTL_RULES: tuple[tuple[str, str, float, str], ...] = (
    # German
    ("billing", r"doppelt (abgebucht|berechnet)", 3.0, "was charged twice"),
    ("billing", r"abgebucht|abbuchung|gebühr|zahlung|rechnung", 1.5, "has a billing problem"),
    ("billing", r"erstatt", 1.5, "wants a refund"),
    ("account", r"passwort|anmelden|mein konto|e-mail-adresse", 1.5, "cannot access the account"),
    ("bug", r"fehlermeldung|funktioniert nicht|stürzt ab|absturz", 2.5, "reports a bug"),
    (
        "bug",
        r"fragezeichen|umlaute|falsch angezeigt|werden .{0,40} angezeigt",
        2.5,
        "sees characters shown wrongly in the export",
    ),
    (
        "feature_request",
        r"wäre (toll|schön|super)|wünsche|könnte man|funktion",
        3.0,
        "would like a new feature",
    ),
    ("shipping", r"bestellung|paket|lieferung|unterwegs", 2.0, "has an order still in transit"),
    ("shipping", r"sendungsverfolgung", 2.0, "sees no tracking update"),
    ("security", r"verdächtig|gehackt|anmeldung aus", 3.0, "noticed a suspicious login"),
    ("security", r"konto .{0,20}sperren|sperren sie", 1.5, "wants the account locked"),
    ("outage", r"nicht erreichbar|ausfall|plattform", 3.0, "says the platform is unreachable"),
    ("outage", r"fehler 50\d", 2.0, "gets 503 errors"),
    # Spanish
    ("billing", r"cobrado|cobro|factura|reembolso", 2.0, "was charged for the wrong plan"),
    ("billing", r"devolverme|diferencia", 1.0, "wants the difference refunded"),
    ("account", r"iniciar sesión|contraseña|mi cuenta", 2.0, "cannot log in"),
    ("feature_request", r"sería posible|añadir|me gustaría", 3.0, "asks for a new feature"),
    ("feature_request", r"modo oscuro", 1.5, "wants a dark mode"),
    ("shipping", r"paquete|envío|llegó|entrega", 2.0, "received a package"),
    ("shipping", r"dañad[oa]|rot[oa]", 1.5, "says the printer arrived damaged"),
    ("security", r"hackead|sin autorización|sospechos", 3.0, "reports unauthorised changes"),
    ("security", r"datos bancarios", 1.5, "had bank details changed"),
    ("outage", r"caíd[oa]|no funciona nada|fuera de servicio", 3.0, "says the service is down"),
    # French
    ("billing", r"facture|facturé|remboursement|prélèvement", 2.0, "needs an invoice"),
    ("account", r"mot de passe|se connecter|mon compte", 1.5, "has an account access problem"),
    ("bug", r"plante|erreur|bug|ne fonctionne pas", 2.5, "says the app crashes"),
    ("bug", r"pièce jointe", 1.0, "when adding an attachment"),
    (
        "shipping",
        r"colis|livraison|pas (encore |toujours )?arrivé|expédition",
        2.5,
        "is still waiting for a parcel",
    ),
    ("security", r"hameçonnage|phishing|piraté|suspect", 3.0, "reports a phishing attempt"),
    (
        "outage",
        r"en panne|hors service|inaccessible|impossible d'accéder",
        3.0,
        "says the site is down",
    ),
    ("outage", r"toute l'équipe", 1.0, "the whole team is blocked"),
    # Portuguese
    ("billing", r"cobrad[oa]|cobrança|estornar|fatura|reembolso", 2.0, "was charged twice"),
    (
        "account",
        r"alterar o e-mail|minha conta|senha|fazer login",
        2.0,
        "needs to change the account email",
    ),
    ("bug", r"não funciona|erro|botão", 2.0, "says a button fails with an error"),
    (
        "shipping",
        r"não chegou|rastreamento|entrega|encomenda",
        2.5,
        "is still waiting for a delivery",
    ),
    ("security", r"hackead|invadid|suspeit", 3.0, "noticed a suspicious login"),
    ("outage", r"fora do ar|nenhuma loja|sistema caiu", 3.0, "says the system is down"),
    # Japanese: v2 classifies it but cannot summarise it in English (no glosses).
    ("billing", r"請求額|二重請求|返金|支払い", 2.0, ""),
    ("account", r"メールアドレス|パスワード|アカウント設定|設定画面", 2.0, ""),
    ("feature_request", r"機能が欲しい|機能を追加|追加できる", 3.0, ""),
    ("feature_request", r"ロゴ", 1.0, ""),
    ("shipping", r"配送|届かない|荷物", 2.5, ""),
    ("security", r"不審な|不正アクセス|乗っ取", 3.0, ""),
    ("security", r"保護", 1.0, ""),
    ("outage", r"表示されません|アクセスできない|つながらない", 2.5, ""),
    ("outage", r"エラー50\d|全員", 1.5, ""),
)

# v2 reads credential trouble as a possible attack: part of the account score moves to security.
_CREDENTIALS = re.compile(
    r"\bpassword\b|\b2fa\b|\btwo-factor\b|\bauthenticator\b|\blocked( out)?\b|wasn't me",
    re.IGNORECASE,
)
_CREDENTIAL_SHIFT = 0.45

# A weaker model obeys instructions pasted into the ticket ("category=security", "as p1").
_INSTRUCTED_CATEGORY = re.compile(
    r"\bcategory\s*[=:]?\s*(" + "|".join(CATEGORIES) + r")\b", re.IGNORECASE
)
_INSTRUCTED_PRIORITY = re.compile(r"\b(?:priority\s*[=:]?\s*|as )(p[1-4])\b", re.IGNORECASE)

_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice on my credit card for the subscription, please refund me.",
        "The invoice amount is wrong and we were overcharged for seats this month.",
        "How do I change my billing plan, payment method or get a receipt?",
        "We need a VAT invoice and the discount is missing from our bill.",
    ),
    "account": (
        "I cannot log in to my account and the password reset email never arrives.",
        "Please change the email address and the admin role on our workspace.",
        "How do I invite a colleague, transfer ownership or rename the workspace?",
        "I am locked out after losing my two-factor authentication phone.",
    ),
    "bug": (
        "The app crashes with an error when I click the button.",
        "The export shows the wrong data and the page displays incorrectly.",
        "Since the last update this feature is broken and does not save.",
        "The API returns an error for a valid request, steps to reproduce below.",
    ),
    "feature_request": (
        "It would be great if you could add a new feature for this.",
        "Please support an integration with another tool, is it on the roadmap?",
        "I would love an option to customise the template and settings.",
        "Feature request: allow us to do this automatically.",
    ),
    "shipping": (
        "My order has not arrived and the tracking number has not updated.",
        "The package was delivered damaged and the device is broken, send a replacement.",
        "Can you ship the card reader to my address and how long is delivery?",
        "The courier lost the parcel, I want to return the printer.",
    ),
    "security": (
        "Someone hacked my account and there was a suspicious login from another country.",
        "We found a security vulnerability that exposes other customers' data.",
        "Phishing emails impersonate your company and our credentials were stolen.",
        "Please send your security compliance report and encryption details.",
    ),
    "outage": (
        "The whole service is down for everyone and nothing loads.",
        "All requests fail with 503 errors and the site is unreachable.",
        "Is there an outage? The platform has been unavailable for an hour.",
        "Everything is very slow and timing out for all our users.",
    ),
}

_INJECTION = re.compile(
    r"ignore (all )?(previous|prior|above) instructions|^\s*(system|assistant)\s*:"
    r"|\b(mark|label|classify) (this|the) ticket as\b|\brespond with category\b",
    re.IGNORECASE | re.MULTILINE,
)
_LOG_LINE = re.compile(r"^\s*(\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\[\d|at [\w.$]+\(|Traceback|File \")")
_TAGS = re.compile(r"<[^>\n]{1,200}>")
_MARKDOWN = re.compile(
    r"^\s*(#{1,6}\s*|[-*>]\s+|\d+\.\s+)|[*`]{1,3}|(?<!\w)_{1,3}|_{1,3}(?!\w)", re.MULTILINE
)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n+")
_GREETING = re.compile(
    r"^(hi|hello|hey|dear|hallo|hola|bonjour|olá|ola|good (morning|afternoon))\b[^,.!?\n]{0,25}"
    r"[,.!?—-]+\s*",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^(thanks|thank you|cheers|regards|best|many thanks|merci|danke|vielen dank|gracias|"
    r"obrigad[oa])\b",
    re.IGNORECASE,
)
_PRONOUNS = {
    "i'm": "Customer is",
    "we're": "Customer is",
    "i've": "Customer has",
    "we've": "Customer has",
    "i'd": "Customer would",
    "we'd": "Customer would",
    "we are": "Customer is",
    "we have": "Customer has",
    "we were": "Customer was",
    "i": "Customer",
    "we": "Customer",
    "my": "Their",
    "our": "Their",
}
_LEADING_PRONOUN = re.compile(
    r"^(i'm|we're|i've|we've|i'd|we'd|we are|we have|we were|i|we|my|our)\b", re.IGNORECASE
)
_POSSESSIVE = re.compile(r"(?<=\s)(my|our)\b", re.IGNORECASE)
_SHOUTED_WORD = re.compile(r"\b[A-Z]{5,}\b")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+|[^\w\s]")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _wordset("the and is to i my we our it for of you in on can please this that was with"),
    "de": _wordset(
        "und der die das ist nicht wir uns ich sie bitte mit für seit wann eine den dem werden "
        "wäre man unsere meine zeigt"
    ),
    "es": _wordset(
        "el la los las que y me mi no pero por para una un han está pueden puedo dice sería "
        "llegó yo"
    ),
    "fr": _wordset(
        "le la les je ne pas est et un une mon nous vous à depuis pouvez toujours mais après j'ai"
    ),
    "pt": _wordset(
        "o a os as não meu minha está uma um para pela pelo como faço fui olá e da do há ainda"
    ),
}
_P1_CUES = re.compile(
    r"\b(data loss|lost all|compromised|hacked|public (github )?repo|other companies|"
    r"malware|card-testing|fraud|production is down|everything is down|nobody can|"
    r"every store|all (our )?(staff|stores|locations|pos terminals)|for everyone|whole platform)\b"
    r"|\bdown\b|unreachable|\b50[23]\b|bad gateway|spins forever|nothing loads|"
    r"nicht erreichbar|en panne|fora do ar|hackead|sin autorización|全員",
    re.IGNORECASE,
)
_P2_CUES = re.compile(
    r"\b(charged twice|double charge|overcharg\w*|suspended|past due|chargeback|can't log in|"
    r"locked out|locked|lost my phone|nobody on our team|right now|today|immediately|urgent|asap|"
    r"broke our|this broke|not billed|opening|new stores|expedite|suspicious|phishing|"
    r"exporting|revoke|fake|reuse|again the next day|isn't mine|hacked|data loss|"
    r"timing out|slow|stopped|intermittent|latency|fails|failing|504s?)\b"
    r"|doppelt|sperren|no puedo iniciar|duas vezes|不審",
    re.IGNORECASE,
)
_P4_CUES = re.compile(
    r"^(how|where|can i|do you|is it possible|could you make)\b|\bhow (do|can) i\b"
    r"|\bwhere (do|can) i\b|\btypo\b|\bdark mode\b|\bdo you (ship|accept|offer)\b|"
    r"\bhow long does\b|\bhappy to send\b|\bdisplay name\b|\bprofile (photo|picture)\b"
    r"|どこで",
    re.IGNORECASE,
)
_INFO_SECURITY = re.compile(
    r"\bsoc ?2\b|\bpen(etration)? ?test|\bencrypt|\bgdpr\b|\bauditor\b|\bbug bounty\b|"
    r"\breport a vulnerability\b",
    re.IGNORECASE,
)
_CHURN = re.compile(r"\b(another provider|switch to|move to another|competitor)\b", re.IGNORECASE)
_LEGAL = re.compile(
    r"\b(lawyers?|legal action|attorney|sue|court|chargeback|dispute it)\b", re.IGNORECASE
)
_ANGRY = re.compile(
    r"\b(unacceptable|ridiculous|worst|furious|third (month|time)|fix it now|manager|"
    r"supervisor)\b|!!!",
    re.IGNORECASE,
)
_SHOUTING = re.compile(r"\b(URGENT|ASAP|NOW|EMERGENCY|CRITICAL|IMMEDIATELY|HELP)\b")
_WANTS_PERSON = re.compile(
    r"\b(speak|talk) to (a|an|someone|somebody|your)\b|\b(a )?(real|human) (person|being)\b|"
    r"\bcall me\b|\bmanager\b|\bsupervisor\b",
    re.IGNORECASE,
)
_SHIPPING_CONTEXT = re.compile(
    r"\b(tracking|courier|parcel|package|delivered|delivery|shipment|shipping confirmation|"
    r"customs|return process|send (one|it) back|ship(ped)? yet)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Completion:
    """One chat completion: text, why it stopped and token usage."""

    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple[dict[str, Any], ...] = ()  # OpenAI message.tool_calls entries


@dataclass(frozen=True)
class _Analysis:
    """Deterministic (temperature 0) reading of one ticket by one version."""

    ranking: tuple[str, ...]
    priority: str
    needs_human: bool
    summary: str
    shout: bool
    wants_person: bool


# -- public API ------------------------------------------------------------------


def extract_ticket(messages: list[dict[str, Any]]) -> str:
    """Ticket text: between <ticket> and </ticket> in the last user message, else all of it."""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = message_text(message)
            start, end = text.find("<ticket>"), text.rfind("</ticket>")
            if start != -1 and end > start:
                return text[start + len("<ticket>") : end].strip()
            return text.strip()
    return ""


def triage(
    version: str, ticket: str, *, temperature: float = 0.0, seed: int | None = None
) -> dict[str, Any]:
    """{category, priority, needs_human, summary} for a ticket."""
    _check_version(version)
    found = _analyse(version, ticket)
    category, priority, needs_human = found.ranking[0], found.priority, found.needs_human
    if temperature > 0:
        rng = random.Random(_stable_seed(version, ticket, 0 if seed is None else seed))
        if rng.random() < min(_MAX_FLIP, _FLIP_PER_TEMPERATURE * temperature):
            pick = rng.random()
            if pick < 0.5:
                category = found.ranking[1]
            elif pick < 0.9:
                index = PRIORITIES.index(priority)
                moves = [i for i in (index - 1, index + 1) if 0 <= i < len(PRIORITIES)]
                priority = PRIORITIES[rng.choice(moves)]
            else:
                needs_human = not needs_human
    answer: dict[str, Any] = {
        "category": category,
        "priority": priority,
        "needs_human": needs_human,
        "summary": found.summary,
    }
    if version == "triage-v2":
        # v2 mirrors the customer's register: a schema contract with enums/booleans catches it.
        if found.shout:
            answer["priority"] = priority.upper()
        if found.wants_person and needs_human:
            answer["needs_human"] = "yes"
    return answer


def respond(
    version: str,
    messages: list[dict[str, Any]],
    *,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    response_format: Any = None,
) -> Completion:
    """Answer a chat request: JSON text of triage(), token counts, truncation at max_tokens.

    ``response_format`` is accepted and ignored: the answer is always the triage JSON object.
    (Offered tools, the model acts instead: :func:`workbench.demo.tools.respond`.)
    """
    answer = triage(version, extract_ticket(messages), temperature=temperature, seed=seed)
    if not _priorities_defined(messages) and answer["priority"] == "p2":
        answer["priority"] = "p3"  # told of priorities but not what p2 means, it plays safe
    return complete(messages, json.dumps(answer, ensure_ascii=False), max_tokens=max_tokens)


def _priorities_defined(messages: list[dict[str, Any]]) -> bool:
    """False when the system prompt gives the priorities as a bare range ("p1 to p4") and
    never says what p2 means.

    The demo model's one sensitivity to its prompt, so prompt variants differ: a terse prompt
    that names the priority range without defining it costs fewer input tokens and gets the
    p2 tickets (blocked customers, money at stake) wrong. Any other prompt, or none, is
    answered as before."""
    system = " ".join(message_text(m) for m in messages if m.get("role") == "system").lower()
    return "p1 to p4" not in system or "money is at stake" in system


def complete(
    messages: list[dict[str, Any]], content: str, *, max_tokens: int | None = None
) -> Completion:
    """``content`` as the answer to ``messages``: token counts, cut at ``max_tokens`` if over."""
    prompt_tokens = 3 + sum(4 + count_tokens(message_text(m)) for m in messages)
    completion_tokens = count_tokens(content)
    if max_tokens is not None and completion_tokens > max_tokens:
        content = _cut_tokens(content, max(0, max_tokens))
        return Completion(content, "length", prompt_tokens, count_tokens(content))
    return Completion(content, "stop", prompt_tokens, completion_tokens)


def count_tokens(text: str) -> int:
    """Approximate tokens: one per CJK character or symbol, one per started 5 letters of a word."""
    return sum(_token_cost(m.group()) for m in _TOKEN.finditer(text))


# -- internals -------------------------------------------------------------------


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(
            f"unknown model version {version!r}; known versions: {', '.join(VERSIONS)}"
        )


def message_text(message: Mapping[str, Any]) -> str:
    """A chat message's text: its content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _token_cost(piece: str) -> int:
    if len(piece) == 1:
        return 1
    return 1 + (len(piece) - 1) // 5


def _cut_tokens(text: str, limit: int) -> str:
    used = 0
    for match in _TOKEN.finditer(text):
        used += _token_cost(match.group())
        if used > limit:
            return text[: match.start()]
    return text


def _stable_seed(version: str, ticket: str, seed: int) -> int:
    digest = hashlib.sha256(f"{version}\x00{seed}\x00{ticket}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@functools.lru_cache(maxsize=1)
def _prototypes() -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(c for c in CATEGORIES for _ in _PROTOTYPES[c])
    sentences = [s for c in CATEGORIES for s in _PROTOTYPES[c]]
    return names, embeddings.embed_many(sentences)


@functools.lru_cache(maxsize=4096)
def _embedding(text: str) -> np.ndarray:
    """Unit-length wordllama embedding of a ticket's text, cached by text."""
    if not text.strip():
        return np.zeros(_prototypes()[1].shape[1], dtype=np.float32)
    return np.asarray(np.nan_to_num(embeddings.embed(text)), dtype=np.float32)


def _embedding_scores(text: str) -> dict[str, float]:
    names, matrix = _prototypes()
    sims = matrix @ _embedding(text)
    best: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    for name, sim in zip(names, sims.tolist(), strict=True):
        best[name] = max(best[name], sim)
    return best


def _compile(rules: tuple[tuple[str, str, float], ...]) -> list[tuple[str, re.Pattern[str], float]]:
    return [(c, re.compile(p, re.IGNORECASE), w) for c, p, w in rules]


_RULES_EN = _compile(_EN_RULES)
_RULES_INTL = [(c, re.compile(p, re.IGNORECASE), w, g) for c, p, w, g in _INTL_RULES]


def _prose(ticket: str) -> str:
    """The ticket without markup and with pasted log lines collapsed to one sample."""
    text = _TAGS.sub(" ", html.unescape(ticket))
    kept: list[str] = []
    logged = False
    for line in text.splitlines():
        if _LOG_LINE.match(line):
            if not logged:
                kept.append(line[:200])
                logged = True
            continue
        kept.append(line)
    return _MARKDOWN.sub("", "\n".join(kept))[:_MAX_PROSE_CHARS]


def _sentences(text: str) -> list[str]:
    """Sentences worth reading: no greetings, sign-offs, headings or log lines."""
    out = []
    for raw in _SENTENCE_END.split(text):
        sentence = _GREETING.sub("", raw.strip()).strip(" -—")
        if not sentence or sentence.endswith(":") or _LOG_LINE.match(sentence):
            continue
        if not _SIGN_OFF.match(sentence):
            out.append(sentence)
    return out


def _language(text: str) -> str:
    """A rough language guess from stopwords ("en", "de", "es", "fr", "pt") or script ("ja")."""
    if _CJK.search(text):
        return "ja"
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())
    counts = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] >= 2 else "en"


def _scores(version: str, prose: str) -> tuple[dict[str, float], list[tuple[int, str]], str]:
    """Category scores, matched English glosses and the detected language of a ticket."""
    v2 = version == "triage-v2"
    scores = dict.fromkeys(CATEGORIES, 0.0)
    for category, pattern, weight in _RULES_EN:
        if pattern.search(prose):
            scores[category] += weight
    glosses: list[tuple[int, str]] = []
    language = _language(prose) if v2 else "en"
    if language != "en":
        for category, pattern, weight, gloss in _RULES_INTL:
            match = pattern.search(prose)
            if match:
                scores[category] += weight
                if gloss:
                    glosses.append((match.start(), gloss))
    if v2 and _SHIPPING_CONTEXT.search(prose):
        # v2 learnt that payment words in a logistics ticket describe the order, not the bill.
        scores["billing"] *= 0.4
    for category, sim in _embedding_scores(prose).items():
        scores[category] += _EMBED_WEIGHT * sim
    if v2 and _CREDENTIALS.search(prose):
        moved = _CREDENTIAL_SHIFT * scores["account"]
        scores["account"] -= moved
        scores["security"] += moved
    return scores, glosses, language


@functools.lru_cache(maxsize=4096)
def _analyse(version: str, ticket: str) -> _Analysis:
    """The temperature-0 answer of one version for one ticket, cached by (version, ticket)."""
    v2 = version == "triage-v2"
    sentences = _sentences(_prose(ticket))
    if v2:
        sentences = [s for s in sentences if not _INJECTION.search(s)] or sentences
    prose = "\n".join(sentences)
    scores, glosses, language = _scores(version, prose)
    # With no evidence at all (an empty ticket) the tie goes to "bug": "it doesn't work".
    order = ("bug", *(c for c in CATEGORIES if c != "bug"))
    ranking = tuple(sorted(order, key=lambda c: -scores[c]))
    category = ranking[0]
    priority = _priority(category, prose)
    if not v2:
        told_category = _INSTRUCTED_CATEGORY.search(prose)
        if told_category:
            category = told_category.group(1).lower()
            ranking = (category, *(c for c in ranking if c != category))
        told_priority = _INSTRUCTED_PRIORITY.search(prose)
        if told_priority:
            priority = told_priority.group(1).lower()
    needs_human = (
        category == "security"
        or priority == "p1"
        or bool(_LEGAL.search(prose))
        or bool(_ANGRY.search(prose))
    )
    if language != "en" and glosses:
        summary = _gloss_summary(glosses)
    else:
        summary = _summary(sentences, category)
    return _Analysis(
        ranking=ranking,
        priority=priority,
        needs_human=needs_human,
        summary=summary,
        shout=bool(_SHOUTING.search(ticket)),
        wants_person=bool(_WANTS_PERSON.search(ticket)),
    )


def _priority(category: str, text: str) -> str:
    """p1..p4 from the category's default and urgency cues in the text."""
    p1 = bool(_P1_CUES.search(text))
    if category == "outage":
        return "p1" if p1 else "p2"
    if category == "security":
        if _INFO_SECURITY.search(text):
            return "p3"
        return "p1" if p1 else "p2"
    if category == "feature_request":
        return "p3" if _CHURN.search(text) else "p4"
    if category == "bug" and re.search(r"data loss|lost all", text, re.IGNORECASE):
        return "p1"
    if _P2_CUES.search(text):
        return "p2"
    return "p4" if _P4_CUES.search(text.strip()) else "p3"


def _summary(sentences: list[str], category: str) -> str:
    """Extractive one-liner: the first on-topic sentence (plus the next if short), third person."""
    sentences = [s for s in sentences if re.search(r"\w", s)]
    if not sentences:
        return "Empty ticket with no details."
    patterns = [p for c, p, _ in _RULES_EN if c == category]
    index = 0
    for position, sentence in enumerate(sentences[:5]):
        if len(sentence.split()) >= 4 and any(p.search(sentence) for p in patterns):
            index = position
            break
    words = sentences[index].split()
    if len(words) < 9 and index + 1 < len(sentences):
        words += sentences[index + 1].split()
    text = _third_person(" ".join(words[:_SUMMARY_WORDS]))[:_SUMMARY_CHARS].rstrip(" ,;:—-")
    if not text:
        return "Empty ticket with no details."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?。！？" else text + "."


def _third_person(text: str) -> str:
    """Rewrite the customer's first person as a summary would ("I can't" -> "Customer can't")."""
    text = _SHOUTED_WORD.sub(lambda m: m.group().lower(), text)
    text = _LEADING_PRONOUN.sub(lambda m: _PRONOUNS[m.group(1).lower()], text, count=1)
    return _POSSESSIVE.sub(lambda m: _PRONOUNS[m.group(1).lower()].lower(), text)


def _gloss_summary(glosses: list[tuple[int, str]]) -> str:
    """An English one-liner built from the glosses of matched non-English keywords."""
    seen: list[str] = []
    for _, gloss in sorted(glosses):
        if gloss not in seen:
            seen.append(gloss)
    clauses = seen[:3]
    joined = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
    return f"Customer {joined}."
