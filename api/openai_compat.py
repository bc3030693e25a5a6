"""OpenAI-compatible chat endpoints, so that chat clients can ask the knowledge base.

`POST /v1/chat/completions` answers the last user message of the conversation
with the answer of POST /api/ask: generated and checked when an LLM is
configured, extractive otherwise. The reply message contains the answer with its
[n] markers followed by a list of sources, and the response carries the
structured citations in the extra fields `citations`, `found`, `generated`,
`notice`, `unsupported` and `removed_citations`. With `"stream": true` the
reply comes as server-sent events of `chat.completion.chunk` objects, ending
with `data: [DONE]`. `GET /v1/models` lists the one model, `vet-kb`.

Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
except those of the reader token check, which are `{"detail": ...}` as on
every other reading route.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.params import Depends
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kb.answer import Answer, Citation
from kb.generate import AnswerGenerator, Delta, final_answer

logger = logging.getLogger(__name__)

MODEL_ID = "vet-kb"
MAX_QUESTION_CHARS = 2000  # as for POST /api/ask


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    # Sampling options such as temperature or max_tokens are accepted and
    # ignored: the answer comes from the knowledge base.
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False


class RequestError(Exception):
    """An invalid chat request, answered in OpenAI's error format."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code

    def response(self) -> JSONResponse:
        logger.warning("rejected a chat completion request: %s", self)
        return JSONResponse(
            status_code=self.status,
            content={
                "error": {
                    "message": str(self),
                    "type": "invalid_request_error",
                    "param": self.param,
                    "code": self.code,
                }
            },
        )


def _message_text(message: ChatMessageIn) -> str:
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    return "\n".join(
        str(part.get("text", "")) for part in parts if part.get("type") == "text"
    )


def question_from(request: ChatCompletionRequest) -> str:
    """Return the text of the last user message, which is the question.

    NOTE: earlier messages are not used, so a follow-up such as "and in
    Spain?" is answered without the context of the conversation.
    """
    if request.model not in (None, MODEL_ID):
        raise RequestError(
            f"model {request.model!r} not found; GET /v1/models lists the only "
            f"model, {MODEL_ID!r}",
            status=404,
            param="model",
            code="model_not_found",
        )
    users = [m for m in request.messages if m.role == "user"]
    if not users:
        raise RequestError(
            "messages contain no message with role 'user'; send the question as "
            "the last user message",
            param="messages",
        )
    question = _message_text(users[-1]).strip()
    if not question:
        raise RequestError(
            "the last user message has no text; send the question as its content",
            param="messages",
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise RequestError(
            f"the question has {len(question)} characters; the maximum is "
            f"{MAX_QUESTION_CHARS}",
            param="messages",
        )
    return question


def source_label(citation: Citation) -> str:
    passage = citation.passage
    where = f"page {passage.page}" if passage.page else passage.section or ""
    place = f"{passage.file}, {where}" if where else passage.file
    return f"[{citation.n}] {passage.title} ({place})"


def reply_text(answer: Answer) -> str:
    """Return the reply message: the answer, any notice, then the sources."""
    parts = [answer.answer]
    if answer.notice:
        parts.append(f"Note: {answer.notice}")
    if answer.unsupported:
        count = len(answer.unsupported)
        sentences = "sentence" if count == 1 else "sentences"
        parts.append(
            f"Removed {count} generated {sentences} that the cited passages do "
            "not support."
        )
    if answer.citations:
        parts.append(
            "Sources:\n" + "\n".join(source_label(c) for c in answer.citations)
        )
    return "\n\n".join(parts)


def answer_fields(answer: Answer) -> dict[str, Any]:
    """Return the extra response fields with the structured answer."""
    fields = answer.to_dict()
    return {
        "citations": fields["citations"],
        "found": fields["found"],
        "generated": fields["generated"],
        "notice": fields["notice"],
        "unsupported": fields["unsupported"],
        "removed_citations": fields["removed_citations"],
    }


def completion(answer: Answer, completion_id: str, created: int) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply_text(answer)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        **answer_fields(answer),
    }


def _chunk(
    completion_id: str,
    created: int,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    **extra: Any,
) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def completion_events(
    events: Iterator[Delta | Answer], completion_id: str, created: int
) -> Iterator[str]:
    """Encode answer events as server-sent `chat.completion.chunk` events."""
    yield _chunk(completion_id, created, {"role": "assistant", "content": ""})
    for event in events:
        if isinstance(event, Delta):
            yield _chunk(completion_id, created, {"content": event.text})
            continue
        tail = reply_text(event)[len(event.answer) :]
        if tail:
            yield _chunk(completion_id, created, {"content": tail})
        yield _chunk(completion_id, created, {}, "stop", **answer_fields(event))
    yield "data: [DONE]\n\n"


def add_openai_routes(
    app: FastAPI, generator: AnswerGenerator, reader: Depends
) -> None:
    created = int(time.time())

    @app.get("/v1/models", dependencies=[reader], tags=["OpenAI-compatible"])
    def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": MODEL_ID,
                    "object": "model",
                    "created": created,
                    "owned_by": "vet-kb",
                }
            ],
        }

    @app.post("/v1/chat/completions", dependencies=[reader], tags=["OpenAI-compatible"])
    async def chat_completions(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return RequestError(
                "the request body is not valid JSON; send a chat completion request"
            ).response()
        try:
            chat = ChatCompletionRequest.model_validate(body)
            question = question_from(chat)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}"
                for e in error.errors()
            )
            return RequestError(
                f"invalid chat completion request: {problems}"
            ).response()
        except RequestError as error:
            return error.response()

        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        now = int(time.time())
        # Retrieval and the model run in a worker thread; both block.
        events = await run_in_threadpool(generator.start, question, stream=chat.stream)
        if chat.stream:
            return StreamingResponse(
                completion_events(events, completion_id, now),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        final = await run_in_threadpool(final_answer, events)
        return completion(final, completion_id, now)
