"""What every ``/v1`` request passes before its endpoint reads a byte of it: the token, the
size of its body (read no further than the limit), and the deadline.

A plain ASGI middleware rather than FastAPI's ``@app.middleware``: at the deadline the client
gets its 504 at once and the endpoint is cancelled, so the work it waits for is abandoned (the
model thread drops it at its next batch) instead of being waited for.
"""

import asyncio
import hmac
import json

from starlette.exceptions import HTTPException

from c2s._logging import get_logger

log = get_logger("serve")


class BodyTooLarge(HTTPException):
    """Raised while a request body is read, once it is past the limit."""

    def __init__(self, size: int, limit: int):
        super().__init__(413, too_big(size, limit))


def too_big(size: int, limit: int) -> str:
    return (
        f"The request ({size / 1e6:.1f} MB) is over this server's limit of "
        f"{limit / 1e6:g} MB (c2s serve --max-upload-mb)."
    )


class Guard:
    def __init__(self, app, *, token: str | None, max_body: int, timeout: float):
        self.app, self.max_body, self.timeout = app, max_body, timeout
        self._expected = None if token is None else f"Bearer {token}".encode("latin-1")
        self._orphans: set[asyncio.Task] = set()  # timed-out endpoints, cancelled, finishing

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not route_path(scope).startswith("/v1/"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if self._expected is not None and not hmac.compare_digest(
            headers.get(b"authorization", b""), self._expected
        ):
            return await reply(
                send,
                401,
                "Missing or wrong API token: send the header 'Authorization: Bearer TOKEN'.",
                {"www-authenticate": "Bearer"},
            )
        length = headers.get(b"content-length", b"").strip()
        if length.isdigit() and int(length) > self.max_body:
            return await reply(send, 413, too_big(int(length), self.max_body))
        await self._in_time(scope, self._limited(receive), send)

    def _limited(self, receive):
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(seen, self.max_body)
            return message

        return limited

    async def _in_time(self, scope, receive, send):
        started = late = False

        async def send_in_time(message):
            nonlocal started
            if late:  # the client has its 504
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, send_in_time))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.timeout)
        except BaseException:
            task.cancel()
            raise
        if done or started:  # a download that began in time streams to its end
            return await task
        late = True
        task.cancel()  # the endpoint abandons what it waits for
        self._orphans.add(task)
        task.add_done_callback(self._forget)
        await reply(
            send,
            504,
            f"The request took longer than this server's limit of "
            f"{self.timeout:g} s (c2s serve --timeout). Send fewer cells per request.",
        )

    def _forget(self, task: asyncio.Task) -> None:
        self._orphans.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a timed-out request ended with %r", task.exception())


def route_path(scope) -> str:
    """The request's path inside this application (without the prefix it is mounted at)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def reply(send, status: int, detail: str, headers: dict | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
