"""The metadata store conformance suite against ``RestStore``: every capability over HTTP,
through a real server (``gristmill server start``, uvicorn, its own process) on loopback,
backed by a fresh SQLite database for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gristmill.testing.conformance import MetadataStoreConformance
from gristmill.testing.server import running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class TestRestMetadataStore(MetadataStoreConformance):
    @pytest.fixture
    def metadata_store_url(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
        with running_server() as server:
            monkeypatch.setenv("GRISTMILL_API_TOKEN", server.token("editor"))
            yield server.url
