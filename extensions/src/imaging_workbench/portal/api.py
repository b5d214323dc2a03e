"""The portal's REST API (JSON in and out); service.py lists the routes and what each takes."""

import json

from tornado import web

from .base import ACCESS_SCOPE, PortalHandler, Refused
from .catalogue import FILTERS


class ApiHandler(PortalHandler):
    """JSON for callers with a token; errors are {"error", "hint", "fields"}."""

    def prepare(self):
        super().prepare()
        if self.current_user is None:
            raise web.HTTPError(403, f"send a JupyterHub token with scope {ACCESS_SCOPE}")

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        body = {"error": getattr(error, "log_message", None) or self._reason,
                "hint": getattr(error, "hint", None), "fields": getattr(error, "fields", {})}
        self.send(body, status_code)

    def body(self, *required: str) -> dict:
        """The JSON object sent, refused (400) naming what is missing or not JSON."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise Refused(400, "the request body is not JSON", "send a JSON object") from None
        if not isinstance(body, dict):
            raise Refused(400, "the request body must be a JSON object", f"send {{{', '.join(required)}, ...}}")
        missing = {key: f"{key}: is required" for key in required if key not in body}
        if missing:
            raise Refused(400, f"missing {', '.join(missing)}", "see the API in portal/service.py", missing)
        return body


def yes_or_no(body: dict, key: str) -> bool:
    """`body[key]` when it is true or false; anything else refused naming `key` (a string "false"
    must not count as yes)."""
    if not isinstance(body[key], bool):
        raise Refused(400, f"{key}: must be true or false, not {body[key]!r}", None,
                      {key: f"{key}: must be true or false"})
    return body[key]


class DatasetsApi(ApiHandler):
    async def get(self):
        filters = {key: self.get_argument(key, "") for key in FILTERS}
        found = await self.run(self.portal.catalogue, self.get_argument("q", ""), **filters)
        self.send(found["datasets"])


class RequestsApi(ApiHandler):
    async def get(self):
        self.send(await self.run(self.portal.my_requests, self.user))

    async def post(self):
        b = self.body("datasets", "project", "purpose", "mode", "days")
        made = await self.run(self.portal.submit, self.user, b["datasets"], b["project"], b["purpose"], b["mode"],
                              b["days"])
        self.send(made, 201)


class RequestApi(ApiHandler):
    async def get(self, request_id):
        self.send(await self.run(self.portal.request, self.user, int(request_id)))


class DecisionsApi(ApiHandler):
    async def post(self, request_id):
        b = self.body("dataset_id", "approve")
        item = await self.run(self.portal.decide, self.user, int(request_id), b["dataset_id"], yes_or_no(b, "approve"),
                              b.get("days"), b.get("conditions"), b.get("reason", ""))
        self.send(item)


class ResponseApi(ApiHandler):
    async def post(self, request_id):
        b = self.body("accept")
        self.send(await self.run(self.portal.respond, self.user, int(request_id), yes_or_no(b, "accept")))


class WithdrawApi(ApiHandler):
    async def post(self, request_id):
        self.send(await self.run(self.portal.withdraw, self.user, int(request_id)))


class ReviewApi(ApiHandler):
    async def get(self):
        self.send(await self.run(self.portal.review, self.user))


class AccessApi(ApiHandler):
    async def get(self):
        self.send(await self.run(self.portal.access, self.user))


API_ROUTES = [
    (r"api/datasets", DatasetsApi), (r"api/requests", RequestsApi), (r"api/requests/([0-9]+)", RequestApi),
    (r"api/requests/([0-9]+)/decisions", DecisionsApi), (r"api/requests/([0-9]+)/response", ResponseApi),
    (r"api/requests/([0-9]+)/withdraw", WithdrawApi), (r"api/review", ReviewApi), (r"api/access", AccessApi),
]
