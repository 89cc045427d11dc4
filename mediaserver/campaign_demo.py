"""The campaign demo: the whole service on loopback, driven through its HTTP API.

It starts the service (temp SQLite file, simulated carrier, media server,
reference agent), creates a campaign over HTTP (caller-ID overrides for +44
and +968, retries on busy / no answer / decline, AMD with leave-message),
uploads a CSV whose rows are answered by corpus recordings (machines with
beeps, announcements, humans) or by busy / no-answer / decline callees,
waits until every attempt has ended, and prints each contact's attempts.

    python -m mediaserver.campaign_demo [--corpus DIR] [--speed 8]
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
import msgspec

from mediaserver.agent.reference import ReferenceAgent
from mediaserver.config import load_settings
from mediaserver.corpus import default_corpus_dir
from mediaserver.errors import ConfigError
from mediaserver.service_main import Service

logger = logging.getLogger(__name__)

TERMINAL = {
    "completed",
    "busy",
    "no_answer",
    "declined",
    "failed",
    "initiation_failed",
    "canceled",
}

# (number, name, behaviour): a recording path is relative to the corpus.
CONTACTS: list[tuple[str, str, str]] = [
    (
        "+12025550111",
        "Avery",
        "answer:machine/asterisk_en_vm_unavailable_ext1234_beep.wav",
    ),
    (
        "+447911123122",
        "Bea",
        "answer:machine/freeswitch_callie_vm_not_available_tone640.wav",
    ),
    (
        "+96891234533",
        "Chadi",
        "answer:synth/synthetic_personal_greeting_3_beep1400.wav",
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


class AttemptLine(msgspec.Struct, kw_only=True):
    attempt: int
    status: str
    verdict: str | None
    end_type: str | None
    initiation_error: str | None
    events: list[str] = []  # lifecycle events, in order (seed names)


class ContactResult(msgspec.Struct, kw_only=True):
    row: int | None
    number: str
    behaviour: str
    caller_number: str
    attempts: list[AttemptLine]
    left_message: bool = False


class DemoReport(msgspec.Struct, kw_only=True):
    campaign_id: str
    accepted: int
    rejected: list[dict[str, Any]]
    contacts: list[ContactResult]
    seconds: float


def campaign_json(agent_url: str) -> dict[str, Any]:
    """The demo campaign, as a client would send it."""
    return {
        "name": "Demo renewals",
        "provider": "simulated",
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
        },
        "variables": [{"name": "customer_name", "type": "string", "required": True}],
        "metadata": [{"name": "sim_behavior", "type": "string"}],
        "calling_window": {"start": "00:00", "end": "24:00"},
        "ring_timeout_s": 8,
        "max_call_s": 60,
        "max_concurrent_calls": 20,
        "calls_per_second": 20,
    }


def _recording(behaviour: str) -> str:
    """The corpus path in `answer:<path>[;options]`, else empty."""
    kind, _, rest = behaviour.partition(":")
    return rest.partition(";")[0] if kind == "answer" else ""


def contacts_csv(corpus: Path) -> bytes:
    """The upload: recordings named by absolute path, so the callee finds them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["phone_number", "customer_name", "sim_behavior"])
    for number, name, behaviour in CONTACTS:
        kind, _, rest = behaviour.partition(":")
        if rest:
            path, _, options = rest.partition(";")
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


async def _events(client: httpx.AsyncClient, calls: list[dict[str, Any]]) -> None:
    """Attach each attempt's lifecycle events, as the actions API lists them."""
    for call in calls:
        response = await client.get(f"/events/{call['id']}")
        found = response.json() if response.status_code == 200 else []
        call["events"] = [str(event["event"]) for event in found]


def _results(calls: list[dict[str, Any]], agent: ReferenceAgent) -> list[ContactResult]:
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_contact.setdefault(call["contact_id"], []).append(call)

    results = []
    for attempts in by_contact.values():
        attempts.sort(key=lambda c: c["attempt_number"])
        first = attempts[0]
        behaviour = str(first["metadata"].get("sim_behavior", ""))
        left = any(
            agent.sessions[c["id"]].left_message
            for c in attempts
            if c["id"] in agent.sessions
        )
        results.append(
            ContactResult(
                row=None,
                number=first["recipient_number"],
                behaviour=behaviour.split("/")[-1],
                caller_number=first["calling_number"],
                attempts=[
                    AttemptLine(
                        attempt=c["attempt_number"],
                        status=c["status"],
                        verdict=c["verdict"],
                        end_type=c["end_type"],
                        initiation_error=c["initiation_error"],
                        events=c.get("events", []),
                    )
                    for c in attempts
                ],
                left_message=left,
            )
        )
    order = {number: index for index, (number, _, _) in enumerate(CONTACTS)}
    results.sort(key=lambda r: order.get(r.number, len(order)))
    return results


async def run_campaign_demo(
    corpus_folder: Path | None = None,
    speed: float = 8.0,
    *,
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

    with tempfile.TemporaryDirectory(prefix="callwright-demo-") as folder:
        env = {
            "CALLWRIGHT_SERVER_PORT": "0",
            "CALLWRIGHT_MEDIA_PORT": "0",
            "CALLWRIGHT_MEDIA_SECRET": secret,
            "CALLWRIGHT_API_KEYS": api_key,
            "CALLWRIGHT_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/demo.sqlite3",
        }
        settings = load_settings(None, env=env)
        async with ReferenceAgent(secret) as agent:
            service = Service(settings, speed=speed, dispatch_poll_s=0.2)
            await service.start()
            try:
                report = await _drive(
                    service.api_url, api_key, agent, corpus, timeout_s
                )
            finally:
                await service.stop()
    report.seconds = time.monotonic() - started
    _print(report, out)
    return report


async def _drive(
    base_url: str, api_key: str, agent: ReferenceAgent, corpus: Path, timeout_s: float
) -> DemoReport:
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30
    ) as client:
        created = await client.post("/campaigns", json=campaign_json(agent.url))
        created.raise_for_status()
        campaign_id = created.json()["id"]

        uploaded = await client.post(
            f"/campaigns/{campaign_id}/calls/csv",
            content=contacts_csv(corpus),
            headers={"Content-Type": "text/csv"},
        )
        uploaded.raise_for_status()
        upload = uploaded.json()

        calls = await _wait_until_done(
            client, campaign_id, upload["accepted"], timeout_s
        )
        # call_ended waits for the media plane's record, which may trail the
        # carrier's final status by a moment.
        for _ in range(50):
            await _events(client, calls)
            completed = [c for c in calls if c["status"] == "completed"]
            if all("call_ended" in c["events"] for c in completed):
                break
            await asyncio.sleep(0.1)
    return DemoReport(
        campaign_id=campaign_id,
        accepted=upload["accepted"],
        rejected=upload["rejected"],
        contacts=_results(calls, agent),
        seconds=0.0,
    )


def _print(report: DemoReport, out: Callable[[str], None]) -> None:
    out(f"campaign {report.campaign_id}: {report.accepted} contacts queued from CSV")
    for rejected in report.rejected:
        out(f"  CSV row {rejected['row']} rejected: {rejected['reason']}")
    out("")
    header = f"{'contact':<15} {'callee':<46} {'caller ID':<14} attempts -> outcome"
    out(header)
    out("-" * len(header))
    for contact in report.contacts:
        steps = []
        for line in contact.attempts:
            step = line.status
            if line.verdict:
                step += f"/{line.verdict}"
            if line.end_type:
                step += f" ({line.end_type})"
            steps.append(step)
        tail = " +message" if contact.left_message else ""
        out(
            f"{contact.number:<15} {contact.behaviour[:46]:<46} "
            f"{contact.caller_number:<14} {len(contact.attempts)}: "
            + " -> ".join(steps)
            + tail
        )
        events = contact.attempts[-1].events
        out(f"{'':<15} events of the last attempt: {', '.join(events) or 'none'}")
    out("")
    out(f"all attempts ended in {report.seconds:.1f} s")


def main() -> None:
    from mediaserver.logs import configure

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--speed", type=float, default=8.0, help="playback speed-up")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    configure(args.log_level)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run_campaign_demo(args.corpus, args.speed))
    else:
        uvloop.run(run_campaign_demo(args.corpus, args.speed))


if __name__ == "__main__":
    main()
