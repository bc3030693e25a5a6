"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests.

It answers POST /v1/chat/completions with a scripted reply, as one JSON
completion or, for `"stream": true`, as server-sent `chat.completion.chunk`
events ending with `data: [DONE]`. `mode` makes it fail: "error" answers
HTTP 500, "hang" accepts the request and sends nothing, and "stall" streams
`stall_after` chunks and then sends nothing more. Every request body is kept
in `requests`, with its Authorization header.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | Callable[[dict[str, Any]], str]


class FakeLLM:
    """Serve scripted chat completions until the context exits."""

    def __init__(self, reply: Reply = "", chunk_chars: int = 7) -> None:
        self.reply: Reply = reply
        self.mode = "ok"
        self.stall_after = 3
        self.chunk_chars = chunk_chars
        self.chunk_delay = 0.0  # seconds between two streamed chunks
        self.requests: list[dict[str, Any]] = []
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()  # lets hanging handlers return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def reset(self, reply: Reply = "", mode: str = "ok") -> None:
        self.reply = reply
        self.mode = mode
        self.chunk_delay = 0.0
        self.requests.clear()

    def reply_text(self, body: dict[str, Any]) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send_json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                body["_authorization"] = self.headers.get("Authorization")
                fake.requests.append(body)
                if self.path != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": "not found"}})
                    return
                if fake.mode == "error":
                    self._send_json(500, {"error": {"message": "scripted failure"}})
                    return
                if fake.mode == "hang":
                    fake._release.wait(60)
                    return
                text = fake.reply_text(body)
                if body.get("stream"):
                    self._stream(body, text)
                else:
                    self._send_json(200, _completion(body, text))

            def _stream(self, body: dict[str, Any], text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                size = fake.chunk_chars
                pieces = [text[i : i + size] for i in range(0, len(text), size)]
                for index, piece in enumerate(pieces):
                    if fake.mode == "stall" and index == fake.stall_after:
                        fake._release.wait(60)
                        return
                    chunk = _chunk(body, {"content": piece}, None)
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(fake.chunk_delay)
                final = _chunk(body, {}, "stop")
                self.wfile.write(f"data: {json.dumps(final)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(
    body: dict[str, Any], delta: dict[str, Any], finish_reason: str | None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
