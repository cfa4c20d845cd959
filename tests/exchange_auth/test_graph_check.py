"""graph_check: exchange_auth's own Graph reads, through GraphClient, against the emulator."""

from exchange_auth import graph_check

DEMO_ROOMS = {"atlas@contoso.example", "borealis@contoso.example", "cosmos@contoso.example"}


def test_a_tenant_with_more_rooms_than_one_page_lists_them_all(provider, emulator):
    more = {f"room{n:03d}@contoso.example" for n in range(120)}
    emulator.seed({"rooms": [{"upn": upn} for upn in sorted(more)]})
    emulator.clear_request_log()

    report = graph_check.test_connection(provider)

    assert report.ok and "123 room(s) found" in report.message
    assert set(report.rooms) == DEMO_ROOMS | more
    # Graph pages rooms 100 at a time: the rest came from following @odata.nextLink.
    pages = [e for e in emulator.request_log()["entries"] if e["path"] == "/v1.0/places/microsoft.graph.room"]
    assert len(pages) == 2
