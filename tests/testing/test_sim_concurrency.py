"""Concurrent clients over loopback: no lost or duplicated work."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from simkit import Kit, invoice_xml

from ksef_facade.testing.identifiers import is_valid_ksef_number
from ksef_facade.testing.pytest_plugin import SimulatorEnv

THREADS = 8
PER_THREAD = 5


def test_parallel_sends_in_one_session(ksef_simulator: SimulatorEnv) -> None:
    """Eight threads sending five invoices each get forty distinct KSeF numbers."""
    with ksef_simulator.client(timeout=30) as client:
        kit = Kit(client)
        kit.authenticate(ksef_simulator.nip, ksef_simulator.ksef_token)
        session, aes_key, iv = kit.open_online()

        def send_some(worker: int) -> list[str]:
            with ksef_simulator.client(timeout=30) as own:
                mine = Kit(own)
                mine.access_token = kit.access_token
                references = []
                for n in range(PER_THREAD):
                    invoice = invoice_xml(f"C/{worker}/{n}")
                    response = mine.send(session, aes_key, iv, invoice)
                    assert response.status_code == 202, response.text
                    references.append(response.json()["referenceNumber"])
                return references

        with ThreadPoolExecutor(THREADS) as pool:
            references = [
                r for batch in pool.map(send_some, range(THREADS)) for r in batch
            ]

        numbers = [kit.invoice_status(session, r)["ksefNumber"] for r in references]
        assert len(set(references)) == THREADS * PER_THREAD
        assert len(set(numbers)) == THREADS * PER_THREAD
        assert all(is_valid_ksef_number(n) for n in numbers)
        ordinals = sorted(
            i.ordinal for i in ksef_simulator.sim.session_records("Online")[0].invoices
        )
        assert ordinals == list(range(1, THREADS * PER_THREAD + 1))
