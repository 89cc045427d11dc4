"""Checks the API makes on top of the campaign and launch rules.

They depend on this server's set-up, not on the campaign alone: which
carriers have credentials, and which folders the simulated carrier may read
recordings from. A failed check raises `ValidationError` naming the field.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from mediaserver.carriers.simulated import validate_sim_behavior
from mediaserver.controller.campaign import Campaign
from mediaserver.controller.launch import LaunchRequest
from mediaserver.errors import ValidationError

SIMULATED = "simulated"
# What each carrier needs before it can dial (see Service._make_dialers).
CARRIER_KEYS = {
    "twilio": "carriers.twilio.account_sid and auth_token",
    "telnyx": "carriers.telnyx.api_key and connection_id",
}


def check_providers(campaign: Campaign, configured: Collection[str] | None) -> None:
    """Refuse a campaign whose carriers cannot dial here (`None`: no check)."""
    if configured is None:
        return
    errors: dict[str, str] = {}
    policy = campaign.caller_id
    numbers = [("caller_id.default.provider", policy.default)]
    numbers += [
        (f"caller_id.overrides[{index}].number.provider", override.number)
        for index, override in enumerate(policy.overrides)
    ]
    if campaign.provider not in configured:
        errors["provider"] = _unconfigured(campaign.provider)
    for field, number in numbers:
        provider = number.provider or campaign.provider
        if provider not in configured and provider != campaign.provider:
            errors[field] = _unconfigured(provider)
    if errors:
        raise ValidationError(errors)


def _unconfigured(provider: str) -> str:
    keys = CARRIER_KEYS.get(provider, "its credentials")
    return f"{provider} is not configured on this server: set {keys}"


def sim_behavior_error(
    launch: LaunchRequest, recordings_dirs: Sequence[Path] | None
) -> dict[str, str]:
    """The field and reason when a simulated call's behaviour is bad, else {}.

    Only calls the simulated carrier places are checked; the behaviour comes
    from metadata first, then variables, as the carrier reads it.
    """
    calling = launch.calling_number
    if calling is None or calling.provider != SIMULATED:
        return {}
    for where in ("metadata", "variables"):
        values = launch.metadata if where == "metadata" else launch.variables
        text = values.get("sim_behavior")
        if text is None or text == "":  # empty: the carrier's default
            continue
        field = f"{where}.sim_behavior"
        if not isinstance(text, str):
            return {field: "must be a string such as 'answer' or 'busy;ring=1'"}
        reason = validate_sim_behavior(text, recordings_dirs=recordings_dirs)
        return {} if reason is None else {field: reason}
    return {}
