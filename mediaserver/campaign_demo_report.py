"""What the campaign demo found, read back through the API, and how it prints.

After every attempt has ended, `collect` reads each attempt's lifecycle
events (`/events/{call}`), its conversation record (end type, transcript,
verdict source) and its post-call analysis (`/analyses/{call}`), waiting a
little for those that trail the carrier's final status. `tally_webhooks`
counts what the loopback receiver got per event type and how many
signatures it verified. `print_report` prints one table of contacts, then
the events, transcripts and analyses; phone numbers are masked.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import msgspec

from mediaserver.agent.reference import ReferenceAgent
from mediaserver.controller.events import LifecycleEvent
from mediaserver.logs import mask_number, mask_text
from mediaserver.testing.fake_openai import ChatRequest
from mediaserver.testing.webhook_receiver import Delivery

ANALYSIS_DONE = ("done", "failed")
_E164 = re.compile(r"^\+[1-9]\d{5,14}$")


class AttemptLine(msgspec.Struct, kw_only=True):
    call_id: str
    attempt: int
    status: str
    verdict: str | None
    end_type: str | None
    initiation_error: str | None
    events: list[str] = []  # lifecycle events, in order (seed names)
    verdict_source: str | None = None  # acoustic, llm or fused
    conversation_end_type: str | None = None  # as the call_ended event says


class ContactResult(msgspec.Struct, kw_only=True):
    row: int | None
    number: str
    behaviour: str
    caller_number: str
    attempts: list[AttemptLine]
    left_message: bool = False
    transcript: str = ""  # conversation_turns_simplified of the answered attempt
    analysis: dict[str, Any] | None = None  # summary, tags, fields


class WebhookTally(msgspec.Struct, kw_only=True):
    event: str
    fired: int = 0
    delivered: int = 0  # answered 2xx by the receiver
    verified: int = 0  # signature checked by the receiver


class DemoReport(msgspec.Struct, kw_only=True):
    campaign_id: str
    accepted: int
    rejected: list[dict[str, Any]]
    contacts: list[ContactResult]
    seconds: float
    provider: str = "simulated"
    webhooks: list[WebhookTally] = []
    example_payload: dict[str, Any] | None = None
    llm_labels: dict[str, int] = {}  # verification answers by label
    callbacks_accepted: int = 0  # signed carrier callbacks our routes took
    callbacks_sent: int = 0


async def collect(
    client: httpx.AsyncClient,
    calls: list[dict[str, Any]],
    agent: ReferenceAgent,
    order: Sequence[str],
    *,
    timeout_s: float = 20.0,
) -> list[ContactResult]:
    """Each contact's attempts with events, conversation and analysis."""
    deadline = time.monotonic() + timeout_s
    lines = {call["id"]: _line(call) for call in calls}
    answered: dict[str, dict[str, Any]] = {}
    while True:
        for call in calls:
            line = lines[call["id"]]
            if line.status != "completed" and line.events:
                continue  # an unanswered attempt's events are all there
            found = (await client.get(f"/events/{call['id']}")).json()
            line.events = [str(event["event"]) for event in found]
            for event in found:
                if event["event"] == LifecycleEvent.CALL_ENDED.value:
                    answered[call["id"]] = event["variables"]
        completed = [c["id"] for c in calls if c["status"] == "completed"]
        if set(completed) <= set(answered) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)

    analyses = await _analyses(client, list(answered), deadline)
    for call_id, variables in answered.items():
        line = lines[call_id]
        line.conversation_end_type = variables.get("conversation_end_type")
        # Re-read: the media outcome may have landed after the carrier's
        # final status, which is when the attempt list was read.
        line.end_type = (await client.get(f"/calls/{call_id}")).json()["end_type"]
        conversation_id = variables.get("conversation_id")
        if conversation_id:
            found = await client.get(f"/conversations/{conversation_id}")
            verdict = found.json().get("verdict") if found.status_code == 200 else None
            line.verdict_source = (verdict or {}).get("source")
    return _contacts(calls, lines, answered, analyses, agent, order)


def _line(call: dict[str, Any]) -> AttemptLine:
    return AttemptLine(
        call_id=call["id"],
        attempt=call["attempt_number"],
        status=call["status"],
        verdict=call["verdict"],
        end_type=call["end_type"],
        initiation_error=call["initiation_error"],
    )


async def _analyses(
    client: httpx.AsyncClient, call_ids: list[str], deadline: float
) -> dict[str, dict[str, Any]]:
    """Each answered call's analysis once it is done or has failed."""
    found: dict[str, dict[str, Any]] = {}
    while True:
        for call_id in call_ids:
            if call_id in found:
                continue
            response = await client.get(f"/analyses/{call_id}")
            if response.status_code == 200:
                body = response.json()
                if body["status"] in ANALYSIS_DONE:
                    found[call_id] = body
        if len(found) == len(call_ids) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


def _contacts(
    calls: list[dict[str, Any]],
    lines: dict[str, AttemptLine],
    answered: dict[str, dict[str, Any]],
    analyses: dict[str, dict[str, Any]],
    agent: ReferenceAgent,
    order: Sequence[str],
) -> list[ContactResult]:
    by_contact: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_contact.setdefault(call["contact_id"], []).append(call)

    results = []
    for attempts in by_contact.values():
        attempts.sort(key=lambda c: c["attempt_number"])
        first, last = attempts[0], attempts[-1]
        behaviour = str(first["metadata"].get("sim_behavior", ""))
        found = agent.sessions
        sessions = [found[c["id"]] for c in attempts if c["id"] in found]
        analysis = analyses.get(last["id"])
        results.append(
            ContactResult(
                row=None,
                number=first["recipient_number"],
                behaviour=behaviour.split("/")[-1].split(";")[0],
                caller_number=first["calling_number"],
                attempts=[lines[c["id"]] for c in attempts],
                left_message=any(s.left_message for s in sessions),
                transcript=str(
                    answered.get(last["id"], {}).get("conversation_turns_simplified")
                    or ""
                ),
                analysis=_analysis_text(analysis),
            )
        )
    rank = {number: index for index, number in enumerate(order)}
    results.sort(key=lambda r: rank.get(r.number, len(rank)))
    return results


def _analysis_text(found: dict[str, Any] | None) -> dict[str, Any] | None:
    if found is None:
        return None
    if found["status"] != "done":
        return {"error": found.get("last_error") or found["status"]}
    return dict(found.get("result") or {})


def tally_webhooks(
    deliveries: Sequence[Delivery], contacts: Sequence[ContactResult]
) -> tuple[list[WebhookTally], dict[str, Any] | None]:
    """Per event type: fired, delivered (2xx), verified; and one payload."""
    tallies = {event.value: WebhookTally(event=event.value) for event in LifecycleEvent}
    for contact in contacts:
        for attempt in contact.attempts:
            for event in attempt.events:
                tallies[event].fired += 1
    example: dict[str, Any] | None = None
    for delivery in deliveries:
        tally = tallies.get(delivery.event)
        if tally is None:
            continue
        if 200 <= delivery.reply.status < 300 and not delivery.reply.drop:
            tally.delivered += 1
        if delivery.signature_ok:
            tally.verified += 1
        if delivery.event == LifecycleEvent.CALL_ENDED.value and example is None:
            example = msgspec.json.decode(delivery.request.body)
    return list(tallies.values()), example


def llm_labels(requests: Sequence[ChatRequest]) -> dict[str, int]:
    """The verification answers the stand-in model gave, by label."""
    labels: dict[str, int] = {}
    for request in requests:
        if request.audio_sha256 is None:
            continue
        try:
            label = str(msgspec.json.decode(request.answer.content)["label"])
        except (msgspec.DecodeError, KeyError, TypeError):
            label = "invalid"
        labels[label] = labels.get(label, 0) + 1
    return labels


def masked(value: Any, *, personal: bool = False) -> Any:
    """A payload with phone numbers and the contact's own values masked."""
    if isinstance(value, dict):
        return {
            k: masked(v, personal=personal or k == "customer") for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v, personal=personal) for v in value]
    if isinstance(value, str) and _E164.match(value):
        return mask_number(value)
    if isinstance(value, str) and personal:
        return value[:1] + "•" * (len(value) - 1)
    return value


def print_report(report: DemoReport, out: Callable[[str], None]) -> None:
    out(
        f"campaign {report.campaign_id} over {report.provider}: "
        f"{report.accepted} contacts queued from CSV"
    )
    for rejected in report.rejected:
        out(f"  CSV row {rejected['row']} rejected: {rejected['reason']}")
    out("")
    _print_table(report.contacts, out)
    out("")
    _print_events(report, out)
    out("")
    _print_conversations(report, out)
    out("")
    if report.provider != "simulated":
        out(
            f"signed {report.provider} callbacks accepted by our routes: "
            f"{report.callbacks_accepted}/{report.callbacks_sent}"
        )
    out(f"all attempts ended in {report.seconds:.1f} s")


def _print_table(contacts: Sequence[ContactResult], out: Callable[[str], None]) -> None:
    header = (
        f"{'contact':<14} {'callee':<38} {'caller ID':<14} {'verdict':<15} "
        f"{'end type':<16} attempts: outcomes"
    )
    out(header)
    out("-" * len(header))
    for contact in contacts:
        last = contact.attempts[-1]
        verdict = last.verdict or "-"
        if last.verdict_source and last.verdict_source != "acoustic":
            verdict += f" ({last.verdict_source})"
        statuses = " > ".join(a.status for a in contact.attempts)
        tail = " +message" if contact.left_message else ""
        out(
            f"{mask_number(contact.number):<14} {contact.behaviour[:38]:<38} "
            f"{mask_number(contact.caller_number):<14} {verdict:<15} "
            f"{last.end_type or '-':<16} {len(contact.attempts)}: {statuses}{tail}"
        )


def _print_events(report: DemoReport, out: Callable[[str], None]) -> None:
    out("lifecycle webhooks (action -> tool crm_hook -> loopback receiver):")
    for tally in report.webhooks:
        out(
            f"  {tally.event:<24} fired {tally.fired:>2}  delivered "
            f"{tally.delivered:>2}  signature verified {tally.verified:>2}"
        )
    if report.example_payload is not None:
        body = msgspec.json.encode(masked(report.example_payload)).decode()
        out(f"  example call_ended payload: {body[:600]}")


def _print_conversations(report: DemoReport, out: Callable[[str], None]) -> None:
    labels = ", ".join(f"{k} {v}" for k, v in sorted(report.llm_labels.items()))
    out(
        "LLM voicemail verification (provisional machine verdicts checked): "
        + (labels or "none asked")
    )
    agreed = report.llm_labels.get("machine", 0)
    disagreed = sum(report.llm_labels.values()) - agreed
    out(f"  model agreed with the acoustic verdict {agreed}, disagreed {disagreed}")
    out("")
    out("transcripts and post-call analyses (answered calls):")
    for contact in report.contacts:
        if not contact.transcript and contact.analysis is None:
            continue
        last = contact.attempts[-1]
        out(f"  {mask_number(contact.number)} ({last.end_type or '-'}):")
        for line in contact.transcript.splitlines() or ["(no turns)"]:
            out(f"    | {mask_text(line)}")
        analysis = contact.analysis
        if analysis is None:
            out("    analysis: none")
        elif "error" in analysis:
            out(f"    analysis failed: {analysis['error']}")
        else:
            out(f"    summary: {analysis.get('summary')}")
            out(
                f"    tags: {', '.join(analysis.get('tags') or []) or '-'};"
                f" fields: {msgspec.json.encode(analysis.get('fields')).decode()}"
            )
