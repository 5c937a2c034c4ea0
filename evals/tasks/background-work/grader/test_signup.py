"""Grades the background welcome mail: answered first, recorded after, failures logged, kept over shutdown."""

import logging

import httpx2
from app.main import app
from conftest import serve, wait_for, welcome_sent


def app_errors(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """ERROR records, except asyncio's note about a task collected with an exception nobody retrieved."""
    return [r for r in records if r.levelno >= logging.ERROR and r.name != "asyncio"]


def sign_up(url: str, email: str) -> int:
    response = httpx2.post(f"{url}/signups", json={"email": email}, timeout=5)
    assert response.status_code == 201, f"POST /signups answered {response.status_code}: {response.text}"
    return int(response.json()["id"])


def test_answers_first_and_records_the_mail_after(upstream):
    with serve(app, f"{upstream.url}/slow/0.6") as url:
        signup_id = sign_up(url, "ann@example.com")
        mails = upstream.served("/slow/")
        finished_before = [m for m in mails if m.end is not None]
        sent = wait_for(lambda: welcome_sent(signup_id), 3.0)
    assert not finished_before, "POST /signups answered only after the 0.6 s mail call had finished"
    assert upstream.served("/slow/"), "no welcome mail was sent"
    assert sent, (
        f"the mail was sent but 3 s later signup {signup_id} has welcome_sent={welcome_sent(signup_id)}"
    )


def test_failed_mail_keeps_the_signup_and_is_logged(upstream, caplog):
    caplog.set_level(logging.WARNING)
    with serve(app, f"{upstream.url}/status/503") as url:
        signup_id = sign_up(url, "bob@example.com")
        logged = wait_for(lambda: app_errors(caplog.records), 2.0)
        again = httpx2.post(f"{url}/signups", json={"email": "bob2@example.com"}, timeout=5).status_code
    assert upstream.served("/status/503"), "no welcome mail was attempted"
    sent = welcome_sent(signup_id)
    assert sent is not None, (
        f"the client got 201 but signup {signup_id} is not in the database after the mail failed"
    )
    assert sent is False, f"signup {signup_id} is marked welcome_sent although the mail failed"
    never_retrieved = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert logged, "the mail service answered 503 and nothing logged an ERROR within 2 s" + (
        " (only asyncio's garbage-collection notice 'Task exception was never retrieved')"
        if never_retrieved
        else ""
    )
    assert again == 201, f"after a failed mail the next POST /signups answered {again}"


def test_mail_accepted_before_shutdown_is_still_sent(upstream, server_connections):
    with serve(app, f"{upstream.url}/slow/0.4") as url:
        signup_id = sign_up(url, "cy@example.com")
    # the server has shut down gracefully
    assert welcome_sent(signup_id), (
        f"signup {signup_id} was accepted just before shutdown; after shutdown welcome_sent={welcome_sent(signup_id)}"
    )
    left = server_connections(within=1.0)
    assert not left, f"{len(left)} database connection(s) still open after shutdown"
