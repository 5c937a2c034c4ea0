"""The loopback upstream that client examples call."""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterator

import pytest

from fenceproof.upstream import Upstream


@pytest.fixture(scope="module")
def client() -> Iterator[http.client.HTTPConnection]:
    with Upstream() as up:
        assert up.url.startswith("http://127.0.0.1:")
        conn = http.client.HTTPConnection(up.url.removeprefix("http://"), timeout=10)
        yield conn  # one keep-alive connection for every request below
        conn.close()


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, object]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def test_routes(client: http.client.HTTPConnection, capsys: pytest.CaptureFixture[str]) -> None:
    assert get(client, "/items/7") == (200, {"id": 7, "name": "item-7"})
    assert get(client, "/slow?seconds=0.05") == (200, {"slept": 0.05})
    assert get(client, "/slow?seconds=-3") == (200, {"slept": 0.0})
    assert get(client, "/status/503") == (503, {"status": 503})
    assert get(client, "/status/204") == (204, None)
    assert get(client, "/nothing/here") == (404, {"detail": "not found"})
    assert get(client, "/items/abc") == (404, {"detail": "not found"})
    sys.stderr.flush()
    assert capsys.readouterr().err == ""  # no access log lines


def test_close_frees_the_port() -> None:
    with Upstream() as up:
        port = int(up.url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=5).connect()
