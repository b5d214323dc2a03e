"""The provider's endpoints from its discovery document (hub/oidc_discovery.py), against a real
OpenID Connect provider on 127.0.0.1 (tests/oidc_provider.py): fetched when first needed, kept
for the ttl, refused when the document names another issuer, a clear error when it is down."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import werkzeug.serving

from imaging_workbench.hub.oidc_discovery import WELL_KNOWN, Discovery, ProviderUnavailable

from ...oidc_provider import Provider


@pytest.fixture(scope="module")
def provider():
    p = Provider().start()
    yield p
    p.stop()


def run(coroutine):
    """asyncio.run on a thread of its own: a test that ran before in this process (Playwright's sync
    API) may have left an event loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def fetches(provider) -> int:
    return provider.gate.paths.count(WELL_KNOWN)


def test_the_endpoints_come_from_the_document_and_are_kept_for_the_ttl(provider):
    discovery, before = Discovery(provider.url, ttl=3600), fetches(provider)
    assert discovery.cached is None  # nothing is fetched before it is needed
    endpoints = run(discovery.endpoints())
    assert endpoints.authorize_url == f"{provider.url}/oauth2/authorize"
    assert endpoints.token_url == f"{provider.url}/oauth2/token"
    assert endpoints.userinfo_url == f"{provider.url}/userinfo"
    assert endpoints.end_session_url == f"{provider.url}/oauth2/end_session"
    assert run(discovery.endpoints()) == endpoints and fetches(provider) == before + 1

    again = Discovery(provider.url + "/", ttl=0)  # a trailing slash names the same issuer
    run(again.endpoints())
    run(again.endpoints())
    assert fetches(provider) == before + 3  # an expired copy is fetched again


def test_a_document_naming_another_issuer_is_refused(provider):
    """A server at the configured issuer that answers with the real provider's document (a copy, a
    proxy, an attacker's host) would send browsers and our secret elsewhere."""
    document = requests.get(provider.url + WELL_KNOWN, timeout=10).content

    def copy(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [document]

    server = werkzeug.serving.make_server("127.0.0.1", 0, copy, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        impostor = Discovery(f"http://127.0.0.1:{server.server_port}", ttl=3600)
        with pytest.raises(ProviderUnavailable, match=rf"names the issuer '{provider.url}'.*check oidc.issuer"):
            run(impostor.endpoints())
        assert impostor.cached is None
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ProviderUnavailable, match="answered its discovery document .* with HTTP 404"):
        run(Discovery(f"{provider.url}/realms/none", ttl=3600).endpoints())


def test_a_provider_that_is_down_is_named_and_nothing_is_cached(provider):
    discovery = Discovery(provider.url, ttl=3600)
    with provider.down(), pytest.raises(ProviderUnavailable, match=rf"{provider.url} cannot be reached"):
        run(discovery.endpoints())
    assert discovery.cached is None
    assert run(discovery.endpoints()).token_url == f"{provider.url}/oauth2/token"  # back up: it works
