"""Ingest: trace sources (OTLP/JSON files, Phoenix) -> spans -> turns -> sessions.

``sources/`` decode records into spans (``otlp``, ``phoenix``), ``conventions`` says what a span
means for the conversation (one module to touch for a new convention), ``extract`` stages,
deduplicates and publishes spans, ``sessionize`` rebuilds turns and sessions; ``stage``
composes them once (``run_ingest``)."""

from tasks.ingest.stage import run_ingest

__all__ = ["run_ingest"]
