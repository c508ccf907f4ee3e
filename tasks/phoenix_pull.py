"""Phoenix pull: pages of a Phoenix project -> the lake, resuming from the stored cursor.

The stage ``pull`` takes its connection and settings as arguments; the thin Prefect task
is at the bottom. The cursor (watermark ``phoenix``/``URL|project``) is persisted only
after the spans before it are committed: a dead or unauthorised server mid-pull keeps
what was stored, reports one line, and the next pull resumes without gaps (dedup on
(trace_id, span_id) absorbs the one span Phoenix's inclusive cursor returns again).
"""

from __future__ import annotations

from models.ingest import ExtractInfo
from tasks import catalog
from tasks._prefect import lazy_task
from tasks.extract import extract_spans
from tasks.sources.phoenix import SOURCE, PhoenixError, PhoenixPage, iter_phoenix_pages, make_phoenix_client


def watermark_key(url: str, project: str) -> str:
    return f"{url.rstrip('/')}|{project}"


def pull(con, settings, url: str, project: str) -> list[ExtractInfo]:
    """Pull every span of ``project`` added since the last pull; commit every
    ``phoenix_commit_spans`` spans. Raises PhoenixError after storing what it got."""
    key = watermark_key(url, project)
    cursor = catalog.get_watermark(con, SOURCE, key)
    api_key = settings.phoenix_api_key.get_secret_value() if settings.phoenix_api_key else None
    infos: list[ExtractInfo] = []
    pending: list[PhoenixPage] = []

    def commit() -> None:
        if not pending:
            return
        spans = [s for p in pending for s in p.spans]
        rejects = [{"location": r.location, "reason": r.reason, "raw": r.raw} for p in pending for r in p.rejects]
        infos.append(extract_spans(con, settings, spans, rejects, source=SOURCE, project=project))
        catalog.set_watermark(con, SOURCE, key, pending[-1].resume_cursor)
        pending.clear()

    with make_phoenix_client(url, api_key) as client:
        try:
            for page in iter_phoenix_pages(client, project, cursor, settings.phoenix_page_size):
                pending.append(page)
                if sum(len(p.spans) + len(p.rejects) for p in pending) >= settings.phoenix_commit_spans:
                    commit()
        except PhoenixError:
            commit()
            raise
        commit()
    return infos


def _pull_task_fn(settings, url: str, project: str) -> list[ExtractInfo]:
    with catalog.writer(settings) as con:
        return pull(con, settings, url, project)


pull_task = lazy_task(_pull_task_fn, name="phoenix-pull", retries=2, retry_delay_seconds=10)
