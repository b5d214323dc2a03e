"""The audit trail for operators and stewards: as a page (`audit`), as CSV (`audit.csv`) and as
JSON (`api/audit`), with the same filters as query arguments (dataset, action, actor, since,
until, q, limit) and the same scope (audit_view.py). Other users get 403."""

import csv
import io
from urllib.parse import urlencode

from tornado import web

from ..clock import utcnow
from .api import ApiHandler
from .audit_view import FILTERS, compact
from .base import Refused
from .pages import Page


def filter_args(handler: web.RequestHandler) -> dict[str, str]:
    return {key: handler.get_argument(key, "") for key in FILTERS}


class AuditPage(Page):
    """The filter form, the verification badge and the rows; a wrong filter re-shows the form
    with the message at its field (400)."""

    @web.authenticated
    async def get(self):
        given = filter_args(self)
        trail = self.portal.audit
        try:
            found = await self.run(trail.search, self.user, given, choices=True)
        except Refused as e:
            if e.status_code != 400:
                raise
            choices = await self.run(trail.choices, self.user)
            self.render_page("audit.html", 400, given=given, errors=e.fields, rows=None, **choices)
            return
        csv_url = "audit.csv?" + urlencode({key: value for key, value in given.items() if value})
        self.render_page("audit.html", given=given, errors={}, compact=compact, csv_url=csv_url, **found)


class AuditCsv(Page):
    """The rows the page shows for the same filters, as a CSV download."""

    @web.authenticated
    async def get(self):
        rows = await self.run(self.portal.audit.csv_rows, self.user, filter_args(self))
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="audit-{utcnow():%Y%m%d-%H%M%S}.csv"')
        self.finish(out.getvalue())


class AuditApi(ApiHandler):
    async def get(self):
        self.send(await self.run(self.portal.audit.search, self.user, filter_args(self)))


AUDIT_ROUTES = [(r"audit", AuditPage), (r"audit\.csv", AuditCsv), (r"api/audit", AuditApi)]
