"""The sandbox against real dockerd and a real hub: what a user can see, write and reach."""

import socket
import threading
import time

import pytest
import requests

from imaging_workbench.catalog import audit, grants
from imaging_workbench.hub.network import gateway

from ..hubtools import log_in
from ..waiting import free_port, wait_for
from .conftest import SUBNET, run_in, start_server

pytestmark = pytest.mark.docker


def test_login_page_opens_jupyterlab_in_a_sandbox_even_without_grants(sandbox_hub, docker):
    hub = sandbox_hub
    http, response = log_in(hub.url, "carol", "carol-password-123")
    assert response.status_code == 302
    form = http.get(f"{hub.url}/hub/spawn", timeout=30)
    assert 'name="profile"' in form.text
    http.post(f"{hub.url}/hub/spawn", data={"profile": "standard", "_xsrf": http.cookies.get("_xsrf")}, timeout=120)

    def lab():
        page = http.get(f"{hub.url}/user/carol/lab", timeout=30)
        return page.status_code == 200 and "JupyterLab" in page.text and page

    wait_for(lab, 180, interval=1, what="carol's JupyterLab")
    assert run_in(docker, "carol", "ls -A /data") == (0, "")


def test_data_holds_only_the_approved_dataset(alice, docker):
    assert run_in(docker, "alice", "ls /data") == (0, "lung-a\n")
    assert run_in(docker, "alice", "cat /data/lung-a/scan-001.dcm.txt") == (0, "pixels of lung-a\n")
    code, out = run_in(docker, "alice", "ls /data/liver-b")
    assert code != 0 and "No such file" in out


def test_datasets_and_root_filesystem_are_read_only(alice, docker):
    for path in ("/data/lung-a/new.txt", "/usr/local/bin/x", "/etc/x", "/opt/x"):
        code, out = run_in(docker, "alice", f"echo hacked >> {path}")
        assert code != 0 and "Read-only file system" in out, (path, out)
    code, out = run_in(docker, "alice", "echo hacked >> /data/lung-a/scan-001.dcm.txt")
    assert code != 0 and ("Read-only file system" in out or "Permission denied" in out)
    # the mounts themselves are read-only, whatever the files' permissions
    mounts = {line.split()[1]: line.split()[3] for line in run_in(docker, "alice", "cat /proc/mounts")[1].splitlines()}
    assert mounts["/data/lung-a"].startswith("ro,") and mounts["/"].startswith("ro,")
    assert run_in(docker, "alice", "echo ok > /tmp/scratch && cat /tmp/scratch") == (0, "ok\n")
    assert run_in(docker, "alice", "echo ok > ~/notes.txt && cat ~/notes.txt") == (0, "ok\n")


SERVER_STATUS = """for p in /proc/[0-9]*; do
  case "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)" in *jupyterhub-singleuser*) echo "pid ${p#/proc/}"; break;; esac
done"""


def process_status(docker, user: str, pid: str) -> dict:
    """Fields of /proc/<pid>/status of a process of the sandbox itself (not one the test starts)."""
    code, text = run_in(docker, user, f"cat /proc/{pid}/status")
    assert code == 0, text
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_the_sandbox_and_its_server_run_as_uid_1000_without_capabilities(alice, docker):
    code, found = run_in(docker, "alice", SERVER_STATUS)
    assert code == 0 and found.startswith("pid "), found
    for pid in ("1", found.split()[1]):  # tini, and the single-user server it runs
        status = process_status(docker, "alice", pid)
        assert status["Uid"].split() == ["1000"] * 4, (pid, status["Uid"])  # real, effective, saved, fs
        assert {k: status[k].strip() for k in ("CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")} == {
            "CapPrm": "0000000000000000", "CapEff": "0000000000000000", "CapBnd": "0000000000000000",
            "CapAmb": "0000000000000000", "NoNewPrivs": "1"}, pid
    code, out = run_in(docker, "alice", "ls /var/run/docker.sock")
    assert code != 0


class Listener:
    """A TCP listener the test starts on a host address, counting the connections it accepts."""

    def __init__(self, host: str):
        self.sock = socket.create_server((host, free_port(host)))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


PROBE = """python3 -c '
import socket, sys
try:
    socket.create_connection(("{host}", {port}), timeout=3).close(); print("connected")
except OSError as e:
    print("blocked", type(e).__name__)
'"""


def test_no_way_out_but_the_hub_api(alice, docker):
    hub = alice
    gw = gateway(SUBNET)
    on_bridge, on_all = Listener(gw), Listener("0.0.0.0")
    try:
        for port in (on_bridge.port, on_all.port):
            assert run_in(docker, "alice", PROBE.format(host=gw, port=port))[1].startswith("blocked")
        assert on_bridge.accepted == on_all.accepted == 0
        # the hub API on the gateway is the one thing open
        assert run_in(docker, "alice", PROBE.format(host=gw, port=hub.settings["hub"]["api_port"]))[1] == "connected\n"
    finally:
        on_bridge.sock.close()
        on_all.sock.close()
    code, out = run_in(docker, "alice", "python3 -c 'import socket; socket.getaddrinfo(\"example.com\", 443)'")
    assert code != 0 and "gaierror" in out


def test_another_users_server_is_unreachable(alice, bob, docker):
    bob_ip = docker.containers.get("wbtest-bob").attrs["NetworkSettings"]["Networks"]["wbtest-sandbox"]["IPAddress"]
    assert run_in(docker, "alice", PROBE.format(host=bob_ip, port=8888))[1].startswith("blocked")
    alice_token = alice.user_token("alice")
    r = requests.get(f"{alice.url}/user/bob/api/status", headers={"Authorization": f"token {alice_token}"},
                     timeout=30, allow_redirects=False)
    assert r.status_code in (302, 403, 404)
    assert alice.api("GET", "/users/bob", token=alice_token).status_code in (403, 404)
    # and bob's own token does reach bob's server
    bob_token = bob.user_token("bob")
    assert requests.get(f"{bob.url}/user/bob/api/status", headers={"Authorization": f"token {bob_token}"},
                        timeout=30).status_code == 200


def test_memory_hog_is_killed_at_the_limit(alice, docker):
    code, out = run_in(docker, "alice", "python3 -c 'b = bytearray(3 * 1024**3); print(len(b))'", timeout=120)
    assert code == 137, out  # SIGKILL from the cgroup's OOM killer at the profile's 1G
    assert run_in(docker, "alice", "echo alive") == (0, "alive\n")  # the server itself lives on


def test_revoking_the_grant_stops_the_server_and_the_next_spawn_lacks_it(alice, docker):
    hub = alice
    with hub.ctx.session() as s:
        grants.revoke_access(s, "steward", "alice", "lung-a")
    started = time.monotonic()
    wait_for(lambda: "" not in hub.api("GET", "/users/alice").json()["servers"], 60, interval=1,
             what="the revoked server to stop")
    assert time.monotonic() - started < 60
    with hub.ctx.session() as s:
        revoked = audit.events(s, action="server.revoked")
        assert revoked and revoked[-1].details["datasets_no_longer_granted"] == ["lung-a"]
    start_server(hub, "alice")
    assert run_in(docker, "alice", "ls -A /data") == (0, "")


def test_every_start_and_stop_is_audited_and_the_chain_verifies(alice, docker):
    with alice.ctx.session() as s:
        starts = {e.subject: e.details["datasets"] for e in audit.events(s, action="server.start")}
        stops = audit.events(s, action="server.stop")
        assert starts["bob/"] == ["liver-b"] and starts["carol/"] == []
        assert any(e.subject == "alice/" and e.details["datasets"] == ["lung-a"] for e in stops)
        assert audit.verify_chain(s) == []


FEDERATION_PROBE = """python3 -c '
from imaging_workbench.federation.client import Federation
fed = Federation()
print(sorted(a["id"] for a in fed.algorithms()))
print(sorted(d["id"] for d in fed.datasets()))
'"""


def test_sandbox_reaches_the_federation_service_with_its_own_token(bob, docker):
    """The one other opening: the hub's federation service, called with the server's scoped token."""
    code, out = run_in(docker, "bob", FEDERATION_PROBE)
    assert code == 0, out
    algorithms, datasets = out.strip().splitlines()
    assert "cohort-statistics" in algorithms
    assert datasets == "['liver-b']"  # only what bob holds grants for is offered


def test_an_approved_tool_appears_read_only_at_tools_in_a_running_sandbox(alice, approved_tool, docker):
    """The AI tools' folder is the one part of the state directory a sandbox sees (hub/mount_plan.py):
    a tool approved while alice's server runs is there at once, and nothing in it can be changed."""
    listed = "import imaging_workbench as w; print([t['id'] for t in w.Tools().list(as_frame=False)])"
    assert run_in(docker, "alice", f'python3 -c "{listed}"') == (0, "['tumour-seg']\n")
    assert run_in(docker, "alice", "ls -A /tools /tools/tumour-seg/1.0.0/models") == (
        0, "/tools:\ncatalog.json\ntumour-seg\n\n/tools/tumour-seg/1.0.0/models:\nmodel.pt\n")
    for write in ("touch /tools/x", "rm /tools/catalog.json"):  # the mount is read-only
        code, out = run_in(docker, "alice", write)
        assert code != 0 and "Read-only file system" in out, (write, out)
    code, out = run_in(docker, "alice", "echo x >> /tools/tumour-seg/1.0.0/models/model.pt")  # and the file 0444
    assert code != 0 and "Permission denied" in out, out
