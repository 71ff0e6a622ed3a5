"""Pre-signed URLs stay out of httpx's own log records."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from test_client import async_client, fa3_invoice, sync_client

from ksef_facade import Environment, KsefApi, nip_context
from ksef_facade._redact import PRESIGNED, HttpxUrlFilter, install_httpx_url_filter
from ksef_facade.batch_state import BatchUploadState
from ksef_facade.forms import FormCode
from ksef_facade.testing.pytest_plugin import SimulatorEnv

API = "https://api-test.ksef.mf.gov.pl/v2"


class Records(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def httpx_records() -> Iterator[list[logging.LogRecord]]:
    """httpx's records at INFO and up, as an application that logs them sees them."""
    logger = logging.getLogger("httpx")
    handler = Records()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def invoices(nip: str) -> list[tuple[str, bytes]]:
    return [(f"fv-{n}.xml", fa3_invoice(nip, f"FV/R/{n}")) for n in range(3)]


def signatures(states: list[BatchUploadState]) -> list[str]:
    """The signatures of the session's pre-signed part URLs."""
    return [u.url.reveal().split("sig=")[1] for u in states[-1].uploads]


def test_batch_upload_logs_no_signature(
    ksef_simulator: SimulatorEnv, httpx_records: list[logging.LogRecord]
) -> None:
    """A batch over loopback leaves no URL signature in any httpx record."""
    saved: list[BatchUploadState] = []
    with sync_client(ksef_simulator) as client, nip_context(ksef_simulator.nip):
        client.send_batch(
            invoices(ksef_simulator.nip),
            FormCode.FA3,
            part_size=300,
            on_state=saved.append,
        )

    messages = [record.getMessage() for record in httpx_records]
    assert sum(PRESIGNED in m for m in messages) == len(saved[-1].uploads) > 1
    for signature in signatures(saved):
        assert all(signature not in message for message in messages)


async def test_async_batch_upload_logs_no_signature(
    ksef_simulator_inprocess: SimulatorEnv, httpx_records: list[logging.LogRecord]
) -> None:
    """The asyncio client's part uploads are logged without their URL either."""
    env = ksef_simulator_inprocess
    saved: list[BatchUploadState] = []
    async with async_client(env) as client:
        with nip_context(env.nip):
            await client.send_batch(
                invoices(env.nip), FormCode.FA3, on_state=saved.append
            )

    messages = [record.getMessage() for record in httpx_records]
    assert any(PRESIGNED in m for m in messages)
    for signature in signatures(saved):
        assert all(signature not in message for message in messages)


def test_api_urls_keep_their_path_without_query() -> None:
    """An API URL keeps its path, and loses its query string and fragment."""
    url_filter = HttpxUrlFilter()
    url_filter.add_api(API)

    redacted = url_filter.redact(f"{API}/sessions/R1/invoices?pageSize=10#x")

    assert redacted == f"{API}/sessions/R1/invoices"


def test_other_urls_keep_only_their_origin() -> None:
    """A URL outside every registered API becomes its origin and a placeholder."""
    url_filter = HttpxUrlFilter()
    url_filter.add_api(API)

    redacted = url_filter.redact("https://user:pw@blob.example:8443/c/part1?sig=K")

    assert redacted == f"https://blob.example:8443/{PRESIGNED}"


def test_same_host_outside_the_base_path_is_not_api() -> None:
    """A path on the API's host but outside its base path is hidden too."""
    url_filter = HttpxUrlFilter()
    url_filter.add_api(API)

    redacted = url_filter.redact("https://api-test.ksef.mf.gov.pl/upload/R1/1?sig=K")

    assert redacted == f"https://api-test.ksef.mf.gov.pl/{PRESIGNED}"


def test_records_without_urls_pass_unchanged() -> None:
    """A record with no URL argument keeps its arguments and is never dropped."""
    record = logging.LogRecord("httpx", logging.INFO, "", 0, "%s %d", ("a", 1), None)

    assert HttpxUrlFilter().filter(record) is True
    assert record.args == ("a", 1)


def test_url_arguments_are_rewritten() -> None:
    """An httpx.URL argument is replaced by its redacted text."""
    url = httpx.URL("https://blob.example/part?sig=SECRET")
    record = logging.LogRecord("httpx", logging.INFO, "", 0, "GET %s", (url,), None)

    HttpxUrlFilter().filter(record)

    assert record.getMessage() == f"GET https://blob.example/{PRESIGNED}"


def test_filter_attached_once_and_no_handler() -> None:
    """Many clients attach one filter to the httpx logger, and no handler."""
    logger = logging.getLogger("httpx")
    handlers = list(logger.handlers)

    for _ in range(3):
        KsefApi(Environment.custom(API)).close()
    install_httpx_url_filter(API)

    assert sum(isinstance(f, HttpxUrlFilter) for f in logger.filters) == 1
    assert logger.handlers == handlers


def test_importing_attaches_nothing() -> None:
    """Importing the package leaves the httpx logger as it was."""
    code = "import logging, ksef_facade; print(logging.getLogger('httpx').filters)"

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
