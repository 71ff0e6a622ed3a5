"""In-process transports: blocking and async clients against the ASGI app."""

from __future__ import annotations

import httpx

from ksef_facade.testing.pytest_plugin import SimulatorEnv


def test_sync_transport_round_trip(env: SimulatorEnv) -> None:
    """The blocking adapter returns complete responses."""
    transport = env.sim.sync_transport()
    with httpx.Client(transport=transport, base_url=env.base_url) as client:
        assert client.post("/auth/challenge").status_code == 200
    transport.close()


async def test_async_transport_round_trip(env: SimulatorEnv) -> None:
    """httpx's ASGITransport works with the app directly."""
    async with env.async_client() as client:
        response = await client.get("/security/public-key-certificates")
    assert response.status_code == 200


def test_unknown_path_is_404(env: SimulatorEnv) -> None:
    """Paths the simulator does not serve are 404."""
    with env.client() as client:
        assert client.get("/no/such/path").status_code == 404
