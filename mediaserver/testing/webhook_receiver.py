"""A webhook receiver on loopback that records deliveries and misbehaves on cue.

Script its answers with `script(Reply(status=503), Reply(delay_s=5), ...)`;
once the script runs out it answers `default`. `Reply(drop=True)` closes
the connection without answering. Every request that arrived is kept in
`deliveries`, the misbehaved ones included, with its verdict on the
signature when the receiver knows the secret.
"""

from __future__ import annotations

import asyncio
from collections import deque

import msgspec

from mediaserver.controller.delivery import verify_signature
from mediaserver.testing.loopback_http import LoopbackFake, Request, Response


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    status: int = 200
    delay_s: float = 0.0  # answer this late (beyond the sender's timeout: slow)
    drop: bool = False  # close the connection without answering
    retry_after: int | None = None  # seconds, sent as a Retry-After header


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    request: Request
    reply: Reply
    signature_ok: bool | None  # None when the receiver has no secret

    @property
    def webhook_id(self) -> str:
        return self.request.headers.get("callwright-webhook-id", "")

    @property
    def event(self) -> str:
        return self.request.headers.get("callwright-event", "")


class WebhookReceiver(LoopbackFake):
    """Records every request to any path; answers by its script."""

    def __init__(
        self, *, secret: bytes | None = None, default: Reply | None = None
    ) -> None:
        super().__init__(self._handle)
        self.deliveries: list[Delivery] = []
        self.default = default or Reply()
        self._secret = secret
        self._script: deque[Reply] = deque()
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return self._server.url

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def accepted(self) -> list[Delivery]:
        """The deliveries answered with a 2xx (late answers included)."""
        return [
            d
            for d in self.deliveries
            if not d.reply.drop and 200 <= d.reply.status < 300
        ]

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Delivery]:
        """Wait until `count` requests have arrived; returns them all."""
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.deliveries) >= count)
        return list(self.deliveries)

    async def _handle(self, request: Request) -> Response | None:
        reply = self._script.popleft() if self._script else self.default
        ok = None
        if self._secret is not None:
            ok = verify_signature(self._secret, request.headers, request.body)
        async with self._arrived:
            self.deliveries.append(
                Delivery(request=request, reply=reply, signature_ok=ok)
            )
            self._arrived.notify_all()

        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.drop:
            return None
        headers = {}
        if reply.retry_after is not None:
            headers["Retry-After"] = str(reply.retry_after)
        return Response(status=reply.status, body=b'{"ok": true}', headers=headers)
