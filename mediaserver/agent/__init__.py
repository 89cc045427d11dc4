"""The protocol spoken with the agent runtime."""
