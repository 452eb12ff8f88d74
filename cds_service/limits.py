"""Guards in front of the app: headers of bounded size, JSON bodies only, and no larger
than configured.

Done as plain ASGI middleware so that oversized or non-JSON requests are refused before
any parsing: with 431, 413 (limit named) and 415, in the same JSON error shape as every 4xx.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Total size of the request headers: a CDS client sends a JWT of about 1 KB and a few
# short headers; the servers in front of us commonly stop at 8-16 KB as well.
MAX_HEADER_BYTES = 16_384


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def _send_error(send: Send, status: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message, "details": []}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
            await _send_error(
                send,
                431,
                "request_header_fields_too_large",
                f"the request headers exceed {MAX_HEADER_BYTES} bytes",
            )
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not _is_json(headers.get(b"content-type", b"").decode("latin-1")):
            await _send_error(
                send, 415, "unsupported_media_type", "send the body as application/json"
            )
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_error(
                send, 413, "payload_too_large", f"the body exceeds {self.max_body_bytes} bytes"
            )
            return
        # Read the body here, counting, so that a chunked body cannot exceed the limit either.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_error(
                    send, 413, "payload_too_large", f"the body exceeds {self.max_body_bytes} bytes"
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
