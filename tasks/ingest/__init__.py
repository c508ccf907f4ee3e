"""Ingest: trace sources (OTLP/JSON files, Phoenix) -> spans -> turns -> sessions.

``sources/`` decode records into spans, ``conventions`` says what a span means for the
conversation, ``extract`` stages, deduplicates and publishes spans, ``sessionize`` rebuilds
turns and sessions."""

__all__ = ["conventions", "extract", "sessionize", "sources"]
