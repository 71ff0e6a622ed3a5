"""Invoice download and the metadata query."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from simkit import BUYER_NIP, Kit, exception_code, kit_for

from ksef_facade.testing.pytest_plugin import SimulatorEnv


def _query(kit: Kit, filters: dict | None = None, **params: object):
    now = datetime.now(UTC)
    body = {
        "subjectType": "Subject1",
        "dateRange": {
            "dateType": "Invoicing",
            "from": (now - timedelta(days=1)).isoformat(),
            "to": (now + timedelta(days=1)).isoformat(),
        },
        **(filters or {}),
    }
    return kit.client.post(
        "/invoices/query/metadata", headers=kit.auth, json=body, params=params
    )


def test_unknown_invoice_is_21164(authed: Kit) -> None:
    """Downloading a KSeF number that does not exist is 21164."""
    response = authed.client.get(
        "/invoices/ksef/5265877635-20250826-0100001AF629-AF", headers=authed.auth
    )
    assert exception_code(response) == 21164


def test_buyer_can_download_too(env: SimulatorEnv, authed: Kit) -> None:
    """The buyer's context sees the invoice it received."""
    (number,) = authed.send_invoices(["D/1"])
    buyer = Kit(authed.client)
    buyer.authenticate(BUYER_NIP, env.sim.add_ksef_token(BUYER_NIP))
    assert (
        buyer.client.get(f"/invoices/ksef/{number}", headers=buyer.auth).status_code
        == 200
    )


def test_unrelated_context_cannot_download(env: SimulatorEnv, authed: Kit) -> None:
    """A third context gets 21164, as if the invoice did not exist."""
    (number,) = authed.send_invoices(["D/2"])
    other = Kit(authed.client)
    other.authenticate("1250753505", env.sim.add_ksef_token("1250753505"))
    assert (
        exception_code(other.client.get(f"/invoices/ksef/{number}", headers=other.auth))
        == 21164
    )


def test_query_returns_metadata_of_sent_invoices(authed: Kit) -> None:
    """The seller's query finds the invoice with its amounts and parties."""
    (number,) = authed.send_invoices(["Q/1"])
    body = _query(authed).json()
    (item,) = body["invoices"]
    assert item["ksefNumber"] == number
    assert item["invoiceNumber"] == "Q/1"
    assert item["buyer"]["identifier"] == {"type": "Nip", "value": BUYER_NIP}
    assert item["grossAmount"] == 4001.49
    assert (body["hasMore"], body["isTruncated"]) == (False, False)


def test_query_as_buyer(env: SimulatorEnv, authed: Kit) -> None:
    """Subject2 finds invoices where the context is the buyer."""
    authed.send_invoices(["Q/2"])
    buyer = Kit(authed.client)
    buyer.authenticate(BUYER_NIP, env.sim.add_ksef_token(BUYER_NIP))
    assert len(_query(buyer, {"subjectType": "Subject2"}).json()["invoices"]) == 1
    assert _query(buyer).json()["invoices"] == []


def test_query_filters_by_invoice_number(authed: Kit) -> None:
    """invoiceNumber is an exact match."""
    authed.send_invoices(["F/1", "F/2"])
    items = _query(authed, {"invoiceNumber": "F/2"}).json()["invoices"]
    assert [i["invoiceNumber"] for i in items] == ["F/2"]


def test_query_pages_and_sorts(authed: Kit) -> None:
    """pageSize and pageOffset page the results; Desc reverses them."""
    numbers = authed.send_invoices([f"P/{n}" for n in range(12)])
    first = _query(authed, pageSize=10).json()
    second = _query(authed, pageSize=10, pageOffset=10).json()
    assert first["hasMore"] is True
    assert [i["ksefNumber"] for i in first["invoices"] + second["invoices"]] == numbers
    desc = _query(authed, pageSize=10, sortOrder="Desc").json()
    assert desc["invoices"][0]["ksefNumber"] == numbers[-1]


def test_query_truncates_at_the_limit(make_env) -> None:
    """Past metadata_query_limit results isTruncated is set on the last page."""
    env = make_env(metadata_query_limit=10)
    with ExitStack() as stack:
        kit = kit_for(env, stack)
        kit.authenticate(env.nip, env.ksef_token)
        kit.send_invoices([f"T/{n}" for n in range(11)])
        body = _query(kit, pageSize=10).json()
        assert (body["hasMore"], body["isTruncated"]) == (True, True)


def test_permanent_storage_query_reports_hwm(authed: Kit) -> None:
    """PermanentStorage queries return permanentStorageHwmDate."""
    authed.send_invoices(["H/1"])
    now = datetime.now(UTC)
    body = _query(
        authed,
        {
            "dateRange": {
                "dateType": "PermanentStorage",
                "from": (now - timedelta(days=1)).isoformat(),
                "restrictToPermanentStorageHwmDate": True,
            }
        },
    ).json()
    assert body["permanentStorageHwmDate"]
    assert len(body["invoices"]) == 1


def test_from_after_hwm_is_21183(authed: Kit) -> None:
    """With restrictToPermanentStorageHwmDate, a future from is 21183."""
    now = datetime.now(UTC)
    response = _query(
        authed,
        {
            "dateRange": {
                "dateType": "PermanentStorage",
                "from": (now + timedelta(days=1)).isoformat(),
                "to": (now + timedelta(days=2)).isoformat(),
                "restrictToPermanentStorageHwmDate": True,
            }
        },
    )
    assert exception_code(response) == 21183


def _range_query(kit: Kit, start: str, end: str):
    filters = {"dateRange": {"dateType": "Issue", "from": start, "to": end}}
    return _query(kit, filters)


def test_range_over_three_months_is_21405(authed: Kit) -> None:
    """A date range longer than 3 months (here by one second) is 21405."""
    response = _range_query(
        authed, "2026-01-10T00:00:00+00:00", "2026-04-10T00:00:01+00:00"
    )
    assert exception_code(response) == 21405


def test_range_of_three_months_is_accepted(authed: Kit) -> None:
    """A date range of exactly 3 calendar months is accepted."""
    response = _range_query(
        authed, "2026-01-10T00:00:00+00:00", "2026-04-10T00:00:00+00:00"
    )
    assert response.status_code == 200


def test_range_without_offset_is_warsaw_time(env: SimulatorEnv, authed: Kit) -> None:
    """dateRange values without an offset are read as Europe/Warsaw local time."""
    # The spec's date-time format wants an offset; KSeF accepts dates without one.
    env.allow_invalid_requests()
    authed.send_invoices(["W/1"])
    utc_now = datetime.now(UTC).replace(tzinfo=None)
    naive = {
        "dateType": "Invoicing",
        "from": (utc_now - timedelta(minutes=30)).isoformat(),
        "to": (utc_now + timedelta(minutes=30)).isoformat(),
    }

    # Warsaw is one or two hours ahead of UTC, so this window ended before the send.
    body = _query(authed, {"dateRange": naive}).json()
    assert body["invoices"] == []
