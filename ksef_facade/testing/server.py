"""Running the simulator on a real loopback port with uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from .simulator import Simulator

__all__ = ["run_simulator", "start_server"]


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        """Leave signals to the host process (the server runs in a thread)."""


def start_server(
    sim: Simulator, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, _Server, threading.Thread]:
    """Start serving ``sim``; return its ``/v2`` base URL, server and thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it small responses written in two
    # pieces wait ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]

    config = uvicorn.Config(
        sim.app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=30,
    )
    server = _Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="ksef-sim", daemon=True
    )
    thread.start()

    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the simulator server did not start")
        time.sleep(0.01)
    return f"http://{host}:{bound_port}/v2", server, thread


@contextmanager
def run_simulator(
    sim: Simulator, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve ``sim`` on ``host:port`` (0: any free port); yield the ``/v2`` base URL."""
    base_url, server, thread = start_server(sim, host, port)
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
