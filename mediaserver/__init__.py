"""Callwright: an outbound-calling engine for voice agents.

Two planes live in this package: the media plane (carrier media streams,
answering-machine detection, the agent link) and the control plane
(campaigns, the call queue, dialing, retries, actions and analysis).
"""

__version__ = "0.1.0"
