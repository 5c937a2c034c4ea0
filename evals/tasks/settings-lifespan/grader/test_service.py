"""Grades settings and lifespan: .env is read, /health answers 503 for a lost database, nothing stays open
after shutdown and a second start works, and no deprecation warnings."""

import time
import warnings

from conftest import Relay, deprecations, fresh_app
from fastapi.testclient import TestClient


def start_failure(exc: Exception) -> AssertionError:
    return AssertionError(f"the service failed to start: {type(exc).__name__}: {exc}")


def test_database_url_from_a_dotenv_file(monkeypatch, solution_dir, database_url):
    monkeypatch.delenv("DATABASE_URL")
    dotenv = solution_dir / ".env"
    dotenv.write_text(f"DATABASE_URL={database_url}\nPOOL_SIZE=2\n", encoding="utf-8")
    try:
        with TestClient(fresh_app().app, raise_server_exceptions=False) as client:
            health = client.get("/health")
    except Exception as exc:
        raise AssertionError(f"with DATABASE_URL only in .env: {type(exc).__name__}: {exc}") from exc
    finally:
        dotenv.unlink()
    assert health.status_code == 200, (
        f"with DATABASE_URL only in .env, GET /health answered {health.status_code}"
    )


def test_health_answers_503_when_the_database_is_gone(monkeypatch):
    relay = Relay()
    monkeypatch.setenv("DATABASE_URL", relay.url)
    try:
        with TestClient(fresh_app().app, raise_server_exceptions=False) as client:
            before = client.get("/health")
            relay.cut()  # the database becomes unreachable
            start = time.monotonic()
            after = client.get("/health")
            took = time.monotonic() - start
    except Exception as exc:
        raise start_failure(exc) from exc
    assert before.status_code == 200 and before.json() == {"database": "ok"}, (
        f"GET /health answered {before.status_code} {before.text} with the database up"
    )
    assert after.status_code == 503, f"with the database unreachable GET /health answered {after.status_code}"
    assert took < 5, f"with the database unreachable GET /health took {took:.1f} s"


def test_nothing_left_open_and_a_second_start_works(server_connections):
    module = fresh_app()
    answers = []
    try:
        for _ in range(2):  # our tests start and stop the app repeatedly in one process
            with TestClient(module.app, raise_server_exceptions=False) as client:
                answers.append((client.get("/health").status_code, client.get("/items/1").status_code))
            left = server_connections(within=1.0)
            assert not left, f"{len(left)} database connection(s) still open 1 s after the service stopped"
    except AssertionError:
        raise
    except Exception as exc:
        raise start_failure(exc) from exc
    assert answers == [(200, 200), (200, 200)], f"(/health, /items/1) answered {answers} in two runs"


def test_no_deprecation_warnings():
    caught: list[warnings.WarningMessage] = []
    module = fresh_app(caught)
    with warnings.catch_warnings(record=True) as serving:
        warnings.simplefilter("always")
        with TestClient(module.app, raise_server_exceptions=False) as client:
            client.get("/health")
            client.get("/items/1")
    found = deprecations(caught) + deprecations(serving)
    assert not found, f"the service emitted {len(found)} deprecation warning(s): {found[0]}"
