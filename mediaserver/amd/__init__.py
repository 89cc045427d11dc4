"""Answering-machine detection: VAD, beep detector, greeting timing, verdicts."""
