"""Grades the pricing client: connections reused and bounded, closed at shutdown, a new loop, no deprecations."""

import warnings

import httpx2
from conftest import deprecations, serve

IDS = "1,2,3,4,5,6"
WANT = [{"n": n} for n in range(1, 7)]


def get_prices(url: str) -> tuple[int, object]:
    response = httpx2.get(f"{url}/prices", params={"ids": IDS}, timeout=10)
    return response.status_code, response.json() if response.status_code == 200 else response.text


def test_connections_are_reused_and_bounded(imported, relay):
    module, _ = imported
    with serve(module.app) as url:
        answers = [get_prices(url) for _ in range(3)]
    assert all(a == (200, WANT) for a in answers), f"GET /prices?ids={IDS} answered {answers[0]}"
    assert relay.accepted <= 4, (
        f"the pricing service saw {relay.accepted} connections for 3 requests of 6 calls each (at most 4 allowed)"
    )


def test_connections_are_closed_at_shutdown(imported, relay):
    module, _ = imported
    with serve(module.app) as url:
        status, _ = get_prices(url)
    left = relay.open_after(1.0)
    assert status == 200, f"GET /prices answered {status}"
    assert left == 0, (
        f"{left} connection(s) to the pricing service still open 1 s after the service shut down"
    )


def test_service_can_be_started_again_in_the_same_process(imported, relay):
    module, _ = imported
    statuses = []
    for _ in range(2):  # a second server run has a new event loop, as in tests or after a reload
        with serve(module.app) as url:
            statuses.append(get_prices(url))
    assert statuses[1][0] == 200, f"after a restart in the same process GET /prices answered {statuses[1]}"


def test_no_deprecation_warnings(imported, relay):
    module, at_import = imported
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with serve(module.app) as url:
            get_prices(url)
    found = deprecations(at_import) + deprecations(caught)
    assert not found, f"the service emitted {len(found)} deprecation warning(s): {found[0]}"
