"""Signaling refusals: bad tokens, bad offers, busy calls, trickle, no media."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
import pytest_asyncio

from mediaserver import tokens
from mediaserver.ids import new_id
from mediaserver.media_amd import AmdEngine
from mediaserver.transports.counters import PROCESS
from tests.webrtc.conftest import SECRET, Rig, make_rig, media_token, settings
from tests.webrtc.peer import TestPeer

HUMAN_LIKE = np.zeros(8000, np.int16)


def tampered(token: str) -> str:
    call_id, expiry, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    return f"{call_id}.{expiry}.{flipped}"


async def offer_sdp() -> str:
    peer = TestPeer(HUMAN_LIKE)
    try:
        offer = await peer.pc.createOffer()
        await peer.pc.setLocalDescription(offer)
        return str(peer.pc.localDescription.sdp)
    finally:
        await peer.hang_up()


TOKENS: list[tuple[Callable[[str], str | None], str]] = [
    (lambda call_id: None, "missing"),
    (lambda call_id: "not-a-token", "malformed"),
    (lambda call_id: tampered(media_token(call_id)), "signature"),
    (lambda call_id: media_token(call_id, ttl_s=-5), "expired"),
    (lambda call_id: tokens.issue(SECRET.encode(), call_id, purpose="agent"), "sig"),
    (lambda call_id: tokens.issue(b"another secret", call_id), "signature"),
]


@pytest.mark.parametrize(
    ("make_token", "reason"),
    TOKENS,
    ids=["absent", "malformed", "tampered", "expired", "agent-token", "other-key"],
)
async def test_offer_without_a_valid_token_is_403_and_makes_no_connection(
    rig: Rig, make_token: Callable[[str], str | None], reason: str
) -> None:
    plan, _ = rig.plan()
    body: dict[str, object] = {"sdp": await offer_sdp(), "type": "offer"}
    token = make_token(plan.call_id)
    if token is not None:
        body["token"] = token
    created = PROCESS["webrtc_peer_connections"]

    response = await rig.http.post(f"{rig.url}/offer", json=body)

    assert response.status_code == 403
    assert reason in response.json()["error"]
    assert PROCESS["webrtc_peer_connections"] == created
    assert rig.transport.calls == {}
    assert rig.agent.sessions == {}
    assert rig.outcomes.answered == {}


async def test_candidate_and_bye_need_a_valid_token_too(rig: Rig) -> None:
    _, token = rig.plan()
    bad = tampered(token)
    candidate = {"token": bad, "candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}
    assert (
        await rig.http.post(f"{rig.url}/candidate", json=candidate)
    ).status_code == 403
    assert (await rig.http.post(f"{rig.url}/bye", json={})).status_code == 403


async def test_unknown_call_is_404(rig: Rig) -> None:
    body = {"sdp": await offer_sdp(), "type": "offer", "token": media_token(new_id())}
    response = await rig.http.post(f"{rig.url}/offer", json=body)
    assert response.status_code == 404
    assert rig.transport.calls == {}


@pytest.mark.parametrize(
    ("sdp", "kind"),
    [
        ("v=0\r\n", "offer"),  # parses, but has no audio
        ("not sdp at all", "offer"),
        (None, "answer"),  # a real offer labelled as an answer
    ],
    ids=["no-audio", "garbage", "wrong-type"],
)
async def test_bad_offer_is_400_and_leaves_no_call(
    rig: Rig, sdp: str | None, kind: str
) -> None:
    _, token = rig.plan()
    body = {"sdp": sdp or await offer_sdp(), "type": kind, "token": token}
    response = await rig.http.post(f"{rig.url}/offer", json=body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert rig.transport.calls == {}
    assert rig.outcomes.answered == {}


async def test_malformed_body_is_400(rig: Rig) -> None:
    response = await rig.http.post(
        f"{rig.url}/offer",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    response = await rig.http.post(f"{rig.url}/offer", json={"type": "offer"})
    assert response.status_code == 400  # no sdp


async def test_second_offer_for_a_live_call_is_409_and_trickle_works(
    rig: Rig,
) -> None:
    plan, token = rig.plan()
    first = TestPeer(HUMAN_LIKE)
    second = TestPeer(HUMAN_LIKE)
    try:
        assert (await first.offer(rig.http, rig.url, token)).status_code == 200
        busy = await second.offer(rig.http, rig.url, token)
        assert busy.status_code == 409

        # The browser trickles its candidates after the offer; ours are all
        # in the answer already.
        host = next(
            line[2:]
            for line in first.pc.localDescription.sdp.splitlines()
            if line.startswith("a=candidate:")
        )
        url = f"{rig.url}/candidate"
        trickle = {"token": token, "candidate": host, "sdpMid": "0", "sdpMLineIndex": 0}
        assert (await rig.http.post(url, json=trickle)).status_code == 204
        done = {"token": token, "candidate": None}
        assert (await rig.http.post(url, json=done)).status_code == 204
        broken = {"token": token, "candidate": "candidate:x", "sdpMid": "0"}
        assert (await rig.http.post(url, json=broken)).status_code == 400
        await asyncio.wait_for(first.connected.wait(), 10)  # see the video test
    finally:
        await first.hang_up()
        await second.hang_up()
    # The first peer's hang-up closes our side too.
    await asyncio.wait_for(rig.transport.wait_closed(plan.call_id), 10)
    assert rig.transport.calls == {}


def dropped_before_media() -> int:
    # Its ICE checks fail (the peer is gone) or the media timeout fires first.
    return PROCESS["webrtc_media_timeouts"] + PROCESS["webrtc_closed_before_media"]


@pytest_asyncio.fixture
async def impatient_rig(amd_engine: AmdEngine) -> AsyncIterator[Rig]:
    async for r in make_rig(amd_engine, settings(media_timeout_s=0.5)):
        yield r


async def test_peer_that_never_connects_is_dropped_without_a_call(
    impatient_rig: Rig,
) -> None:
    rig = impatient_rig
    plan, token = rig.plan()
    dropped = dropped_before_media()
    body = {"sdp": await offer_sdp(), "type": "offer", "token": token}
    response = await rig.http.post(f"{rig.url}/offer", json=body)
    assert response.status_code == 200  # answered, but the peer never applies it

    await asyncio.wait_for(rig.transport.wait_closed(plan.call_id), 10)
    assert rig.transport.calls == {}
    assert dropped_before_media() == dropped + 1
    assert rig.outcomes.answered == {}
    assert rig.agent.sessions == {}


async def test_video_and_extra_audio_in_an_offer_are_answered_inactive(
    rig: Rig,
) -> None:
    plan, token = rig.plan()
    peer = TestPeer(HUMAN_LIKE)
    peer.pc.addTransceiver("video")
    peer.pc.addTransceiver("audio")
    try:
        response = await peer.offer(rig.http, rig.url, token)
        assert response.status_code == 200, response.text
        sections = response.json()["sdp"].split("\r\nm=")[1:]
        kinds = [(s.split()[0], _direction(s)) for s in sections]
        assert kinds == [
            ("audio", "sendrecv"),
            ("video", "inactive"),
            ("audio", "inactive"),
        ]
        # Hanging up mid-handshake would race aioice, which can then start a
        # consent timer after its close (a stray task for 30 s).
        await asyncio.wait_for(peer.connected.wait(), 10)
        bye = await rig.http.post(f"{rig.url}/bye", json={"token": token})
        assert bye.status_code == 204
    finally:
        await peer.hang_up()
    await asyncio.wait_for(rig.transport.wait_closed(plan.call_id), 10)


def _direction(section: str) -> str:
    names = ("sendrecv", "sendonly", "recvonly", "inactive")
    return next(line[2:] for line in section.split("\r\n") if line[2:] in names)
