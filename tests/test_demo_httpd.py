"""The HTTP plumbing both demo servers share: loopback only, prompt stop, SIGTERM handling."""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

import pytest

from workbench.demo.httpd import JSONHandler, LoopbackServer, check_loopback, until_interrupted
from workbench.errors import ConfigError


class _Echo(JSONHandler["_EchoServer"]):
    server_version = "echo/0"
    max_body = 16

    def do_POST(self) -> None:
        body = self._read_body()
        if body is not None:
            self._send_json(200, {"got": body.decode()})

    def _refuse_body(self, status: int) -> None:
        self._send_json(status, {"refused": status})


class _EchoServer(LoopbackServer):
    label = "echo server"


def _post(port: int, head: str, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        data = b""
        while b"}" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def test_json_replies_and_body_limits() -> None:
    with _EchoServer(_Echo, "127.0.0.1", 0) as server:
        ok = _post(server.port, "Content-Length: 2\r\n", b"hi")
        assert ok.startswith(b"HTTP/1.1 200 OK\r\n") and ok.endswith(b'{"got":"hi"}')
        assert b"Content-Type: application/json\r\n" in ok and b"Connection: close" not in ok
        big = _post(server.port, "Content-Length: 17\r\n")
        assert big.startswith(b"HTTP/1.1 413 ") and b"Connection: close\r\n" in big
        chunked = _post(server.port, "Transfer-Encoding: chunked\r\n")
        assert chunked.startswith(b"HTTP/1.1 411 ") and chunked.endswith(b'{"refused":411}')


def test_stop_closes_open_keep_alive_connections() -> None:
    server = _EchoServer(_Echo, "127.0.0.1", 0).start()
    assert server._thread is not None and server._thread.name == f"echo-server-{server.port}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
        idle.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        assert b'{"got":"x"}' in idle.recv(4096)
        server.stop()
        assert idle.recv(4096) == b""  # closed by stop(), not by the client
    with pytest.raises(RuntimeError, match="this _EchoServer was stopped"):
        server.start()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "example.com"])
def test_only_loopback_hosts(host: str) -> None:
    with pytest.raises(ConfigError, match="the echo server binds to 127.0.0.1 only"):
        check_loopback(host, "echo server")
    with pytest.raises(ConfigError, match="127.0.0.1 only"):
        _EchoServer(_Echo, host, 0)


def test_until_interrupted_turns_sigterm_into_a_quiet_end() -> None:
    before = signal.getsignal(signal.SIGTERM)
    reached: list[str] = []
    with until_interrupted():
        reached.append("in")
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the signal")  # pragma: no cover - the signal ends the block
    assert reached == ["in"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_until_interrupted_outside_the_main_thread_leaves_signals_alone() -> None:
    seen: list[Any] = []

    def run() -> None:
        with until_interrupted():
            seen.append(signal.getsignal(signal.SIGTERM))
            raise KeyboardInterrupt

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(5)
    assert seen == [before]
