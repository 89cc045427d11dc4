"""G.711 mu-law and A-law (ITU-T G.711), bit-exact with CPython's `audioop`.

Decoding goes through a 256-entry table and encoding through a 65,536-entry
table indexed by the 16-bit sample, so both directions are one `numpy.take`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Pcm = NDArray[np.int16]

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _ulaw_encode_one(sample: int) -> int:
    # audioop works on the 14-bit mu-law range: drop the 2 low bits first.
    pcm = sample >> 2
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg_ends = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
    seg = next((i for i, end in enumerate(seg_ends) if pcm <= end), 8)
    if seg >= 8:
        return (0x7F ^ mask) & 0xFF
    return (((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask) & 0xFF


def _ulaw_decode_one(byte: int) -> int:
    byte = ~byte & 0xFF
    exponent = (byte >> 4) & 0x07
    magnitude = (((byte & 0x0F) << 3) + _ULAW_BIAS) << exponent
    magnitude -= _ULAW_BIAS
    return -magnitude if byte & 0x80 else magnitude


def _alaw_encode_one(sample: int) -> int:
    # audioop works on the 13-bit A-law range: drop the 3 low bits first.
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg_ends = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    seg = next((i for i, end in enumerate(seg_ends) if pcm <= end), 8)
    if seg >= 8:
        return (0x7F ^ mask) & 0xFF
    aval = seg << 4
    aval |= (pcm >> 1 if seg < 2 else pcm >> seg) & 0x0F
    return (aval ^ mask) & 0xFF


def _alaw_decode_one(byte: int) -> int:
    byte ^= 0x55
    value = (byte & 0x0F) << 4
    seg = (byte & 0x70) >> 4
    if seg == 0:
        value += 8
    elif seg == 1:
        value += 0x108
    else:
        value = (value + 0x108) << (seg - 1)
    return value if byte & 0x80 else -value


_SAMPLES = range(-32768, 32768)
ULAW_DECODE: Pcm = np.array([_ulaw_decode_one(b) for b in range(256)], np.int16)
ALAW_DECODE: Pcm = np.array([_alaw_decode_one(b) for b in range(256)], np.int16)
# Encode tables are indexed by (sample + 32768).
ULAW_ENCODE = np.array([_ulaw_encode_one(s) for s in _SAMPLES], np.uint8)
ALAW_ENCODE = np.array([_alaw_encode_one(s) for s in _SAMPLES], np.uint8)

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5


def ulaw_to_pcm(data: bytes) -> Pcm:
    """Decode mu-law bytes to int16 samples."""
    return ULAW_DECODE.take(np.frombuffer(data, np.uint8))


def alaw_to_pcm(data: bytes) -> Pcm:
    """Decode A-law bytes to int16 samples."""
    return ALAW_DECODE.take(np.frombuffer(data, np.uint8))


def pcm_to_ulaw(pcm: Pcm) -> bytes:
    """Encode int16 samples to mu-law bytes."""
    return bytes(ULAW_ENCODE.take(pcm.astype(np.int32) + 32768))


def pcm_to_alaw(pcm: Pcm) -> bytes:
    """Encode int16 samples to A-law bytes."""
    return bytes(ALAW_ENCODE.take(pcm.astype(np.int32) + 32768))
