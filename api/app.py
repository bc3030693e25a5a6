"""The FastAPI application: the JSON API under /api and the web UI at /."""

from __future__ import annotations

import logging
import mimetypes
import time

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from api.curation import add_curation_routes
from api.models import (
    AnswerOut,
    AskRequest,
    DocumentOut,
    ErrorOut,
    FailureOut,
    HealthOut,
    PassageOut,
    SearchModeName,
)
from api.openai_compat import add_openai_routes
from api.research import add_research_routes
from api.security import curator_guard, reader_guard
from api.streaming import add_streaming_routes
from kb.auth import parse_hashes, token_matches
from kb.catalogue import DocumentRecord
from kb.errors import DocumentNotFoundError, KBError
from kb.filters import parse_filters
from kb.generate import AnswerGenerator
from kb.service import KnowledgeBase
from kb.settings import Settings

logger = logging.getLogger(__name__)

NOT_FOUND = {404: {"model": ErrorOut}}


def _document_out(record: DocumentRecord) -> DocumentOut:
    return DocumentOut(
        id=record.id,
        file=record.file,
        files=record.files,
        title=record.title,
        doc_type=record.doc_type,
        language=record.language,
        status=record.status,
        chunks=record.chunks,
        pages=record.pages,
        indexed_at=record.indexed_at,
        content_hash=record.content_hash,
        metadata=record.metadata,
    )


def create_api(kb: KnowledgeBase) -> FastAPI:
    """Build the JSON API around an open knowledge base."""
    reader = Depends(reader_guard(kb.settings))
    curator = Depends(curator_guard(kb.settings))
    app = FastAPI(
        title="VET practice knowledge base",
        description="Questions answered with cited sources about AI and XR in VET.",
        version="0.1.0",
    )
    app.state.kb = kb
    generator = AnswerGenerator(kb)

    @app.middleware("http")
    async def log_request(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        if request.url.path.startswith(("/api", "/v1")):
            logger.info(
                "%s %s -> %d in %.0f ms",
                request.method,
                request.url.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        return response

    @app.exception_handler(DocumentNotFoundError)
    async def not_found(request: Request, error: DocumentNotFoundError):
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(KBError)
    async def kb_error(request: Request, error: KBError):
        logger.warning("request %s failed: %s", request.url.path, error)
        status = getattr(error, "status", 400)
        return JSONResponse(status_code=status, content={"detail": str(error)})

    @app.get("/api/health", response_model=HealthOut)
    def health() -> HealthOut:
        stats = kb.stats()
        return HealthOut(
            status="ok",
            documents=stats["documents"],
            chunks=stats["chunks"],
            model=stats["model"],
        )

    @app.post("/api/ask", response_model=AnswerOut, dependencies=[reader])
    def ask(request: AskRequest) -> dict:
        answer = generator.answer(
            request.question,
            top_k=request.top_k,
            filters=request.filters,
            mode=request.mode,
        )
        return answer.to_dict()

    @app.get("/api/search", response_model=list[PassageOut], dependencies=[reader])
    def search(
        q: str = Query(min_length=1, max_length=2000, description="Query text."),
        k: int | None = Query(default=None, ge=1, le=100, description="Passages."),
        filter: list[str] = Query(
            default=[], description="field=value, repeatable, e.g. technology=VR"
        ),
        mode: SearchModeName | None = Query(default=None, description="Ranking."),
    ) -> list[dict]:
        passages = kb.search(q, top_k=k, filters=parse_filters(filter), mode=mode)
        return [{"n": n, **p.to_dict()} for n, p in enumerate(passages, start=1)]

    @app.get("/api/documents", response_model=list[DocumentOut], dependencies=[reader])
    def documents() -> list[DocumentOut]:
        return [_document_out(record) for record in kb.documents()]

    @app.get("/api/failures", response_model=list[FailureOut], dependencies=[reader])
    def failures() -> list[dict]:
        """Files whose last ingestion failed, with the reason; kept until they pass."""
        return kb.catalogue.failures()

    @app.get(
        "/api/documents/{document_id}",
        response_model=DocumentOut,
        responses=NOT_FOUND,
        dependencies=[reader],
    )
    def document(document_id: str) -> DocumentOut:
        return _document_out(kb.document(document_id))

    @app.get(
        "/api/documents/{document_id}/file", responses=NOT_FOUND, dependencies=[reader]
    )
    def document_file(document_id: str) -> FileResponse:
        path = kb.source_file(document_id)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") and media_type != "text/html":
            media_type += "; charset=utf-8"
        if media_type == "text/html":
            # Served as text so that a stored page cannot run scripts on this origin.
            media_type = "text/plain; charset=utf-8"
        return FileResponse(
            path,
            media_type=media_type,
            filename=path.name,
            content_disposition_type="inline",
        )

    add_curation_routes(app, kb, curator)
    add_streaming_routes(app, generator, reader)
    add_openai_routes(app, generator, reader)
    add_research_routes(app, kb, reader)
    return app


def api_from_environment() -> FastAPI:
    """Build the JSON API alone from `KB_*` settings, as each worker process does.

    The model is loaded here, so that a worker's first request is as fast as
    its later ones.
    """
    kb = KnowledgeBase(Settings())
    _ = kb.embedder
    return create_api(kb)


def create_app(
    settings: Settings | None = None, kb: KnowledgeBase | None = None
) -> FastAPI:
    """Build the API and mount the web UI at `/`."""
    import gradio as gr

    from ui.app import CSS, build_ui

    kb = kb or KnowledgeBase(settings or Settings())
    app = create_api(kb)
    readers = parse_hashes(kb.settings.reader_token_sha256)
    auth = None
    if readers:
        # The UI shows a login form: any user name, with a reader or curator
        # token as the password.
        tokens = readers + parse_hashes(kb.settings.curator_token_sha256)

        def auth(username: str, password: str) -> bool:
            return token_matches(password, tokens)

    return gr.mount_gradio_app(
        app, build_ui(kb), path="/", css=CSS, footer_links=["api"], auth=auth
    )
