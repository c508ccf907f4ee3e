"""Small helpers every stage shares: text, time, errors, one retry policy, the LLM client,
and how a stage's steps run (in this process, or as Prefect tasks)."""

__all__ = ["clock", "errors", "llm", "retry", "runner", "text"]
