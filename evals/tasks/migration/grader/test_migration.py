"""Grades the phone migration: upgrade on a populated table, downgrade, and migrating at startup."""

import psycopg
from alembic import command
from conftest import columns
from fastapi.testclient import TestClient


def populate_0001(alembic_config, pg_url: str) -> None:
    command.upgrade(alembic_config, "0001")
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO customer (email) VALUES ('ann@example.com'), ('bob@example.com')")


def test_upgrade_adds_phone_to_an_existing_table(alembic_config, head, pg_url):
    populate_0001(alembic_config, pg_url)
    command.upgrade(alembic_config, "head")
    found = columns(pg_url, "customer")
    assert "phone" in found, f"after `alembic upgrade head` customer has columns {sorted(found)}: no phone"
    assert found["phone"][1:] == (32, "YES"), (
        f"customer.phone is {found['phone']}, not a nullable varchar(32)"
    )
    with psycopg.connect(pg_url) as conn:
        kept = conn.execute("SELECT count(*) FROM customer WHERE phone IS NULL").fetchone()[0]
    assert kept == 2, f"{kept} of the 2 existing customers are left after the upgrade"


def test_downgrade_removes_phone_and_keeps_rows(alembic_config, head, pg_url):
    populate_0001(alembic_config, pg_url)
    command.upgrade(alembic_config, "head")
    command.downgrade(alembic_config, "-1")
    found = columns(pg_url, "customer")
    assert found and "phone" not in found, (
        f"after `alembic downgrade -1` customer has columns {sorted(found)}"
    )
    with psycopg.connect(pg_url) as conn:
        kept = conn.execute("SELECT count(*) FROM customer").fetchone()[0]
    assert kept == 2, f"{kept} of the 2 customers are left after the downgrade"
    command.upgrade(alembic_config, "head")  # and it can be applied again


def test_service_migrates_an_empty_database_at_startup(head, pg_url):
    from app.main import app

    try:
        with TestClient(app) as client:
            created = client.post("/customers", json={"email": "cy@example.com", "phone": "+1 555 0100"})
            fetched = client.get(f"/customers/{created.json().get('id')}")
    except Exception as exc:
        raise AssertionError(f"starting the service raised {type(exc).__name__}: {exc}") from exc
    assert created.status_code == 201, f"POST /customers answered {created.status_code}: {created.text}"
    assert fetched.json().get("phone") == "+1 555 0100", f"GET /customers/{{id}} answered {fetched.json()}"
    with psycopg.connect(pg_url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall() if exists else None
    assert exists, "the service started without running the migrations: there is no alembic_version table"
    assert version == [(head,)], f"after startup alembic_version holds {version}, not the head {head!r}"
