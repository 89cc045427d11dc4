"""WebRTC SDP offer/answer signaling.

`signaling.http.webrtc_router` mounts the routes in a Litestar app;
`signaling.http.SignalingServer` serves them alone (`python -m signaling`).
The calls themselves run in `mediaserver.transports.webrtc`. See
docs/webrtc.md.
"""
