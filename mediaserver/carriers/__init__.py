"""Carrier dialers: simulated, Twilio and Telnyx."""
