"""The campaign demo: the whole service on loopback, driven through its HTTP API.

It starts the service (temp SQLite file, media server, reference agent)
with a loopback webhook receiver (verifying signatures) and a stand-in
OpenAI-compatible model (`testing/demo_llm.py`), creates a campaign over
HTTP (caller-ID overrides for +44 and +968, retries on busy / no answer /
decline, AMD with leave-message and LLM voicemail verification, a custom
tool `crm_hook` with an action on each of the six lifecycle events, a
post-analysis template), uploads a CSV whose rows are answered by corpus
recordings (machines with beeps, announcements, humans) or by busy /
no-answer / decline callees, waits until every attempt has ended, and
prints a table of contacts, the webhooks, transcripts and analyses.

    python -m mediaserver.campaign_demo [CORPUS] [--speed 8]
        [--provider simulated|twilio|telnyx]

`--provider twilio|telnyx` dials through that carrier's loopback fake with
the official SDK; its signed status callbacks reach the service's routes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mediaserver.agent.reference import ReferenceAgent
from mediaserver.campaign_demo_report import (
    AttemptLine,
    ContactResult,
    DemoReport,
    WebhookTally,
    collect,
    llm_labels,
    print_report,
    tally_webhooks,
)
from mediaserver.config import load_settings
from mediaserver.controller.events import EVENT_VARIABLES
from mediaserver.corpus import default_corpus_dir
from mediaserver.errors import ConfigError
from mediaserver.service_main import Service
from mediaserver.testing.demo_carriers import DemoCarrier, carrier_scripts
from mediaserver.testing.demo_llm import demo_rule
from mediaserver.testing.fake_openai import FakeOpenAI
from mediaserver.testing.webhook_receiver import WebhookReceiver

logger = logging.getLogger(__name__)

__all__ = [
    "AttemptLine",
    "ContactResult",
    "DemoReport",
    "WebhookTally",
    "run_campaign_demo",
]

TERMINAL = {
    "completed",
    "busy",
    "no_answer",
    "declined",
    "failed",
    "initiation_failed",
    "canceled",
}

# A machine that takes a message stays on the line up to this long (wall clock)
# after its greeting: the agent speaks at real time whatever the speed-up,
# and the call ends when it hangs up, so the margin costs nothing.
MESSAGE_HOLD_S = 10.0

# (number, name, behaviour): a recording path is relative to the corpus;
# a bare `;hold` becomes MESSAGE_HOLD_S in the callee's time.
CONTACTS: list[tuple[str, str, str]] = [
    (
        "+12025550111",
        "Avery",
        "answer:machine/asterisk_en_vm_unavailable_ext1234_beep.wav;hold",
    ),
    (
        "+447911123122",
        "Bea",
        "answer:machine/freeswitch_callie_vm_not_available_tone640.wav;hold",
    ),
    (
        "+96891234533",
        "Chadi",
        "answer:synth/synthetic_personal_greeting_3_beep1400.wav;hold",
    ),
    ("+12025550144", "Dana", "answer:machine/asterisk_en_all-circuits-busy-now.wav"),
    ("+12025550155", "Eli", "answer:machine/sit_ic_then_asterisk_en_ss-noservice.wav"),
    ("+12025550166", "Farah", "answer:human/pyannote_phone_hello_hello_exchange.wav"),
    ("+447911123177", "Gus", "answer:human/asterisk_en_hello_padded.wav"),
    ("+96891234588", "Hana", "answer:synth/synthetic_human_hi_who_is_this.wav"),
    ("+12025550199", "Ines", "busy;ring=1"),
    ("+447911123200", "Jon", "no_answer"),
    ("+96891234611", "Kai", "decline;ring=2"),
    ("+12025550222", "Lee", "dial_error"),
    ("+12025550233", "", "busy"),  # no customer_name: rejected at upload
]


HOOK_PROPS: dict[str, str] = {
    # tool input -> the seed variable that fills it (when the event has it)
    "call_id": "call_queue_id",
    "status": "call_queue_status",
    "recipient": "call_queue_recipient_number",
    "calling_number_id": "call_queue_calling_number_id",
    "customer": "call_queue_dynamic_variables",
    "initiation_error": "call_queue_initiation_error",
    "conversation_id": "conversation_id",
    "started_at": "conversation_start_time",
    "ended_at": "conversation_end_time",
    "end_type": "conversation_end_type",
    "transcript": "conversation_turns_simplified",
}


def hook_tool(url: str) -> dict[str, Any]:
    """The custom tool every lifecycle action calls: a POST to the receiver."""
    kinds = {name: {"type": "string"} for name in HOOK_PROPS}
    kinds["customer"] = {"type": "object"}
    kinds["event"] = {"type": "string"}
    return {
        "name": "crm_hook",
        "method": "POST",
        "url": url,
        "headers": {"X-Demo": "callwright"},
        "timeout_s": 5,
        "input_schema": {
            "type": "object",
            "properties": kinds,
            "required": ["event", "call_id", "recipient"],
        },
    }


def lifecycle_actions() -> list[dict[str, Any]]:
    """One action per lifecycle event, mapping each variable the event has."""
    actions = []
    for event, names in EVENT_VARIABLES.items():
        mapping: dict[str, Any] = {"event": {"const": event.value}}
        mapping.update({k: v for k, v in HOOK_PROPS.items() if v in names})
        actions.append({"event": event.value, "tool": "crm_hook", "mapping": mapping})
    return actions


POST_ANALYSIS: dict[str, Any] = {
    "name": "renewal_outcome",
    "instructions": "Say whether the customer was reached and who it was.",
    "summary": True,
    "tags": ["reached", "voicemail", "no_greeting"],
    "max_tags": 2,
    "fields": [
        {"name": "customer_name", "type": "string", "required": False},
        {"name": "left_message", "type": "boolean"},
        {"name": "end_type", "type": "string", "required": False},
    ],
}


def campaign_json(
    agent_url: str, hook_url: str = "", provider: str = "simulated"
) -> dict[str, Any]:
    """The demo campaign, as a client would send it."""
    campaign: dict[str, Any] = {
        "name": "Demo renewals",
        "provider": provider,
        "agent_url": agent_url,
        "opening_script": "Hello {customer_name}, this is Callwright calling.",
        "leave_message_script": "Sorry we missed you, {customer_name}. Call us back.",
        "caller_id": {
            "default": {"id": "us-main", "number": "+12025550100"},
            "overrides": [
                {
                    "prefix": "+44",
                    "number": {"id": "uk-local", "number": "+442079460000"},
                },
                {
                    "prefix": "+968",
                    "number": {"id": "om-local", "number": "+96824000000"},
                },
            ],
        },
        "retry": {
            "on_busy": True,
            "on_no_answer": True,
            "on_declined": True,
            "max_retries": 2,
            "delay_s": 1,
        },
        "amd": {
            "enabled": True,
            "initial_check_delay_ms": 2000,
            "stop_speaking": True,
            "final_action": "leave_message",
            "llm_verification": bool(hook_url),
        },
        "variables": [{"name": "customer_name", "type": "string", "required": True}],
        "metadata": [{"name": "sim_behavior", "type": "string"}],
        "calling_window": {"start": "00:00", "end": "24:00"},
        "ring_timeout_s": 8,
        "max_call_s": 60,
        "max_concurrent_calls": 20,
        "calls_per_second": 20,
    }
    if hook_url:
        campaign["tools"] = [hook_tool(hook_url)]
        campaign["actions"] = lifecycle_actions()
        campaign["post_analysis"] = POST_ANALYSIS
    return campaign


def _recording(behaviour: str) -> str:
    """The corpus path in `answer:<path>[;options]`, else empty."""
    kind, _, rest = behaviour.partition(":")
    return rest.partition(";")[0] if kind == "answer" else ""


def contacts_csv(corpus: Path, speed: float = 1.0) -> bytes:
    """The upload: recordings named by absolute path, so the callee finds them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone_number", "customer_name", "sim_behavior"])
    for number, name, behaviour in CONTACTS:
        kind, _, rest = behaviour.partition(":")
        if rest:
            path, _, options = rest.partition(";")
            # The simulated callee counts in stream time.
            options = options.replace("hold", f"hold={MESSAGE_HOLD_S * speed:g}")
            behaviour = f"{kind}:{corpus / path}" + (f";{options}" if options else "")
        writer.writerow([number, name, behaviour])
    return out.getvalue().encode()


async def _wait_until_done(
    client: httpx.AsyncClient, campaign_id: str, expected: int, timeout_s: float
) -> list[dict[str, Any]]:
    """Every attempt of the campaign once none is still queued or live."""
    deadline = time.monotonic() + timeout_s
    while True:
        calls: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = (
                await client.get(
                    "/calls",
                    params={"campaign_id": campaign_id, "limit": 500, "offset": offset},
                )
            ).json()
            calls.extend(page["items"])
            offset = page["next_offset"]
        contacts = {c["contact_id"] for c in calls}
        if len(contacts) >= expected and all(c["status"] in TERMINAL for c in calls):
            return calls
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"calls still running after {timeout_s:.0f} s: "
                + ", ".join(
                    sorted(c["status"] for c in calls if c["status"] not in TERMINAL)
                )
            )
        await asyncio.sleep(0.25)


async def run_campaign_demo(
    corpus_folder: Path | None = None,
    speed: float = 8.0,
    *,
    provider: str = "simulated",
    timeout_s: float = 120.0,
    out: Callable[[str], None] = print,
) -> DemoReport:
    """Run the demo campaign end to end and print what happened to each contact."""
    corpus = (corpus_folder or default_corpus_dir()).resolve()
    missing = [
        p for _, _, b in CONTACTS if (p := _recording(b)) and not (corpus / p).is_file()
    ]
    if missing:
        raise ConfigError(
            f"the demo needs corpus recordings under {corpus} (set CALLWRIGHT_CORPUS);"
            f" missing: {', '.join(missing)}"
        )
    started = time.monotonic()
    secret = secrets.token_urlsafe(24)
    api_key = secrets.token_urlsafe(24)
    hook_secret = secrets.token_urlsafe(24)

    with tempfile.TemporaryDirectory(prefix="callwright-demo-") as folder:
        async with (
            WebhookReceiver(secret=hook_secret.encode()) as receiver,
            FakeOpenAI(rule=demo_rule) as llm,
            ReferenceAgent(secret) as agent,
            DemoCarrier(
                provider,
                carrier_scripts(CONTACTS, corpus, speed, MESSAGE_HOLD_S),
                speed,
            ) as carrier,
        ):
            env = {
                "CALLWRIGHT_SERVER_PORT": "0",
                "CALLWRIGHT_MEDIA_PORT": "0",
                "CALLWRIGHT_MEDIA_SECRET": secret,
                "CALLWRIGHT_API_KEYS": api_key,
                "CALLWRIGHT_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/demo.sqlite3",
                "CALLWRIGHT_WEBHOOK_SECRET": hook_secret,
                "CALLWRIGHT_LLM_BASE_URL": llm.base_url,
                "CALLWRIGHT_LLM_API_KEY": "demo-llm-key",
                **carrier.env,
            }
            settings = load_settings(None, env=env)
            service = Service(settings, speed=speed, dispatch_poll_s=0.2)
            await service.start()
            try:
                report = await _drive(
                    service.api_url,
                    api_key,
                    agent,
                    corpus,
                    timeout_s,
                    campaign_json(agent.url, f"{receiver.url}/hooks", provider),
                    speed,
                )
                await _settle_webhooks(receiver, report)
            finally:
                await service.stop()
            report.provider = provider
            report.webhooks, report.example_payload = tally_webhooks(
                receiver.deliveries, report.contacts
            )
            report.llm_labels = llm_labels(llm.requests)
            report.callbacks_accepted, report.callbacks_sent = carrier.callbacks()
    report.seconds = time.monotonic() - started
    print_report(report, out)
    return report


async def _settle_webhooks(receiver: WebhookReceiver, report: DemoReport) -> None:
    """Wait (briefly) until every fired event's delivery has arrived."""
    fired = sum(len(a.events) for c in report.contacts for a in c.attempts)
    try:
        await receiver.wait_for(fired, timeout_s=15.0)
    except TimeoutError:
        logger.warning(
            "only %d of %d webhooks arrived", len(receiver.deliveries), fired
        )


async def _drive(
    base_url: str,
    api_key: str,
    agent: ReferenceAgent,
    corpus: Path,
    timeout_s: float,
    campaign: dict[str, Any],
    speed: float,
) -> DemoReport:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30
    ) as client:
        created = await client.post("/campaigns", json=campaign)
        if created.status_code != 201:
            raise ConfigError(f"the demo campaign was refused: {created.text}")
        campaign_id = created.json()["id"]

        uploaded = await client.post(
            f"/campaigns/{campaign_id}/calls/csv",
            content=contacts_csv(corpus, speed),
            headers={"Content-Type": "text/csv"},
        )
        uploaded.raise_for_status()
        upload = uploaded.json()

        calls = await _wait_until_done(
            client, campaign_id, upload["accepted"], timeout_s
        )
        order = [number for number, _, _ in CONTACTS]
        contacts = await collect(client, calls, agent, order)
    return DemoReport(
        campaign_id=campaign_id,
        accepted=upload["accepted"],
        rejected=upload["rejected"],
        contacts=contacts,
        seconds=0.0,
    )


def main() -> None:
    from mediaserver.logs import configure

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, nargs="?", default=None)
    parser.add_argument("--corpus", dest="corpus_opt", type=Path, default=None)
    parser.add_argument("--speed", type=float, default=8.0, help="playback speed-up")
    parser.add_argument(
        "--provider", choices=["simulated", "twilio", "telnyx"], default="simulated"
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    configure(args.log_level)
    demo = run_campaign_demo(
        args.corpus or args.corpus_opt, args.speed, provider=args.provider
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(demo)
    else:
        uvloop.run(demo)


if __name__ == "__main__":
    main()
