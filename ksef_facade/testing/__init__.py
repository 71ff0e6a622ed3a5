"""A local KSeF 2.0 simulator: the server side, for tests, demos and offline work.

Written from the official docs and the pinned spec, independently of the client code
in :mod:`ksef_facade`. Needs the ``simulator`` extra (starlette, uvicorn); contract
validation needs the ``contract`` extra (openapi-core).

Python API
----------
``Simulator(seed=0, processing_delay=0.0, access_token_ttl=900,
refresh_token_ttl=604800, authentication_token_ttl=3600, challenge_ttl=600,
online_session_ttl=43200, max_invoices_per_session=10000,
metadata_query_limit=10000, export_part_size=50000000,
status_retention=604800, enforce_rate_limits=False, rate_limit_scale=1.0,
rate_limit_escalation=1.0, validate_contract=False, spec_path=None, clock=None)``
    The state and controls. ``sim.app`` is the ASGI app (paths under ``/v2`` as in
    the spec; batch part uploads at ``/upload/...``, UPO links at ``/upo/...`` and
    export parts at ``/export/...``, all without a bearer).
    ``sim.async_transport()`` gives ``httpx.ASGITransport``; ``sim.sync_transport()``
    a blocking transport running the app on a private loop.

    Controls: ``add_ksef_token(nip, token=None, *, permissions=DEFAULT_PERMISSIONS)``
    returns the token secret; ``revoke_ksef_token(token)``; ``rotate_keys(usage=None,
    *, withdraw_old=False)`` returns the new ``publicKeyId`` values;
    ``withdraw_old_keys(usage=None)``; ``expire_tokens(kind="access")`` expires
    every issued token of a kind at once ("access", "refresh", "authentication").
    Faults: ``sim.faults`` (:class:`~.faults.Faults`). Rate limits:
    ``sim.rate_limiter.enabled``; ``GET /rate-limits`` reports the documented limits
    times ``rate_limit_scale`` (-1 for a window without a limit), and a context's limits
    change through ``POST /testdata/rate-limits`` (as given),
    ``POST /testdata/rate-limits/production`` (the documented values, unscaled) and
    ``DELETE /testdata/rate-limits``, or ``sim.rate_limiter.set_context_limits(nip,
    {group: (per_second, per_minute, per_hour)})``. The ``global`` and
    ``collectiveIdentifier`` groups are reported, not enforced.

    Inspection: ``received_invoices(nip=None)`` (decrypted bytes, status, KSeF
    number), ``session_records(kind=None)``, ``request_counts`` (per operation),
    ``contract_violations`` and ``contract_request_violations``, ``faults.history``.

    Contract: ``validate_contract=True`` checks every ``/v2`` request and response
    against the pinned spec (``spec_path``, else ``KSEF_SPEC_FILE``, else the shared
    copy) and records readable violations; a missing spec or openapi-core raises at
    construction. ``contract_problems(requests=True)`` lists what was recorded and
    ``check_contract(requests=True)`` raises :class:`~.contract.ContractViolation`
    with that list.

``ManualClock`` / ``SystemClock``
    Pass ``clock=ManualClock()`` and call ``clock.advance(seconds)`` to step through
    processing delays, challenge and token expiry, and ``status_retention`` (after
    which authentication and export statuses answer 410 Gone).

``run_simulator(sim, host="127.0.0.1", port=0)``
    Context manager serving ``sim`` with uvicorn in a thread; yields the base URL
    ``http://127.0.0.1:<port>/v2``.

Fault injection (``sim.faults``)
--------------------------------
Rules match an operation name from :data:`~.operations.OPERATIONS` (``route=``, e.g.
``"send_online_invoice"``, ``"open_batch_session"``, ``"upload_part"``; ``None`` for
every request), skip the first ``after`` matches and fire ``count`` times (``None``:
always). ``latency(seconds)``, ``server_errors(count, status=503)``,
``rate_limited(count, retry_after=1)``, ``drop_before(count)`` (connection closed,
nothing processed), ``drop_after(count)`` (processed, then the connection closed
without a response), ``fail_part_uploads(count, status=503)``; all return a
:class:`~.faults.Fault` whose ``fired`` counts activations; ``clear()`` removes rules.
In-process, dropped connections raise ``httpx.RemoteProtocolError``.

``listing_lag(calls=1, *, count=None, after=0)`` is a lagging read model rather than
a request fault: every invoice recorded while it is active (an online send, or an
invoice of a batch) is left out of its session's listings (``GET
/sessions/{ref}/invoices`` and ``.../invoices/failed``) for the next ``calls``
listings of that session, then appears; its own status (``GET
/sessions/{ref}/invoices/{invoiceRef}``) answers throughout. ``count`` limits how many
invoices lag (``fired`` counts them); ``faults.history`` gets
``("session_invoices", "listing_lag")`` for each listing that left one out. With
``drop_after(route="send_online_invoice")`` it exercises a client's lookup of a send
whose answer was lost.

Pytest
------
:mod:`.pytest_plugin` provides ``ksef_simulator`` (loopback) and
``ksef_simulator_inprocess`` fixtures yielding a :class:`~.pytest_plugin.SimulatorEnv`
(``base_url``, ``sim``, ``nip``, ``ksef_token``, ``client()``, ``async_client()``,
``allow_invalid_requests()``), with contract validation on when the pinned spec is
found; violations fail the test. ``simulator_env(in_process=..., **options)`` builds
custom fixtures.

Command line: ``ksef-sim serve --port 8765 --token NIP:SECRET`` (or
``python -m ksef_facade.testing serve``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .clock import ManualClock, SystemClock
    from .faults import Fault, Faults
    from .server import run_simulator
    from .simulator import DEFAULT_PERMISSIONS, ReceivedInvoice, Simulator

__all__ = [
    "DEFAULT_PERMISSIONS",
    "Fault",
    "Faults",
    "ManualClock",
    "ReceivedInvoice",
    "Simulator",
    "SystemClock",
    "run_simulator",
]

# Names are imported on first use, so that importing the package (for example as a
# pytest plugin) needs neither starlette nor uvicorn until a simulator is built.
_SOURCES = {
    "DEFAULT_PERMISSIONS": ".simulator",
    "Fault": ".faults",
    "Faults": ".faults",
    "ManualClock": ".clock",
    "ReceivedInvoice": ".simulator",
    "Simulator": ".simulator",
    "SystemClock": ".clock",
    "run_simulator": ".server",
}


def __getattr__(name: str) -> object:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(source, __name__), name)
