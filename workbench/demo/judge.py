"""The demo's offline judge model ``judge`` (target ``demo:judge``): rule-based and deterministic.

The demo model server answers the model ``judge`` with :func:`grade`, which reads the tagged
sections of the judge protocol (``docs/judge-protocol.md``) and answers the JSON object the
``response_format`` schema name asks for: ``judge_rubric``, ``judge_reference`` or
``judge_pairwise`` (without one, the kind follows from the sections: ``<output_a>`` means
pairwise, ``<scale>`` rubric, an ``<expected>`` alone reference). Neither the seed nor the
temperature changes an answer. The rules, which a reader can check by hand:

**Words.** A text is lower-cased and split into words; English stop-words, negations and
summary filler ("customer", "user", "asks", "wants", "reports", ...) are dropped; number words
become digits ("six" reads "6"); each word is crudely stemmed (``-ies``/``-ied`` become
``-y``; a final ``-s``, then ``-ing``/``-ed``, then ``-ly`` and a final ``-e`` are removed,
and a doubled final consonant is undone), so "logged out" and "logs out" both read "log out".
*Recall* is the share of the expected answer's content words found in the output,
*precision* the share of the output's content words found in the expected answer.

**Rubric** (``judge_rubric``), on a 1-5 base mapped linearly onto ``<scale>lo-hi</scale>``
(default 1-5). An empty output gets the lowest score and nothing else is counted. The base
is 5 for recall >= 0.75, 4 for >= 0.5, 3 for >= 0.3, 2 for >= 0.15, else 1; without an
``<expected>`` it comes from the share of output words found in the ``<input>`` (3 when there
is no input either). Then each check the ``<criteria>`` mention (all of them when there are no
criteria) lowers it, to no less than 1:

- *English* (criteria say "english"): mostly non-ASCII letters, or more German, Spanish,
  French or Portuguese stop-words than English ones (at least 2): -2;
- *one sentence* ("sentence"): more than one sentence: -1;
- *short* ("short", "brief", "concise"): over 300 characters: -1;
- *no invented details* ("invent", "unsupported", "hallucinat", "fabricat"): at least 2 and
  over a quarter of the output's content words in neither the input nor the expected: -1;
- *no instructions followed* ("instruction"): the output repeats a directive pasted into a
  ticket ("ignore previous instructions", "mark this ticket as", "category=...",
  "SYSTEM:"): -2.

**Reference** (``judge_reference``), in this order: an empty output, or recall and precision
both under 0.15: ``unrelated``; with recall >= 0.2, a contradiction the rules can see:
``contradicts``. That is a content word within 3 words after a negation ("not", "no",
"never", "without", "-n't") in one text that the other states with no negation or absence
word ("missing", "lost", "fails") at all; numbers on both sides with none in common; or
different platforms (iOS, Android, ...). Then recall >= 0.7 and precision >= 0.6: ``equal``;
recall >= 0.7: ``superset``; recall >= 0.3 or precision >= 0.5: ``subset``; any other
overlap: ``contradicts`` (same topic words, different facts).

**Pairwise** (``judge_pairwise``): each output gets the rubric score above (with the same
slips); the higher wins, equal scores tie, and so do two identical texts. A deliberate
position bias: when the scores differ by at most 1 point and a hash of the two texts (the same
in either order) falls in the lowest 15%, the output shown first (``A``) wins, so judging both
orders reveals these cases.

**Slips.** A realistic judge errs: about 5% of outputs, chosen by a SHA-256 of the output
text (not random, not the seed), get their rubric base moved by 2 points (down from 3 or
above, else up) and their reference verdict moved one step along equal, superset, subset,
contradicts, unrelated. The reason says so.

A request without the sections is answered, never refused: the lowest score (or
``unrelated``, or ``tie``) with a reason saying the prompt had no ``<output>`` section.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.demo import model

__all__ = ["KINDS", "MODEL", "VERDICTS", "grade", "respond"]

MODEL = "judge"
KINDS: tuple[str, ...] = ("rubric", "reference", "pairwise")
VERDICTS: tuple[str, ...] = ("equal", "superset", "subset", "contradicts", "unrelated")

_BASE_LOW, _BASE_HIGH = 1, 5
_RECALL_STEPS = ((0.75, 5), (0.5, 4), (0.3, 3), (0.15, 2))
_MAX_CHARS = 300
_SLIP_SHARE = 0.05
_SLIP_POINTS = 2
_BIAS_SHARE = 0.15
_BIAS_MAX_GAP = 1

_SECTION = re.compile(
    r"<(criteria|steps|scale|input|expected|output|output_a|output_b)>\n?(.*?)\n?</\1>", re.S
)
_ENTITY = re.compile(r"&(lt|amp);")
_SCALE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_LETTER = re.compile(r"[^\W\d_]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?。！？])\s+(?=\S)|(?<=[。！？])(?=\S)|\n+")
_ABBREVIATION = re.compile(r"\b(e\.g|i\.e|etc|vs|approx|mr|mrs|ms|dr)\.", re.IGNORECASE)
_DIRECTIVE = re.compile(
    r"ignore (all |any )?(the )?(previous|prior|above|earlier) instructions"
    r"|\b(mark|label|classify|flag|tag) (this|the) ticket as\b|\brespond with (category|priority)"
    r"|^\s*(system|assistant)\s*:|\b(category|priority|needs_human)\s*[=:]\s*\w",
    re.IGNORECASE | re.MULTILINE,
)


def _words(text: str) -> set[str]:
    return set(text.split())


_STOP_EN = _words(
    "a an the and or but if of to in on at for from by with about as into over after before "
    "since until than then so too very just also only even still yet again all any some every "
    "each both either other another such own same is are was were be been being am has have "
    "had having do does did doing will would can could should shall may might must i me my "
    "mine we us our ours you your yours he him his she her hers it its they them their theirs "
    "this that these those there here which who whom whose what when where why how it's i'm "
    "i've we're we've they're that's there's please thanks thank hi hello dear"
)
_NEGATIONS = _words("not no never none nothing nobody without cannot can't won't isn't")
# Words that say something is absent, so a text with them is not a plain positive statement.
_ABSENCE = _words("missing lacks lacking absent lost fails failed failing")
_NEGATION_SCOPE = 3
_FILLER = _words(
    "customer customers user users someone say says said ask asks asked want wants wanted "
    "report reports reported request requests requested mention mentions complain complains "
    "note notes wonder wonders like"
)
_NUMBERS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twice": "2",
}
_PLATFORMS = _words("ios android iphone ipad macos windows linux chrome safari firefox")
# Stop-words that mark a language and are not English words, for the English check.
_STOP_OTHER = {
    "de": _words(
        "der die das und ist nicht ein eine einen wir ich sie mit für auf den dem des bei nach "
        "als werden wird sind seit uns unsere unser mein meine bitte wenn man hat haben kann im"
    ),
    "es": _words(
        "el los las la de en un y que pero una por para con mi nuestra nuestro está han ha "
        "desde puedo dice pueden muy también del al se es"
    ),
    "fr": _words(
        "le les la de en est et une un mon nous vous pas je ai ne depuis pour dans sur au aux "
        "avec toujours mais être votre du des"
    ),
    "pt": _words(
        "o os de e não meu minha está uma um para pela pelo como ainda há foi fui em da do "
        "na podem nenhuma"
    ),
}
_STOP_EN_PROFILE = _words(
    "the and is are was were to of in on for with my our it this that have has not can "
    "cannot when after since from they their be by at"
)
# Criteria words that switch a rubric check on; with no criteria every check is on.
_CHECK_WORDS: dict[str, tuple[str, ...]] = {
    "english": ("english",),
    "sentence": ("sentence",),
    "short": ("short", "brief", "concise", "characters"),
    "invent": ("invent", "unsupported", "hallucinat", "fabricat", "made up"),
    "instructions": ("instruction",),
}


@dataclass(frozen=True)
class _Request:
    """A judge request's sections (unescaped) and the kind of answer it asks for."""

    kind: str
    sections: dict[str, str]
    scale: tuple[int, int]


@dataclass(frozen=True)
class _Grade:
    """A rubric grade on the 1-5 base, with the reason's parts."""

    base: int
    parts: tuple[str, ...]


# -- public API ------------------------------------------------------------------


def grade(
    messages: Sequence[Mapping[str, Any]],
    response_format: Mapping[str, Any] | None = None,
    seed: int | None = None,
) -> str:
    """The judge's answer to one protocol request, as JSON text; ``seed`` changes nothing."""
    del seed  # deterministic by design: the same request always gets the same answer
    request = _read(messages, response_format)
    if request.kind == "pairwise":
        answer = _pairwise(request)
    elif request.kind == "reference":
        answer = _reference(request)
    else:
        answer = _rubric(request)
    return json.dumps(answer, ensure_ascii=False)


def respond(
    messages: list[dict[str, Any]],
    *,
    response_format: Mapping[str, Any] | None = None,
    temperature: float = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
) -> model.Completion:
    """Answer a chat request to the model ``judge``: grade()'s JSON, token counts, max_tokens."""
    del temperature  # the rules have nothing to sample
    content = grade(messages, response_format, seed)
    return model.complete(messages, content, max_tokens=max_tokens)


# -- reading the request ------------------------------------------------------------


def _unescape(text: str) -> str:
    """Undo the protocol's escaping in one pass, so ``&amp;lt;`` reads ``&lt;``."""
    return _ENTITY.sub(lambda m: "<" if m.group(1) == "lt" else "&", text)


def _read(
    messages: Sequence[Mapping[str, Any]], response_format: Mapping[str, Any] | None
) -> _Request:
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    text = model.message_text(user) if user is not None else ""
    sections: dict[str, str] = {}
    for match in _SECTION.finditer(text):
        sections.setdefault(match.group(1), _unescape(match.group(2)))
    scale = (_BASE_LOW, _BASE_HIGH)
    found = _SCALE.match(sections.get("scale", ""))
    if found and int(found.group(1)) < int(found.group(2)):
        scale = (int(found.group(1)), int(found.group(2)))
    return _Request(_kind(response_format, sections), sections, scale)


def _kind(response_format: Mapping[str, Any] | None, sections: Mapping[str, str]) -> str:
    schema = (response_format or {}).get("json_schema")
    name = schema.get("name") if isinstance(schema, Mapping) else None
    if isinstance(name, str) and name.removeprefix("judge_") in KINDS:
        return name.removeprefix("judge_")
    if "output_a" in sections or "output_b" in sections:
        return "pairwise"
    if "expected" in sections and "scale" not in sections:
        return "reference"
    return "rubric"


# -- words ----------------------------------------------------------------------


def _stem(word: str) -> str:
    if word.isdigit() or len(word) <= 3:
        return word
    if word.endswith(("ies", "ied")) and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if word.endswith("ly") and len(word) > 5:
        word = word[:-2]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _content(text: str) -> set[str]:
    """The stemmed content words of a text (see the module docstring)."""
    out = set()
    for word in _tokens(text):
        if word in _STOP_EN or word in _NEGATIONS or word.endswith("n't"):
            continue
        word = _NUMBERS.get(word, word)
        word = word.removesuffix("'s")
        stem = _stem(word)
        if stem not in _FILLER and word not in _FILLER:
            out.add(stem)
    return out


def _negation(text: str) -> tuple[bool, set[str]]:
    """Whether a text negates anything, and the content words within 3 words after a negation."""
    tokens = _tokens(text)
    scoped: set[str] = set()
    negated = False
    for i, word in enumerate(tokens):
        if word in _NEGATIONS or word.endswith("n't"):
            negated = True
            scoped |= _content(" ".join(tokens[i + 1 : i + 1 + _NEGATION_SCOPE]))
        elif word in _ABSENCE:
            negated = True
    return negated, scoped


def _numbers(text: str) -> set[str]:
    return {_NUMBERS.get(w, w) for w in _tokens(text) if w.isdigit() or w in _NUMBERS}


def _english(text: str) -> bool:
    letters = _LETTER.findall(text)
    if letters and sum(not c.isascii() for c in letters) > len(letters) / 2:
        return False
    words = [piece for w in _tokens(text) for piece in w.split("'")]
    english = sum(w in _STOP_EN_PROFILE for w in words)
    other = max(sum(w in stop for w in words) for stop in _STOP_OTHER.values())
    return not (other >= 2 and other > english)


def _sentences(text: str) -> int:
    text = _ABBREVIATION.sub(lambda m: m.group(1).replace(".", ""), text.strip())
    return sum(1 for piece in _SENTENCE_BREAK.split(text) if _LETTER.search(piece))


def _share(text: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _slips(output: str) -> bool:
    """The ~5% of outputs the judge misjudges, picked by a hash of the output text."""
    return _share(output, "demo-judge-slip") < _SLIP_SHARE


# -- rubric ---------------------------------------------------------------------


def _checks(criteria: str | None) -> set[str]:
    if not criteria or not criteria.strip():
        return set(_CHECK_WORDS)
    lowered = criteria.lower()
    return {name for name, cues in _CHECK_WORDS.items() if any(c in lowered for c in cues)}


def _base(output: str, sections: Mapping[str, str]) -> tuple[int, str]:
    """The 1-5 base score and its reason, from recall of the expected (or the input)."""
    words = _content(output)
    expected = sections.get("expected")
    if expected is not None and _content(expected):
        wanted = _content(expected)
        covered = len(wanted & words)
        recall = covered / len(wanted)
        base = next((s for floor, s in _RECALL_STEPS if recall >= floor), _BASE_LOW)
        return base, f"covers {covered} of {len(wanted)} reference content words"
    source = sections.get("input")
    if source is not None and words:
        found = len(words & _content(source))
        share = found / len(words)
        base = next((s for floor, s in _RECALL_STEPS if share >= floor), _BASE_LOW)
        return base, f"{found} of {len(words)} content words are found in the input"
    return 3, "no reference or input to compare with"


def _grade(output: str, sections: Mapping[str, str]) -> _Grade:
    """The rubric grade of one output, slips included."""
    if not output.strip():
        return _Grade(_BASE_LOW, ("the output is empty",))
    base, coverage = _base(output, sections)
    parts = [coverage]
    checks = _checks(sections.get("criteria"))
    penalty = 0
    if "sentence" in checks:
        count = _sentences(output)
        parts.append("one sentence" if count <= 1 else f"{count} sentences (-1)")
        penalty += count > 1
    if "short" in checks and len(output) > _MAX_CHARS:
        parts.append(f"{len(output)} characters, over {_MAX_CHARS} (-1)")
        penalty += 1
    if "english" in checks:
        english = _english(output)
        parts.append("English" if english else "not English (-2)")
        penalty += 0 if english else 2
    if "invent" in checks:
        known = _content(sections.get("input", "")) | _content(sections.get("expected", ""))
        words = _content(output)
        invented = sorted(words - known)
        if len(invented) >= 2 and len(invented) > len(words) / 4:
            parts.append(f"{len(invented)} words in neither input nor reference (-1)")
            penalty += 1
    if "instructions" in checks and _DIRECTIVE.search(output):
        parts.append("repeats an instruction from the ticket (-2)")
        penalty += 2
    score = max(_BASE_LOW, base - penalty)
    if _slips(output):
        score += -_SLIP_POINTS if score >= 3 else _SLIP_POINTS
        parts.append(f"simulated judge slip (moved by {_SLIP_POINTS})")
    return _Grade(score, tuple(parts))


def _on_scale(base: int, scale: tuple[int, int]) -> int:
    low, high = scale
    return low + int((base - _BASE_LOW) * (high - low) / (_BASE_HIGH - _BASE_LOW) + 0.5)


def _no_output(tag: str) -> str:
    return f"The prompt had no <{tag}> section, so there was nothing to judge."


def _rubric(request: _Request) -> dict[str, Any]:
    output = request.sections.get("output")
    if output is None:
        return {"score": request.scale[0], "reason": _no_output("output")}
    found = _grade(output, request.sections)
    score = _on_scale(found.base, request.scale)
    low, high = request.scale
    reason = "; ".join(found.parts)
    return {"score": score, "reason": f"{reason[0].upper()}{reason[1:]}: {score} on {low}-{high}."}


# -- reference ------------------------------------------------------------------


def _contradiction(output: str, expected: str) -> str | None:
    """A simple fact at odds: negation, numbers or platform; None when none is seen."""
    for one, other, side in ((output, expected, "output"), (expected, output, "reference")):
        negated, scoped = _negation(one)
        clash = sorted(scoped & _content(other))
        if negated and clash and not _negation(other)[0]:
            return f"only the {side} negates '{clash[0]}'"
    mine, theirs = _numbers(output), _numbers(expected)
    if mine and theirs and not mine & theirs:
        return f"numbers differ ({', '.join(sorted(mine))} vs {', '.join(sorted(theirs))})"
    words, wanted = set(_tokens(output)) & _PLATFORMS, set(_tokens(expected)) & _PLATFORMS
    if words and wanted and not words & wanted:
        return f"platforms differ ({', '.join(sorted(words))} vs {', '.join(sorted(wanted))})"
    return None


def _verdict(output: str, expected: str) -> tuple[str, str]:
    words, wanted = _content(output), _content(expected)
    if not words or not wanted:
        side = "output" if not words else "reference"
        return "unrelated", f"the {side} has no content words"
    common = words & wanted
    recall, precision = len(common) / len(wanted), len(common) / len(words)
    numbers = f"covers {len(common)} of {len(wanted)} reference content words; "
    numbers += f"{len(common)} of its {len(words)} content words are in the reference"
    if recall < 0.15 and precision < 0.15:
        return "unrelated", numbers
    clash = _contradiction(output, expected)
    if clash is not None and recall >= 0.2:
        return "contradicts", f"{numbers}, but {clash}"
    if recall >= 0.7:
        return ("equal" if precision >= 0.6 else "superset"), numbers
    if recall >= 0.3 or precision >= 0.5:
        return "subset", numbers
    return "contradicts", f"{numbers}: same topic words, different facts"


def _reference(request: _Request) -> dict[str, Any]:
    output = request.sections.get("output")
    if output is None:
        return {"verdict": "unrelated", "reason": _no_output("output")}
    expected = request.sections.get("expected")
    if expected is None:
        return {"verdict": "unrelated", "reason": _no_output("expected")}
    verdict, reason = _verdict(output, expected)
    if output.strip() and _slips(output):
        index = VERDICTS.index(verdict)
        verdict = VERDICTS[index + 1 if index + 1 < len(VERDICTS) else index - 1]
        reason += "; simulated judge slip (moved one step)"
    return {"verdict": verdict, "reason": f"{reason[0].upper()}{reason[1:]}: {verdict}."}


# -- pairwise -------------------------------------------------------------------


def _pairwise(request: _Request) -> dict[str, Any]:
    a, b = request.sections.get("output_a"), request.sections.get("output_b")
    if a is None or b is None:
        return {"winner": "tie", "reason": _no_output("output_a" if a is None else "output_b")}
    if a.strip() == b.strip():
        return {"winner": "tie", "reason": "The two outputs are the same text: a tie."}
    score_a, score_b = _grade(a, request.sections).base, _grade(b, request.sections).base
    scores = f"A scores {score_a} and B scores {score_b} of {_BASE_HIGH} on the rubric rules"
    pair = "\x00".join(sorted((a, b)))  # the same hash in either order
    if abs(score_a - score_b) <= _BIAS_MAX_GAP and _share(pair, "demo-judge-position") < (
        _BIAS_SHARE
    ):
        return {"winner": "A", "reason": f"{scores}; a close call, the first answer was preferred."}
    if score_a == score_b:
        return {"winner": "tie", "reason": f"{scores}: a tie."}
    winner = "A" if score_a > score_b else "B"
    return {"winner": winner, "reason": f"{scores}: {winner} is better."}
