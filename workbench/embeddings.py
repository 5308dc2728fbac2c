"""Offline text embeddings: the wordllama model whose weights ship inside its wheel."""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import ConfigError

__all__ = [
    "embed_many",
    "model",
    "similarity",
]

_LOCK = threading.Lock()
_MODEL: Any = None


def model() -> Any:
    """The wordllama model, loaded once per process with no network access."""
    global _MODEL
    if _MODEL is None:
        with _LOCK:
            if _MODEL is None:
                _MODEL = _load()
    return _MODEL


def _load() -> Any:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        # wordllama calls logging.basicConfig(INFO) on import; keep the host's logging as it was.
        import wordllama

        loaded = wordllama.WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )
    except Exception as exc:
        raise ConfigError(
            f"cannot load the wordllama embedding model offline: {type(exc).__name__}: {exc}; "
            "reinstall wordllama (its weights ship inside the package)"
        ) from exc
    finally:
        root.setLevel(level)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
    return loaded


@functools.lru_cache(maxsize=8192)
def embed(text: str) -> np.ndarray[Any, Any]:
    """Unit-length embedding of one text, cached by text."""
    vector = np.asarray(model().embed(text, norm=True)[0], dtype=np.float32)
    vector.setflags(write=False)
    return vector


def embed_many(texts: list[str]) -> np.ndarray[Any, Any]:
    """Unit-length embeddings of several texts, one row each."""
    return np.asarray(model().embed(texts, norm=True), dtype=np.float32)


def similarity(a: str, b: str) -> float:
    """Cosine similarity of two texts' embeddings, in [-1, 1]."""
    return float(np.dot(embed(a), embed(b)))
