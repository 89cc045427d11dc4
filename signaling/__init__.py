"""WebRTC SDP offer/answer signaling."""
