"""The reference agent says its scripts with the call's variables filled in."""

from __future__ import annotations

from websockets.asyncio.client import connect

from mediaserver import tokens
from mediaserver.agent import protocol as ap
from mediaserver.agent.reference import ReferenceAgent

SECRET = "reference-agent-test-secret"


async def test_opening_script_placeholders_come_from_variables() -> None:
    token = tokens.issue(SECRET.encode(), "call-7", purpose="agent")
    start = ap.SessionStart(
        token=token,
        call_id="call-7",
        campaign_id="camp-1",
        conversation_id="conv-1",
        stream_id="MZ1",
        carrier="twilio",
        media_format=ap.MediaFormat(encoding="pcmu"),
        opening_script="Hello {customer_name}, about order {{ order }} and {unknown}.",
        variables={"customer_name": "Ada", "order": 42},
    )
    async with ReferenceAgent(SECRET) as agent:
        headers = {"Authorization": f"Bearer {token}"}
        async with connect(agent.url, additional_headers=headers) as ws:
            await ws.send(ap.encode(start), text=True)
            turn = None
            async for message in ws:
                if isinstance(message, str):
                    event = ap.decode_from_agent(message)
                    if isinstance(event, ap.AgentTurn):
                        turn = event
                        break
            await ws.send(ap.encode(ap.SessionEnd(end_type="agent_hangup")), text=True)

    assert turn is not None
    assert turn.text == "Hello Ada, about order 42 and {unknown}."
