"""The airlock from a real sandbox and in a real browser (issue 13's acceptance):
`workbench.release()` in alice's sandbox files a CSV table whose small cell the automatic check
flags; two output checkers ask for changes in the portal; alice corrects the table in her sandbox
and files it again; both checkers approve it, one releases it; alice downloads it in her browser;
the operator's audit page shows every step. And the attack: a symlink in the outbox to the host's
/etc/shadow, sent past the client's own check straight to the portal's API, is refused.

Each person has their own context of headless Chromium; a request off 127.0.0.1 fails the test.
Every page is kept as a screenshot among the test artefacts (tests/screenshots.py).
"""

import json

import pytest

from imaging_workbench.catalog import accounts
from imaging_workbench.portal.base import SERVICE_NAME

from ..browser.servers import OfflineGuard, signed_in_page
from ..screenshots import save_screenshot
from .conftest import CHECKERS, run_in

pytestmark = [pytest.mark.docker, pytest.mark.browser]

PORTAL = f"/services/{SERVICE_NAME}/"
OPERATOR = "admin"
PASSWORDS = {"alice": "alice-password-123", **{c: f"{c}-password-123" for c in (*CHECKERS, OPERATOR)}}
SMALL_CELL = "band,n\\n0-39,3\\n40-59,25\\n60+,31\\n"
CORRECTED = "band,n\\n0-59,28\\n60+,31\\n"
RELEASE = '''
import json, imaging_workbench as workbench
r = workbench.release(["age.csv"], statement="Age bands of lung-a", controls="none", datasets=["lung-a"],
                      count_columns={"age.csv": ["n"]})
print(json.dumps({"id": r["id"], "state": r["state"], "findings": r["files"][0]["findings"]}))
'''
# Past the client's check, straight to the API with the sandbox's own token.
FORGED = '''
import json, os, requests
r = requests.post(os.environ["WORKBENCH_PORTAL_URL"] + "api/releases", timeout=60,
                  headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]},
                  json={"files": ["shadow.csv"], "statement": "s", "controls": "c", "datasets": ["lung-a"]})
print(json.dumps({"status": r.status_code, **r.json()}))
'''


@pytest.fixture(scope="module")
def people(alice):
    with alice.ctx.session() as s:
        for name in (*CHECKERS, OPERATOR):
            if s.get(accounts.Account, name) is None:
                accounts.add_account(s, "steward", name, PASSWORDS[name])
    return alice


@pytest.fixture
def signed_in(people, chromium):
    """signed_in(name) -> a page of `name`, signed in through the hub's login page."""
    pages, guard = [], OfflineGuard()

    def open_as(name):
        pages.append(signed_in_page(chromium, guard, people.url, name, PASSWORDS[name]))
        return pages[-1]

    yield open_as
    for page in pages:
        page.context.close()
    assert not guard.blocked, f"a page tried to leave 127.0.0.1: {guard.blocked}"


def in_sandbox(docker, script: str) -> dict:
    code, out = run_in(docker, "alice", f"cd ~ && python3 - <<'EOF'\n{script}\nEOF", timeout=120)
    assert code == 0, out
    return json.loads(out.strip().splitlines()[-1])


def review_in_browser(page, hub, release_id: int, decision: str, comment: str = "") -> None:
    page.goto(f"{hub.url}{PORTAL}releases/{release_id}")
    form = page.locator("form.review-form").first
    form.locator("select[name=decision]").select_option(decision)
    form.locator("input[name=comment]").fill(comment)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def test_a_symlink_to_the_hosts_files_is_refused_even_past_the_client(people, docker):
    code, out = run_in(docker, "alice", "mkdir -p ~/outbox && ln -sf /etc/shadow ~/outbox/shadow.csv")
    assert code == 0, out
    answer = in_sandbox(docker, FORGED)
    assert answer["status"] == 400 and "symbolic link" in answer["fields"]["files"], answer


def test_a_flagged_table_is_corrected_approved_by_two_checkers_released_and_downloaded(people, docker, signed_in,
                                                                                       tmp_path):
    hub = people
    code, out = run_in(docker, "alice", f"mkdir -p ~/outbox && printf '{SMALL_CELL}' > ~/outbox/age.csv")
    assert code == 0, out
    filed = in_sandbox(docker, RELEASE)
    assert filed["state"] == "submitted"
    assert [f for f in filed["findings"] if f["severity"] == "fail" and "3" in f["message"]], filed
    release_id = filed["id"]

    olga, oscar = signed_in("olga"), signed_in("oscar")
    olga.goto(f"{hub.url}{PORTAL}checks")
    assert olga.locator(f"tr[data-release='{release_id}']").count() == 1
    save_screenshot(olga, "airlock-1-checker-queue")
    olga.goto(f"{hub.url}{PORTAL}releases/{release_id}")
    assert olga.locator("li[data-severity=fail]").count() >= 1
    save_screenshot(olga, "airlock-2-flagged-small-cell")
    review_in_browser(olga, hub, release_id, "changes", "suppress or merge the band of 3")
    review_in_browser(oscar, hub, release_id, "changes", "agreed: merge 0-39 into 40-59")
    oscar.fill("#close-form input[name=reason]", "a cell below the minimum count of 10")
    oscar.click("#close-form button:has-text('Return to author')")
    oscar.wait_for_load_state()
    assert "returned" in oscar.locator("body").inner_text()

    code, out = run_in(docker, "alice", f"printf '{CORRECTED}' > ~/outbox/age.csv")
    assert code == 0, out
    author = signed_in("alice")
    author.goto(f"{hub.url}{PORTAL}releases/{release_id}")
    save_screenshot(author, "airlock-3-returned-to-author")
    author.click("#update-form button[type=submit]")
    author.wait_for_load_state()
    assert author.locator("li[data-severity=fail]").count() == 0  # the corrected table passes
    author.click("#submit-form button[type=submit]")
    author.wait_for_load_state()

    review_in_browser(olga, hub, release_id, "approve")
    review_in_browser(oscar, hub, release_id, "approve")
    save_screenshot(oscar, "airlock-4-approved-by-two")
    oscar.click("#release-form button[type=submit]")
    oscar.wait_for_load_state()
    assert "released" in oscar.locator("body").inner_text()

    author.goto(f"{hub.url}{PORTAL}releases/{release_id}")
    with author.expect_download() as download:
        author.click("a.download")
    saved = tmp_path / "age.csv"
    download.value.save_as(saved)
    assert saved.read_text() == CORRECTED.replace("\\n", "\n")
    save_screenshot(author, "airlock-5-released-for-download")

    operator = signed_in(OPERATOR)
    operator.goto(f"{hub.url}{PORTAL}audit?q=release/{release_id}&limit=100")
    text = operator.locator("body").inner_text()
    save_screenshot(operator, "airlock-6-audit-trail")
    for action in ("release.file", "release.submit", "release.review", "release.return", "release.release",
                   "release.download"):
        assert action in text, f"{action} missing from the audit page"
