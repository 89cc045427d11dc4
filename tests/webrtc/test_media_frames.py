"""The transport's two media directions without a network: framing and the track."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from mediaserver.codecs.g711 import pcm_to_ulaw, ulaw_to_pcm
from mediaserver.transports.webrtc import WebRtcCarrier
from mediaserver.transports.webrtc_media import (
    SILENT_FRAME,
    AgentAudioTrack,
    InboundFramer,
)


def frame(
    samples: NDArray[np.int16], *, rate: int, layout: str, pts: int | None
) -> av.AudioFrame:
    """A decoded frame as aiortc's decoders return it (packed s16)."""
    out = av.AudioFrame.from_ndarray(
        samples.reshape(1, -1), format="s16", layout=layout
    )
    out.sample_rate = rate
    out.time_base = Fraction(1, rate)
    out.pts = pts
    return out


def sine(freq: float, n: int, rate: int, level: int = 8000) -> NDArray[np.int16]:
    return (np.sin(2 * np.pi * freq * np.arange(n) / rate) * level).astype(np.int16)


def dominant_hz(pcm: NDArray[np.int16], rate: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(pcm))


def test_pcmu_rate_frames_pass_through_unchanged() -> None:
    framer = InboundFramer()
    pcm = sine(440, 160 * 5, 8000)
    out = []
    for k in range(5):
        chunk = pcm[k * 160 : (k + 1) * 160]
        out += framer.push(frame(chunk, rate=8000, layout="mono", pts=k * 160))
    assert out == [pcm_to_ulaw(pcm[k * 160 : (k + 1) * 160]) for k in range(5)]
    assert framer.gaps == 0


def test_opus_48k_stereo_becomes_8k_mono_frames_of_the_same_tone() -> None:
    framer = InboundFramer()
    mono = sine(1000, 960 * 25, 48000)
    stereo = np.repeat(mono, 2)  # packed L,R: both channels carry the tone
    out: list[bytes] = []
    for k in range(25):
        chunk = stereo[k * 1920 : (k + 1) * 1920]
        out += framer.push(frame(chunk, rate=48000, layout="stereo", pts=k * 960))

    # 0.5 s in; the resampler may hold back a few milliseconds.
    assert 23 <= len(out) <= 25
    assert all(len(f) == 160 for f in out)
    decoded = ulaw_to_pcm(b"".join(out))
    assert abs(dominant_hz(decoded[800:]) - 1000) < 20
    assert 6000 < np.abs(decoded[800:]).max() < 10000  # level kept, not doubled


def test_lost_packets_become_silence_so_stream_time_stays_true() -> None:
    framer = InboundFramer()
    tone = sine(440, 160, 8000)
    out: list[bytes] = []
    for pts in (0, 160, 320, 960):
        out += framer.push(frame(tone, rate=8000, layout="mono", pts=pts))
    # 480, 640 and 800 are missing: three frames of silence before the last.
    assert len(out) == 7
    assert out[3:6] == [pcm_to_ulaw(np.zeros(160, np.int16))] * 3
    assert out[6] == pcm_to_ulaw(tone)
    assert framer.gaps == 1
    assert framer.silence_samples == 480


def test_a_wild_pts_jump_inserts_at_most_max_gap() -> None:
    framer = InboundFramer(max_gap_s=0.1)
    tone = sine(440, 160, 8000)
    framer.push(frame(tone, rate=8000, layout="mono", pts=0))
    out = framer.push(frame(tone, rate=8000, layout="mono", pts=10**9))
    assert len(out) == 5 + 1  # 100 ms of silence, then the frame


def test_codec_change_mid_call_gets_a_new_resampler() -> None:
    framer = InboundFramer()
    out = framer.push(frame(sine(440, 160, 8000), rate=8000, layout="mono", pts=0))
    stereo = np.repeat(sine(440, 960, 48000), 2)
    for k in range(5):
        pts = 960 + k * 960
        out += framer.push(frame(stereo, rate=48000, layout="stereo", pts=pts))
    assert len(out) >= 4
    assert framer.gaps == 0  # a new time base is not a loss


async def test_track_sends_8k_mono_s16_frames_and_silence_when_idle() -> None:
    track = AgentAudioTrack()
    first = await track.recv()
    second = await track.recv()
    for f in (first, second):
        assert f.format.name == "s16"
        assert f.layout.name == "mono"
        assert f.sample_rate == 8000
        assert f.samples == 160
        assert f.time_base == Fraction(1, 8000)
    assert (first.pts, second.pts) == (0, 160)
    assert not first.to_ndarray().any()
    track.stop()


async def test_track_plays_audio_then_echoes_the_mark_behind_it() -> None:
    track = AgentAudioTrack()
    speech = sine(300, 320, 8000)
    track.add_audio(pcm_to_ulaw(speech))
    track.add_mark("opening")

    played = (await track.recv()).to_ndarray().reshape(-1)
    assert np.array_equal(played, ulaw_to_pcm(pcm_to_ulaw(speech[:160])))
    assert track.played.empty()  # its audio has not all gone out yet
    await track.recv()
    assert track.played.empty()
    await track.recv()  # the mark reached the head: everything before it played
    assert track.played.get_nowait() == "opening"
    assert track.audio_frames_sent == 2
    track.stop()


async def test_clear_drops_queued_audio_and_returns_every_mark() -> None:
    track = AgentAudioTrack()
    track.add_audio(pcm_to_ulaw(sine(300, 1600, 8000)))
    track.add_mark("a")
    track.add_audio(pcm_to_ulaw(sine(300, 1600, 8000)))
    track.add_mark("b")
    await track.recv()
    track.clear()
    assert [track.played.get_nowait(), track.played.get_nowait()] == ["a", "b"]
    assert not (await track.recv()).to_ndarray().any()  # silence after the clear
    assert track.audio_frames_sent == 1
    track.stop()


async def test_track_pads_short_audio_and_bounds_its_queue() -> None:
    track = AgentAudioTrack(max_queued_s=0.06)  # three frames
    track.add_audio(b"\x00" * 200)  # one frame and a 40-byte tail
    assert track.dropped_frames == 0
    track.add_audio(b"\x00" * 480)
    assert track.dropped_frames == 2
    await track.recv()
    tail = await track.recv()
    pcm = tail.to_ndarray().reshape(-1)
    assert pcm[:40].min() < -8000  # mu-law 0x00 is full scale negative
    assert not pcm[40:].any()  # padded with silence
    track.stop()


async def test_carrier_messages_reach_the_track() -> None:
    track = AgentAudioTrack()
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    carrier = WebRtcCarrier(track, close)
    await carrier.send(carrier.encode_media(b"\x10" * 160))
    await carrier.send(carrier.encode_mark("m-1"))
    await carrier.send(carrier.encode_clear())
    assert track.played.get_nowait() == "m-1"  # cleared before it played
    assert (await track.recv()).to_ndarray().reshape(-1).tobytes() == (
        np.zeros(160, np.int16).tobytes()
    )
    await carrier.close(1000, "bye")
    assert closed == [True]
    assert SILENT_FRAME == b"\xff" * 160
    track.stop()


def test_a_frame_pyav_refuses_is_an_error_and_the_next_one_still_works() -> None:
    framer = InboundFramer()
    tone = sine(440, 160, 8000)
    bad = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
    with pytest.raises(ValueError, match="sample rate"):
        framer.push(bad)  # no sample rate: PyAV would break its filter graph
    out = framer.push(frame(tone, rate=8000, layout="mono", pts=0))
    assert out == [pcm_to_ulaw(tone)]
