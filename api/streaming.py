"""Streamed answers: POST /api/ask/stream as newline-delimited JSON.

Each line is one JSON object. `{"type": "delta", "text": ...}` lines carry
the answer text as it is written (for a generated answer, one checked
sentence at a time), and the last line, `{"type": "answer", ...}`, carries the
whole answer object of POST /api/ask: text, citations, `generated`, `notice`,
`unsupported` and `removed_citations`. The delta texts joined equal the final
`answer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.params import Depends
from fastapi.responses import StreamingResponse

from api.models import AskRequest
from kb.answer import Answer
from kb.generate import AnswerGenerator, Delta

NDJSON = "application/x-ndjson"


def answer_lines(events: Iterator[Delta | Answer]) -> Iterator[str]:
    """Encode answer events as lines of JSON."""
    for event in events:
        if isinstance(event, Delta):
            line = {"type": "delta", "text": event.text}
        else:
            line = {"type": "answer", **event.to_dict()}
        yield json.dumps(line, ensure_ascii=False) + "\n"


def add_streaming_routes(
    app: FastAPI, generator: AnswerGenerator, reader: Depends
) -> None:
    @app.post(
        "/api/ask/stream",
        dependencies=[reader],
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {NDJSON: {}},
                "description": (
                    'Lines of JSON: {"type": "delta", "text": ...} while the answer '
                    'is written, then {"type": "answer", ...} with the answer of '
                    "POST /api/ask."
                ),
            }
        },
    )
    def ask_stream(request: AskRequest) -> StreamingResponse:
        # Retrieval runs here, so bad filters get a 400 before streaming starts.
        events = generator.start(
            request.question,
            top_k=request.top_k,
            filters=request.filters,
            mode=request.mode,
        )
        return StreamingResponse(answer_lines(events), media_type=NDJSON)
