"""Published dashboards through the real hub and real sandboxes, attacked from a clinician's browser.

otis publishes the shipped case-review notebook from his sandbox as a dashboard of clinic-ct for
the clinicians' group (a notebook that fails is refused first, naming the cell). Before sam, the
dataset's steward, approves, the dashboard does not start. Once approved, it runs as otis's
`dashboard-NAME` server, shared with the group: clara, a clinician, signs in with Chromium (every
request off 127.0.0.1 refused and counted), finds it on her home page and sees the viewer with
the overlay. She cannot open JupyterLab, the contents API or a terminal of it, and an
`execute_request` she sends over the dashboard's own kernel websocket runs nothing (the file it
would write never appears). nina, outside the group, gets 403. Someone who joins the group gains it at the access service's next pass, and loses it on
leaving. Revoking the approval stops it.

An operator publishes a notebook of the host for otis (`workbench dashboard publish`): it runs
first in a throwaway sandbox of otis's with only the dashboard's dataset and no network; one that
fails is refused naming the cell, and one for a dataset otis does not hold is refused before any
container starts."""

import hashlib
import json
import re
import shlex
import time
from pathlib import Path

import pytest
from dockerspawner import DockerSpawner

from imaging_workbench import dashboard_check
from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.cli import main
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.dicom.synth import generate_cohort
from imaging_workbench.errors import WorkbenchError
from imaging_workbench.portal.base import ACCESS_SCOPE
from imaging_workbench.sessions.hub_api import SessionHub
from imaging_workbench.stack import STACK_LABEL, stack_id

from ..browser.servers import OfflineGuard, signed_in_page
from ..browser.viewer_page import VIEWER, dataset, wait_loaded
from ..hubtools import log_in
from ..screenshots import save_screenshot
from ..waiting import wait_for
from .conftest import CLINICAL, PREFIX, STEWARD, run_in, start_server, stop_server
from .sandboxes import exec_in

pytestmark = [pytest.mark.docker, pytest.mark.browser]

OWNER, CLINICIAN, OUTSIDER = "otis", "clara", "nina"
PASSWORDS = {name: f"{name}-password-123" for name in (OWNER, CLINICIAN, OUTSIDER)}
NAME, SERVER = "clinic-review", "dashboard-clinic-review"
GROUP = "workbench-clinicians"
PORTAL = "/services/workbench-portal"
PWNED = "/tmp/executed-from-the-browser"


def publish_in_sandbox(docker, notebook: str, name: str) -> tuple[int, str]:
    script = ("import imaging_workbench as w, json; "
              f"print(json.dumps(w.dashboards.publish({notebook!r}, name={name!r}, datasets=[{CLINICAL!r}])))")
    return run_in(docker, OWNER, f"python -c {shlex.quote(script)}", timeout=300)


def dashboard_server(hub):
    return hub.api("GET", f"/users/{OWNER}").json().get("servers", {}).get(SERVER)


def sam_calls(hub, method, path, **kwargs):
    import requests

    token = hub.user_token(STEWARD, [ACCESS_SCOPE])
    return requests.request(method, f"{hub.url}{PORTAL}/{path}", headers={"Authorization": f"token {token}"},
                            timeout=120, **kwargs)


@pytest.fixture(scope="module")
def published(sandbox_hub, docker, tmp_path_factory):
    hub = sandbox_hub
    data = tmp_path_factory.mktemp("clinic") / CLINICAL
    generate_cohort(data, CLINICAL, 2, modality="CT", region="abdomen", tumour_organ="liver", shape=(16, 48, 48), seed=7)
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    data.parent.chmod(0o755)
    with hub.ctx.session() as s:
        for name in (OWNER, CLINICIAN, OUTSIDER):  # sam, the steward, is test_portal_browser.py's to add
            accounts.ensure_account(s, "steward", name, PASSWORDS[name])
        datasets.add_dataset(s, "steward", CLINICAL, data, title="Clinic CT", modality="CT", site="site-1")
        grants.grant_access(s, "steward", OWNER, CLINICAL, 7, "dashboard for the tumour board")
    start_server(hub, OWNER)
    yield hub
    hub.api("DELETE", f"/users/{OWNER}/servers/{SERVER}", json={"remove": True})
    stop_server(hub, OWNER)


def test_a_notebook_that_fails_is_refused_naming_the_cell(published, docker):
    broken = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "id": "a",
                         "source": "ratio = 1 / 0"}],
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
              "nbformat": 4, "nbformat_minor": 5}
    run_in(docker, OWNER, f"cat > /home/jovyan/broken.ipynb <<'EOF'\n{json.dumps(broken)}\nEOF")
    code, out = publish_in_sandbox(docker, "/home/jovyan/broken.ipynb", "broken")
    assert code != 0 and "code cell 1" in out and "ZeroDivisionError" in out, out


def test_without_the_stewards_approval_the_dashboard_does_not_start(published, docker):
    hub = published
    code, out = publish_in_sandbox(docker, "/home/jovyan/examples/clinician/case_review.ipynb", NAME)
    assert code == 0, out
    made = json.loads(out.strip().splitlines()[-1])
    assert made["state"] == "pending" and len(made["sha256"]) == 64 and made["image"].startswith("sha256:")
    r = hub.api("POST", f"/users/{OWNER}/servers/{SERVER}", json={})
    if r.status_code in (201, 202):
        wait_for(lambda: not (dashboard_server(hub) or {}).get("pending"), 60, what="the refused spawn to end")
    assert dashboard_server(hub) is None
    assert f"waits for the approval of the steward of {CLINICAL}" in r.text + hub.log_tail(200)


def test_a_clinician_sees_the_viewer_and_nothing_else(published, docker, chromium):
    hub = published
    hub.api("POST", f"/users/{STEWARD}")
    r = sam_calls(hub, "POST", f"api/dashboards/{NAME}/decisions", json={"dataset": CLINICAL, "approve": True})
    assert r.status_code == 200 and r.json()["state"] == "live", r.text
    wait_for(lambda: (dashboard_server(hub) or {}).get("ready"), 180, what="the dashboard's server")
    box = docker.containers.get(f"{PREFIX}-{OWNER}--{DockerSpawner._escape(SERVER)}")
    assert exec_in(box, "ls /data /home/jovyan") == (0, f"/data:\n{CLINICAL}\n\n/home/jovyan:\n")  # none of otis's home

    guard = OfflineGuard()
    page = signed_in_page(chromium, guard, hub.url, CLINICIAN, PASSWORDS[CLINICIAN], "/hub/home")
    try:
        link = page.locator(f'#shared-dashboards [data-dashboard="{NAME}"] a')
        link.click()
        page.wait_for_url(re.compile(r".*/hub/api/oauth2/authorize.*"))  # the hub asks before opening another's server
        page.click("form button[type=submit]")
        page.wait_for_url(re.compile(rf".*/user/{OWNER}/{SERVER}/voila/render/case_review\.ipynb.*"), timeout=60_000)
        page.wait_for_selector(".wb-series-table select option", timeout=120_000)  # the case review's browser
        page.locator(".wb-series-table select").select_option(index=0)
        wait_loaded(page, timeout=120_000)
        assert dataset(page, "maskVersion") == "1" and page.locator(f"{VIEWER} input[data-segment]").count() >= 1
        save_screenshot(page, "dashboard-01-clinician")
        assert page.locator("text=import").count() == 0  # no code shown
        base = f"{hub.url}/user/{OWNER}/{SERVER}"
        for path in ("/lab", "/tree", "/api/contents", "/api/contents/case_review.ipynb", "/terminals/1",
                     "/api/terminals", "/api/sessions", "/voila/execution/x", "/files/case_review.ipynb"):
            assert page.request.get(base + path).status == 404, path
        assert page.request.post(base + "/api/kernels", data="{}").status == 404
        kernel = page.evaluate("() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
        # The attack, over the page's own kernel websocket; a connection that fails raises here.
        page.evaluate("""async ([url, code]) => {
            const ws = new WebSocket(url);
            await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
            const header = {msg_id: 'attack-1', username: 'clara', session: 'attack', msg_type: 'execute_request',
                            version: '5.3', date: new Date().toISOString()};
            ws.send(JSON.stringify({header, parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
                content: {code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false,
                          stop_on_error: true}}));
            await new Promise(r => setTimeout(r, 4000));
            ws.close();
        }""", [f"{base.replace('http', 'ws')}/api/kernels/{kernel}/channels", f"open({PWNED!r}, 'w').write('x')"])
        assert exec_in(box, f"test -e {PWNED}")[0] != 0  # the kernel never ran it
    finally:
        page.context.close()
    assert guard.blocked == [], f"the dashboard asked the web for: {guard.blocked}"

    outsider, _ = log_in(hub.url, OUTSIDER, PASSWORDS[OUTSIDER])
    assert outsider.get(f"{hub.url}/user/{OWNER}/{SERVER}/", timeout=60).status_code == 403


def shared_with(hub) -> list[str]:
    return SessionHub.from_settings(hub.settings).shares(OWNER, SERVER)  # the test's own token reads no shares


def test_who_joins_or_leaves_the_group_gains_or_loses_the_dashboard(published):
    hub = published
    assert CLINICIAN in shared_with(hub) and OUTSIDER not in shared_with(hub)
    service = SessionHub.from_settings(hub.settings)  # the test's own token changes no group
    service.ensure_group(GROUP, [CLINICIAN, OUTSIDER])
    try:
        wait_for(lambda: OUTSIDER in shared_with(hub), 60, what="the access service to share it with nina")
        outsider, _ = log_in(hub.url, OUTSIDER, PASSWORDS[OUTSIDER])
        consent = outsider.get(f"{hub.url}/user/{OWNER}/{SERVER}/", timeout=60)
        assert consent.status_code == 200 and "/hub/api/oauth2/authorize" in consent.url
    finally:
        service.ensure_group(GROUP, [CLINICIAN])
    wait_for(lambda: OUTSIDER not in shared_with(hub), 60, what="the access service to take it from nina")
    assert log_in(hub.url, OUTSIDER, PASSWORDS[OUTSIDER])[0].get(
        f"{hub.url}/user/{OWNER}/{SERVER}/", timeout=60).status_code == 403


def test_revoking_the_approval_stops_the_dashboard(published, capsys):
    hub = published
    assert main(["--settings", str(hub.settings_file), "dashboard", "show", NAME]) == 0
    assert f"{CLINICAL}: approved by {STEWARD}" in capsys.readouterr().out
    r = sam_calls(hub, "POST", f"api/dashboards/{NAME}/revoke", json={"dataset": CLINICAL, "reason": "board over"})
    assert r.status_code == 200 and r.json()["state"] == "pending", r.text
    wait_for(lambda: dashboard_server(hub) is None, 120, what="the dashboard's server to stop")
    clinician, _ = log_in(hub.url, CLINICIAN, PASSWORDS[CLINICIAN])
    assert f'data-dashboard="{NAME}"' not in clinician.get(f"{hub.url}/hub/home", timeout=60).text


def notebook(*sources: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                                  "id": f"c{i}", "source": src} for i, src in enumerate(sources)],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                       "nbformat": 4, "nbformat_minor": 5})


def containers_created(docker, hub, since: int) -> list:
    return list(docker.events(since=since, until=int(time.time()) + 1, decode=True,
                              filters={"type": "container", "event": "create",
                                       "label": f"{STACK_LABEL}={stack_id(hub.settings)}"}))


def test_an_operator_publishes_a_host_notebook_once_it_ran_in_the_owners_sandbox(published, docker, tmp_path, capsys):
    hub = published
    publish = ["--settings", str(hub.settings_file), "dashboard", "publish", "--owner", OWNER]
    checked = tmp_path / "mounts_only.ipynb"
    checked.write_text(notebook("import os, socket",
                                f"assert os.listdir('/data') == [{CLINICAL!r}], os.listdir('/data')",
                                "home = os.path.expanduser('~')  # in memory: nothing of otis's home volume\n"
                                "assert [l.split()[2] for l in open('/proc/mounts') if l.split()[1] == home] == ['tmpfs']\n"
                                "assert 'examples' not in os.listdir(home)",
                                "assert [n for _, n in socket.if_nameindex()] == ['lo']  # no network at all"))
    broken = tmp_path / "broken.ipynb"
    broken.write_text(notebook("import os", "os.listdir('/data/someone-elses')"))

    since = int(time.time())
    assert main(publish + ["--dataset", "lung-ct", "--name", "ungranted", str(checked)]) == 1
    assert "holds no live grant for dataset 'lung-ct'" in capsys.readouterr().err
    assert containers_created(docker, hub, since) == []  # refused before any sandbox ran it

    assert main(publish + ["--dataset", CLINICAL, str(broken)]) == 1
    refused = capsys.readouterr().err
    assert "broken.ipynb: code cell 2" in refused and "FileNotFoundError" in refused, refused
    assert main(["--settings", str(hub.settings_file), "dashboard", "list", "--json"]) == 0
    assert "broken" not in [d["name"] for d in json.loads(capsys.readouterr().out)]

    assert main(publish + ["--dataset", CLINICAL, "--json", str(checked)]) == 0, capsys.readouterr().err
    made = json.loads(capsys.readouterr().out)[0]
    assert (made["name"], made["owner"], made["state"]) == ("mounts-only", OWNER, "pending")
    pinned = Path(hub.settings["state_dir"]) / "dashboards" / "mounts-only" / "mounts_only.ipynb"
    assert made["sha256"] == hashlib.sha256(checked.read_bytes()).hexdigest() == hashlib.sha256(
        pinned.read_bytes()).hexdigest()
    assert pinned.stat().st_mode & 0o777 == 0o444


def test_an_operator_is_told_the_sandbox_image_is_missing_and_nothing_runs(published, docker):
    hub = published
    settings = {**hub.settings, "sandbox": {**hub.settings["sandbox"], "image": "workbench-no-such-image:never"}}
    since = int(time.time())
    with pytest.raises(WorkbenchError, match="the sandbox image workbench-no-such-image:never is not on this host"):
        dashboard_check.first_failing_cell(WorkbenchContext(settings, actor="operator"), OWNER, [CLINICAL],
                                           "check.ipynb", notebook("print(1)").encode())
    assert containers_created(docker, hub, since) == []
