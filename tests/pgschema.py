"""PostgreSQL for tests: each test gets a fresh schema on the server, dropped afterwards.

The server is $AGGREGATOR_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
Where it cannot be reached, the tests that need it are skipped, naming the URL tried. A
schema per test (``CREATE SCHEMA t_<random>``, selected through the URL's
``options=-csearch_path=...``) keeps tests apart, also under pytest-xdist, and costs
milliseconds where a database per test would cost a CREATE DATABASE.

    from pgschema import pg_url  # the fixture: a URL whose search_path is a fresh schema
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest

SERVER = os.environ.get("AGGREGATOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def unreachable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        psycopg.connect(SERVER, connect_timeout=3).close()
    except psycopg.Error as e:
        return f"no PostgreSQL at {SERVER} (set AGGREGATOR_TEST_POSTGRES_URL): {str(e).strip()[:120]}"
    return None


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


def create_schema() -> tuple[str, str]:
    """(schema, URL using it)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    return schema, with_schema(SERVER, schema)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(SERVER, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def pg_url() -> Iterator[str]:
    why = unreachable()
    if why:
        pytest.skip(why)
    schema, url = create_schema()
    try:
        yield url
    finally:
        drop_schema(schema)
