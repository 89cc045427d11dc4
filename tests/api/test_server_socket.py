"""The API's listening socket says it is TCP, so uvicorn turns Nagle off."""

from __future__ import annotations

import socket

from mediaserver.api.server import bind_socket


def test_listening_socket_names_tcp_so_nodelay_applies() -> None:
    # uvicorn sets TCP_NODELAY on accepted connections only when the
    # listening socket's protocol is IPPROTO_TCP; 0 ("any") skips it.
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.type == socket.SOCK_STREAM
    finally:
        sock.close()
