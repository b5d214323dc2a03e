"""The identity provider's endpoints, from its OpenID Connect discovery document.

Fetched at the first login, not at the hub's start (a provider that is down must not keep the hub
from starting), and kept for `ttl` seconds. The document must name the configured issuer: one
that names another would send users' browsers, and our client secret, elsewhere.
"""

import json
import time
from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

WELL_KNOWN = "/.well-known/openid-configuration"
REQUIRED = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint")


class ProviderUnavailable(Exception):
    """The provider cannot be reached, or its discovery document is unusable; says which, in words."""


@dataclass(frozen=True)
class ProviderEndpoints:
    authorize_url: str
    token_url: str
    userinfo_url: str
    end_session_url: str | None


class Discovery:
    """The endpoints of the provider at `issuer`, fetched when first needed and again after `ttl` s."""

    def __init__(self, issuer: str, ttl: float, timeout: float = 10, validate_cert: bool = True):
        self.issuer = issuer.rstrip("/")
        self.ttl = ttl
        self.timeout = timeout
        self.validate_cert = validate_cert
        self._endpoints: ProviderEndpoints | None = None
        self._fetched_at = 0.0

    @property
    def cached(self) -> ProviderEndpoints | None:
        """The endpoints last fetched, however old (None before the first fetch)."""
        return self._endpoints

    async def endpoints(self) -> ProviderEndpoints:
        """The provider's endpoints, fetched again when older than the ttl.

        Raises:
            ProviderUnavailable: the provider did not answer, or its document is not usable.
        """
        if self._endpoints is None or time.monotonic() - self._fetched_at >= self.ttl:
            self._endpoints = self._parse(await self._fetch())
            self._fetched_at = time.monotonic()
        return self._endpoints

    async def _fetch(self) -> dict:
        url = self.issuer + WELL_KNOWN
        try:
            response = await AsyncHTTPClient().fetch(url, request_timeout=self.timeout, connect_timeout=self.timeout,
                                                     validate_cert=self.validate_cert)
        except HTTPClientError as e:
            raise ProviderUnavailable(f"the identity provider at {self.issuer} answered its discovery document "
                                      f"({url}) with HTTP {e.code}") from e
        except OSError as e:
            raise ProviderUnavailable(f"the identity provider at {self.issuer} cannot be reached ({e})") from e
        try:
            return json.loads(response.body)
        except ValueError as e:
            raise ProviderUnavailable(f"the identity provider's discovery document ({url}) is not JSON") from e

    def _parse(self, document: dict) -> ProviderEndpoints:
        if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != self.issuer:
            named = document.get("issuer") if isinstance(document, dict) else None
            raise ProviderUnavailable(f"the discovery document at {self.issuer} names the issuer {named!r}, "
                                      f"not {self.issuer!r}: check oidc.issuer in the deployment settings")
        missing = [key for key in REQUIRED if not document.get(key)]
        if missing:
            raise ProviderUnavailable(f"the identity provider's discovery document lacks {', '.join(missing)}")
        return ProviderEndpoints(document["authorization_endpoint"], document["token_endpoint"],
                                 document["userinfo_endpoint"], document.get("end_session_endpoint"))
