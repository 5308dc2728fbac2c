"""The demo app's knowledge base: help-center articles, embedded once, and passage splitting."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from workbench import embeddings
from workbench.errors import ConfigError

__all__ = ["Article", "Index", "Vectors", "kb_index", "load_kb", "passages"]

_KB_PATH = Path(__file__).with_name("kb.json")
_MAX_SENTENCES = 8
_MIN_SENTENCE_CHARS = 12
# Like an embedding model's context window (~512 tokens): a pasted log is cut, not embedded.
_MAX_PASSAGE_CHARS = 2000

_TAGS = re.compile(r"<[^>\n]{1,200}>")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n+")

Vectors = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Article:
    """One help-center article of the knowledge base."""

    id: str
    category: str
    title: str
    body: str


def load_kb(path: Path = _KB_PATH) -> tuple[Article, ...]:
    """The help-center articles from kb.json, checked field by field."""
    try:
        docs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the knowledge base: {exc}") from None
    if not isinstance(docs, list) or not docs:
        raise ConfigError(f"{path}: expected a non-empty JSON list of articles")
    articles: list[Article] = []
    for i, doc in enumerate(docs):
        fields = ("id", "category", "title", "body")
        if not isinstance(doc, dict) or not all(isinstance(doc.get(f), str) for f in fields):
            raise ConfigError(f"{path}: article [{i}] needs string fields {', '.join(fields)}")
        articles.append(Article(doc["id"], doc["category"], doc["title"], doc["body"]))
    if len({a.id for a in articles}) != len(articles):
        raise ConfigError(f"{path}: article ids must be unique")
    return tuple(articles)


@dataclass(frozen=True)
class Index:
    """The knowledge base embedded once: whole articles, and sentences grouped by article."""

    articles: tuple[Article, ...]
    vectors: Vectors  # (articles, dim): title and body together
    chunks: Vectors  # (sentences, dim): each title and body sentence, article by article
    starts: np.ndarray[Any, Any]  # index of each article's first chunk, for np.maximum.reduceat


@cache
def kb_index() -> Index:
    """Embed the knowledge base, once per process."""
    articles = load_kb()
    chunks: list[str] = []
    starts: list[int] = []
    for article in articles:
        starts.append(len(chunks))
        chunks.append(article.title)
        chunks.extend(_sentences(article.body))
    vectors = embeddings.embed_many([f"{a.title}. {a.body}" for a in articles])
    chunk_vectors = embeddings.embed_many(chunks)
    for array in (vectors, chunk_vectors):
        array.setflags(write=False)
    return Index(articles, vectors, chunk_vectors, np.asarray(starts, dtype=np.intp))


def _sentences(text: str) -> list[str]:
    parts = (_SPACES.sub(" ", p).strip() for p in _SENTENCE_END.split(text))
    return [p for p in parts if len(p) >= _MIN_SENTENCE_CHARS]


def passages(text: str) -> list[str]:
    """What is embedded for a text: its start (tags stripped), then up to 8 of its sentences."""
    clean = _TAGS.sub(" ", text)
    whole = (_SPACES.sub(" ", clean).strip() or text.strip())[:_MAX_PASSAGE_CHARS]
    sentences = _sentences(clean)
    if len(sentences) <= 1:
        return [whole]
    return [whole, *(s[:_MAX_PASSAGE_CHARS] for s in sentences[:_MAX_SENTENCES])]
