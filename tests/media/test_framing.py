"""Frame ordering, gap filling and outbound pacing, without sockets."""

from __future__ import annotations

from mediaserver.transports.framing import FrameSequencer, OutboundPacer

A, B, C, D = (bytes([n]) * 160 for n in (1, 2, 3, 4))
SILENCE = b"\xff" * 160


def test_in_order_frames_pass_straight_through() -> None:
    seq = FrameSequencer(0xFF)
    assert seq.push("1", A) == [A]
    assert seq.push("2", B) == [B]
    assert seq.gaps == 0


def test_a_gap_is_filled_with_silence_so_stream_time_stays_true() -> None:
    seq = FrameSequencer(0xFF)
    seq.push("10", A)
    assert seq.push("14", B) == [SILENCE, SILENCE, SILENCE, B]
    assert (seq.gaps, seq.silence_frames) == (1, 3)


def test_late_and_duplicate_frames_are_dropped_and_counted() -> None:
    seq = FrameSequencer(0xFF)
    seq.push("1", A)
    seq.push("2", B)
    assert seq.push("2", B) == []
    assert seq.push("1", A) == []
    assert seq.late_frames == 2


def test_a_wild_counter_cannot_allocate_minutes_of_silence() -> None:
    seq = FrameSequencer(0xFF, max_gap_frames=5)
    seq.push("1", A)
    out = seq.push("1000000", B)
    assert out == [SILENCE] * 5 + [B]


def test_unnumbered_frames_keep_arrival_order() -> None:
    seq = FrameSequencer(0xFF)
    assert seq.push(None, A) == [A]
    assert seq.push("x", B) == [B]
    assert seq.unnumbered == 2


def test_reordering_puts_swapped_frames_back_in_order() -> None:
    seq = FrameSequencer(0xD5, reorder_depth=2)
    out = seq.push(1, A) + seq.push(3, C) + seq.push(2, B) + seq.push(4, D)
    assert out == [A, B, C, D]
    assert seq.gaps == 0


def test_reordering_gives_up_on_a_lost_frame_after_depth_frames() -> None:
    seq = FrameSequencer(0xD5, reorder_depth=2)
    silence = b"\xd5" * 160
    out = seq.push(1, A) + seq.push(3, C) + seq.push(4, D)
    assert out == [A]
    out += seq.push(5, B)
    assert out == [A, silence, C, D, B]
    assert seq.push(2, B) == []  # too late now


def test_flush_releases_what_was_held() -> None:
    seq = FrameSequencer(0xFF, reorder_depth=3)
    out = seq.push(1, A) + seq.push(3, C)
    assert out == []  # the first frames wait in case an earlier one is late
    assert seq.flush() == [A, SILENCE, C]


def test_pacer_cuts_any_size_into_frames_at_real_time() -> None:
    pacer = OutboundPacer(0xFF, lead_frames=2)
    pacer.add_audio(b"x" * 800, now=0.0)  # five frames
    first = pacer.take(0.0)
    assert [len(f) for f in first] == [160, 160]
    assert pacer.take(0.005) == []
    assert len(pacer.take(0.021)) == 1
    assert len(pacer.take(0.061)) == 2
    assert pacer.idle


def test_pacer_releases_a_mark_after_the_audio_before_it() -> None:
    pacer = OutboundPacer(0xFF, lead_frames=10)
    pacer.add_audio(b"x" * 320, now=0.0)
    pacer.add_mark("m1")
    pacer.add_audio(b"y" * 160, now=0.0)
    out = pacer.take(0.0)
    assert out == [b"x" * 160, b"x" * 160, "m1", b"y" * 160]


def test_pacer_pads_a_short_tail_once_a_mark_follows() -> None:
    pacer = OutboundPacer(0xFF, lead_frames=10)
    pacer.add_audio(b"x" * 100, now=0.0)
    assert pacer.take(0.0) == []  # waiting for more audio
    pacer.add_mark("end")
    assert pacer.take(0.001) == [b"x" * 100 + b"\xff" * 60, "end"]


def test_pacer_clear_drops_audio_and_returns_unplayed_marks() -> None:
    pacer = OutboundPacer(0xFF, lead_frames=1)
    pacer.add_audio(b"x" * 1600, now=0.0)
    pacer.add_mark("a")
    pacer.add_mark("b")
    pacer.take(0.0)
    assert pacer.clear() == ["a", "b"]
    assert pacer.idle
    assert pacer.take(1.0) == []


def test_reordering_handles_a_stream_whose_first_two_frames_swap() -> None:
    seq = FrameSequencer(0xD5, reorder_depth=2)
    out = seq.push(2, B) + seq.push(1, A) + seq.push(4, D) + seq.push(3, C)
    assert out == [A, B, C, D]
    assert seq.late_frames == 0
