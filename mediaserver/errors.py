"""The package's exceptions, all under one root.

    CallwrightError
    ├── ConfigError            bad or missing configuration
    ├── ModelError             the VAD model file is missing or corrupt
    ├── ProtocolError          a peer sent something we cannot accept
    │   └── TokenError         a media or agent token is missing, bad or expired
    ├── ValidationError        user input (campaign, call, CSV row) is invalid
    ├── StoreError             persistence failed
    └── RemoteError            a remote party (carrier, webhook, LLM) failed
        ├── CarrierError
        ├── DeliveryError
        └── LlmError

A `RemoteError` says whether trying again can help (`retryable`).
"""

from __future__ import annotations


class CallwrightError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(CallwrightError):
    """Configuration is missing or wrong."""


class ModelError(CallwrightError):
    """The VAD model file is missing or does not match its pinned hash."""


class ProtocolError(CallwrightError):
    """A peer sent a message we cannot accept."""


class TokenError(ProtocolError):
    """A per-call token is missing, tampered with or expired."""


class ValidationError(CallwrightError):
    """User input is invalid; `errors` maps each bad field to its reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        detail = "; ".join(f"{field}: {why}" for field, why in self.errors.items())
        super().__init__(detail or "invalid input")


class StoreError(CallwrightError):
    """Reading or writing the store failed."""


class RemoteError(CallwrightError):
    """A remote party failed; `retryable` says whether a retry can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class CarrierError(RemoteError):
    """The carrier refused or failed a request."""


class DeliveryError(RemoteError):
    """A webhook delivery failed."""


class LlmError(RemoteError):
    """An OpenAI-compatible model call failed or answered out of schema."""
