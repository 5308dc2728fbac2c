"""A python: target for the JUnit report tests: flaky repeats, control characters, a crash."""

from __future__ import annotations

from workbench import Request

# Raw characters XML 1.0 forbids (NUL, backspace, escape, bell, a noncharacter), as a
# messy model might send them, beside ones it allows (tab, DEL, emoji).
FORBIDDEN = "\x00\x08\x1b[31m\x07\ufffe"
ALLOWED = "\t\x7f🙂"
LONG_WORDS = 5_000


def answer(request: Request) -> str | dict[str, str]:
    """Echo the question word on the tiny dataset, except:

    - c001 is wrong on two repeats in three (seeds 1 and 2 of a run with seed 0);
    - c002 answers plain text full of control characters;
    - c003 crashes, with control characters in the error;
    - c004 answers a very long text.
    """
    word = request.messages[-1]["content"].removeprefix("Q: ")
    if word == "word1" and (request.seed or 0) % 3:
        return {"answer": "wrong"}
    if word == "word2":
        return f"not json {FORBIDDEN} {ALLOWED} word2"
    if word == "word3":
        raise RuntimeError(f"app crashed {FORBIDDEN} here")
    if word == "word4":
        return "long " * LONG_WORDS
    return {"answer": word}
