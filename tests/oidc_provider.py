"""A real OpenID Connect provider on 127.0.0.1 for the login tests, and a browser-like login through it.

The provider is oidc-provider-mock (authlib's authorization server behind Flask): discovery, an
authorization form, a token endpoint that checks the registered client's secret, userinfo,
refresh tokens, end-session. It requires client registration, so a wrong secret is refused for
real. Its own grant ignores PKCE, so `PKCEGate` in front of it does what a provider that supports
PKCE does: it keeps each authorization code's `code_challenge` and refuses a token request whose
`code_verifier` does not hash to it; every exchange is kept in `exchanges` for the tests to read.
"""

import base64
import hashlib
import io
import json
import threading
from contextlib import contextmanager
from urllib.parse import parse_qs, quote, urlparse

import requests
import werkzeug.serving

from .waiting import free_port


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class PKCEGate:
    """WSGI middleware: records authorization codes' challenges, checks verifiers at the token endpoint."""

    def __init__(self, app):
        self.app = app
        self.challenges: dict[str, tuple[str | None, str | None]] = {}
        self.exchanges: list[dict] = []
        self.paths: list[str] = []  # every request's path, in order

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
        self.paths.append(path)
        if path == "/oauth2/authorize" and method == "POST":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            asked = (query.get("code_challenge", [None])[0], query.get("code_challenge_method", [None])[0])

            def keep_code(status, headers, exc_info=None):
                location = dict((k.lower(), v) for k, v in headers).get("location", "")
                code = parse_qs(urlparse(location).query).get("code", [None])[0]
                if code:
                    self.challenges[code] = asked
                return start_response(status, headers, exc_info)

            return self.app(environ, keep_code)
        if path == "/oauth2/token" and method == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if form.get("grant_type") == "authorization_code":
                challenge, how = self.challenges.pop(form.get("code", ""), (None, None))
                verifier = form.get("code_verifier")
                self.exchanges.append({"code_challenge": challenge, "code_challenge_method": how,
                                       "code_verifier": verifier})
                if not (challenge and how == "S256" and verifier and s256(verifier) == challenge):
                    return self._refuse(start_response, "PKCE code_verifier does not match the code_challenge")
        return self.app(environ, start_response)

    @staticmethod
    def _refuse(start_response, why: str):
        body = json.dumps({"error": "invalid_grant", "error_description": why}).encode()
        start_response("400 BAD REQUEST", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


class Provider:
    """oidc-provider-mock on 127.0.0.1:<port>, requiring client registration, behind PKCEGate."""

    def __init__(self):
        import oidc_provider_mock

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gate = PKCEGate(oidc_provider_mock.app(require_client_registration=True))
        self._server = None

    def start(self) -> "Provider":
        self._server = werkzeug.serving.make_server("127.0.0.1", self.port, self.gate, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    @contextmanager
    def down(self):
        """The provider unreachable (connection refused) inside the block; up again, same state, after."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """Register a confidential client (secret sent in the token request's form): (client_id, secret)."""
        r = requests.post(f"{self.url}/oauth2/clients", timeout=10, json={
            "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_post"})
        r.raise_for_status()
        return r.json()["client_id"], r.json()["client_secret"]

    def set_user(self, sub: str, **claims) -> None:
        """The claims the provider gives `sub` from now on (userinfo reads them at each call)."""
        requests.put(f"{self.url}/users/{quote(sub, safe='')}", json=claims, timeout=10).raise_for_status()


def login(hub_url: str, sub: str) -> tuple[requests.Session, requests.Response]:
    """Sign `sub` in to the hub through the provider as a browser does: the hub's login redirect,
    the provider's form, back to the hub's callback. Returns the session and the last response."""
    http = requests.Session()
    to_provider = http.get(f"{hub_url}/hub/oauth_login?next=/hub/home", allow_redirects=False, timeout=30)
    if to_provider.status_code != 302:
        return http, to_provider
    authorize = to_provider.headers["Location"]
    back = http.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=30)
    assert back.status_code == 302, back.text
    return http, http.get(back.headers["Location"], timeout=60)
