"""HTTP offer/answer for WebRTC calls, as a Litestar router or its own server.

    POST /webrtc/offer      {"sdp", "type": "offer", "token"} -> {"sdp", "type"}
    POST /webrtc/candidate  {"token", "candidate", "sdpMid", "sdpMLineIndex"}
    POST /webrtc/bye        {"token"}

The per-call media token is checked before anything else: missing,
tampered or expired gets 403 and no peer connection is created. Our answer
already carries all our candidates (aiortc does not trickle), so the
candidate route only takes the peer's. `webrtc_router` mounts in any
Litestar app (the HTTP API); `SignalingServer` serves it alone.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, Router, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
)

from mediaserver.api.server import ApiServer
from mediaserver.errors import TokenError
from mediaserver.transports.webrtc import OfferError, WebRtcTransport
from signaling.messages import (
    AnswerBody,
    ByeBody,
    CandidateBody,
    OfferBody,
    SignalingErrorBody,
)

Transport = NamedDependency[WebRtcTransport]

_STATUS = {
    "bad_offer": HTTP_400_BAD_REQUEST,
    "unknown_call": HTTP_404_NOT_FOUND,
    "busy": HTTP_409_CONFLICT,
}


@post("/offer", status_code=200, summary="Answer a WebRTC offer for one call")
async def offer(data: JSONBody[OfferBody], transport: Transport) -> AnswerBody:
    sdp = await transport.answer(data.sdp, data.type, data.token)
    return AnswerBody(sdp=sdp)


@post("/candidate", status_code=204, summary="Add the peer's trickled candidate")
async def candidate(data: JSONBody[CandidateBody], transport: Transport) -> None:
    await transport.add_candidate(
        data.token, data.candidate, data.sdpMid, data.sdpMLineIndex
    )


@post("/bye", status_code=204, summary="The peer hangs up")
async def bye(data: JSONBody[ByeBody], transport: Transport) -> None:
    await transport.hang_up(data.token)


def _refused(status: int, message: str) -> Response[SignalingErrorBody]:
    return Response(
        SignalingErrorBody(error=message, status_code=status), status_code=status
    )


def _on_token(_: Request[Any, Any, Any], exc: TokenError) -> Response[Any]:
    return _refused(HTTP_403_FORBIDDEN, str(exc))


def _on_offer(_: Request[Any, Any, Any], exc: OfferError) -> Response[Any]:
    return _refused(_STATUS.get(exc.kind, HTTP_400_BAD_REQUEST), str(exc))


def webrtc_router(transport: WebRtcTransport, path: str = "/webrtc") -> Router:
    """The signaling routes, bound to one transport."""

    def provide() -> WebRtcTransport:
        return transport

    return Router(
        path=path,
        route_handlers=[offer, candidate, bye],
        dependencies={"transport": Provide(provide, sync_to_thread=False)},
        exception_handlers={TokenError: _on_token, OfferError: _on_offer},
        tags=["webrtc"],
    )


class SignalingServer:
    """The signaling routes on their own listener; stopping ends every call."""

    def __init__(
        self, transport: WebRtcTransport, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.transport = transport
        app = Litestar(route_handlers=[webrtc_router(transport)], openapi_config=None)
        self._http = ApiServer(app, host, port)

    @property
    def url(self) -> str:
        return f"{self._http.url}/webrtc"

    async def start(self) -> None:
        await self._http.start()

    async def stop(self) -> None:
        await self.transport.close()
        await self._http.stop()

    async def __aenter__(self) -> SignalingServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
