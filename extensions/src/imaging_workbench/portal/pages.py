"""The portal's pages: the catalogue, the request form, a request, the steward's review and "my
access". Forms post back to the pages (with the XSRF token); a wrong field re-shows its form with
the message next to the field (status 400), other refusals show an error page."""

from tornado import web

from .base import PortalHandler, Refused
from .catalogue import FILTERS


def whole_number(text: str | None):
    """`text` as an int when it is one, None when empty, else the text itself, which the catalog
    then refuses naming its field."""
    text = (text or "").strip()
    try:
        return int(text)
    except ValueError:
        return text or None


class Page(PortalHandler):
    """A page: refusals and failures are shown in the hub's look, with the catalog's hint."""

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        self.render_page("portal_error.html", status_code, code=status_code,
                         message=getattr(error, "log_message", None) or self._reason, hint=getattr(error, "hint", None))

    def form(self, key: str) -> str:
        return self.get_body_argument(key, "")

    def back_to(self, path: str):
        self.redirect(self.hub_auth.base_url + path, status=303)

    def send_attachment(self, path, filename: str) -> None:
        """The file's bytes as an attachment of plain bytes: a browser never renders what a user
        wrote (no HTML or script from their files runs on the portal's origin)."""
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                self.write(chunk)
        self.finish()

    async def show_request(self, request_id: int, errors: dict | None = None, status: int = 200):
        """A request's page; `errors`: dataset id -> {field: message} for its decision forms."""
        request = await self.run(self.portal.request, self.user, request_id)
        self.render_page("request_detail.html", status, request=request, errors=errors or {})


class CataloguePage(Page):
    @web.authenticated
    async def get(self):
        filters = {key: self.get_argument(key, "") for key in FILTERS}
        q = self.get_argument("q", "")
        found = await self.run(self.portal.catalogue, q, **filters)
        self.render_page("catalogue.html", q=q, filters=filters, **found)


class RequestPage(Page):
    async def show(self, values: dict, errors: dict | None = None, status: int = 200):
        found = await self.run(self.portal.catalogue)
        self.render_page("request.html", status, datasets=found["datasets"], values=values, errors=errors or {},
                         max_days=self.portal.max_days)

    @web.authenticated
    async def get(self):
        await self.show({"datasets": self.get_arguments("datasets"), "mode": "sandbox"})

    @web.authenticated
    async def post(self):
        values = {"datasets": self.get_body_arguments("datasets"), "project": self.form("project"),
                  "purpose": self.form("purpose"), "mode": self.form("mode"), "days": whole_number(self.form("days"))}
        try:
            made = await self.run(self.portal.submit, self.user, **values)
        except Refused as e:
            if e.status_code != 400:
                raise
            await self.show(values, e.fields, 400)
            return
        self.back_to(f"requests/{made['id']}")


class RequestDetailPage(Page):
    @web.authenticated
    async def get(self, request_id):
        await self.show_request(int(request_id))


class DecidePage(Page):
    @web.authenticated
    async def post(self, request_id):
        approve = self.form("decision") == "approve"
        conditions = {"text": self.form("conditions_text"), "federated_only": bool(self.form("federated_only")),
                      "no_weights": bool(self.form("no_weights")), "min_count": whole_number(self.form("min_count"))}
        try:
            await self.run(self.portal.decide, self.user, int(request_id), self.form("dataset_id"), approve,
                           whole_number(self.form("days")), conditions if approve else None, self.form("reason"))
        except Refused as e:
            if e.status_code != 400:
                raise
            await self.show_request(int(request_id), {self.form("dataset_id"): e.fields}, 400)
            return
        self.back_to(self.form("next") if self.form("next") == "review" else f"requests/{request_id}")


class RespondPage(Page):
    @web.authenticated
    async def post(self, request_id):
        await self.run(self.portal.respond, self.user, int(request_id), self.form("answer") == "accept")
        self.back_to("access")


class WithdrawPage(Page):
    @web.authenticated
    async def post(self, request_id):
        await self.run(self.portal.withdraw, self.user, int(request_id))
        self.back_to(f"requests/{request_id}")


class ReviewPage(Page):
    @web.authenticated
    async def get(self):
        self.render_page("review.html", items=await self.run(self.portal.review, self.user))


class AccessPage(Page):
    @web.authenticated
    async def get(self):
        access = await self.run(self.portal.access, self.user)
        requests = await self.run(self.portal.my_requests, self.user)
        self.render_page("access.html", requests=requests, **access)


PAGE_ROUTES = [
    (r"", CataloguePage), (r"request", RequestPage), (r"requests/([0-9]+)", RequestDetailPage),
    (r"requests/([0-9]+)/decide", DecidePage), (r"requests/([0-9]+)/respond", RespondPage),
    (r"requests/([0-9]+)/withdraw", WithdrawPage), (r"review", ReviewPage), (r"access", AccessPage),
]
