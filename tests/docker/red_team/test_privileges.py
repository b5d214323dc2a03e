"""Red team 3 to 6: raw sockets, mounting, other sandboxes' and the host's processes, another
user's home (the twins: NET_RAW, SYS_ADMIN unconfined, the host's pid namespace, a bind of bob's home)."""

import json
import os
import secrets
import signal
import subprocess

import pytest

from ...waiting import wait_for
from ..sandboxes import exec_in, python_in
from .tools import Attempt, BOX, NOTES, judge

pytestmark = pytest.mark.docker

# ---- 3. raw sockets

RAW_SOCKETS = r'''
import json, socket
kinds = {"raw IPv4": (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
         "raw IPv6": (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
         "packet": (socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))}
out = {}
for kind, args in kinds.items():
    try:
        socket.socket(*args).close()  # created and closed: nothing is sent
        out[kind] = "created"
    except OSError as e:
        out[kind] = "refused: " + type(e).__name__
print(json.dumps(out))
'''


def socket_kinds(container, user: str) -> dict:
    code, out = python_in(container, RAW_SOCKETS, user=user)
    assert code == 0, out
    return json.loads(out)


def test_raw_and_packet_sockets_cannot_be_created(alice, twin):
    # docker gives a process no effective capability unless the container runs as root (even one
    # run as root by `docker exec`): the twin runs as root with NET_RAW, lacking both walls.
    with_net_raw = socket_kinds(twin("net-raw", user="0", cap_add=["NET_RAW"]), user="0")
    as_user, as_root = socket_kinds(alice, "1000"), socket_kinds(alice, "0")
    judge([Attempt(f"raw sockets: {kind} socket {who}", "root with NET_RAW", with_net_raw[kind] == "created",
                   answers[kind].startswith("refused"), f"sandbox {answers[kind]}, twin {with_net_raw[kind]}")
           for who, answers in (("as the sandbox user", as_user), ("as root in the sandbox", as_root))
           for kind in with_net_raw])


# ---- 4. mounting

MOUNT = r'''
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
target = "/tmp/red-team-mount"
os.makedirs(target, exist_ok=True)
def refused():
    return "refused: " + os.strerror(ctypes.get_errno())
def attempt():
    if sys.argv[1] == "userns":  # a user namespace of one's own, where one is root, then mount
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS
            return refused()
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    if libc.mount(b"none", target.encode(), b"tmpfs", 0, b"size=1m") != 0:
        return refused()
    libc.umount2(target.encode(), 0)
    return "mounted"
print(json.dumps(attempt()))
'''


def mount_from(container, how: str, user: str) -> str:
    code, out = python_in(container, MOUNT, how, user=user)
    assert code == 0, out
    return json.loads(out)


def test_nothing_can_be_mounted(alice, twin):
    admin = twin("sys-admin", user="0", cap_add=["SYS_ADMIN"],
                 security_opt=["no-new-privileges", "seccomp=unconfined"])
    ways = [("mount a tmpfs as the sandbox user", "plain", "1000", "plain", "0"),
            ("mount a tmpfs as root in the sandbox", "plain", "0", "plain", "0"),
            ("mount a tmpfs in a user namespace of one's own", "userns", "1000", "userns", "1000")]
    attempts = []
    for name, how, user, twin_how, twin_user in ways:
        answer, twin_answer = mount_from(alice, how, user), mount_from(admin, twin_how, twin_user)
        attempts.append(Attempt(f"mount: {name}", "SYS_ADMIN (root) and the seccomp profile",
                                twin_answer == "mounted", answer.startswith("refused"),
                                f"sandbox {answer}, twin {twin_answer}"))
    judge(attempts)


# ---- 5. processes of other sandboxes and of the host

PROCESSES = r'''
import ctypes, json, os, sys
marker, pids = os.environ["RED_MARKER"], [int(p) for p in sys.argv[1].split(",")]
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
mine = {os.getpid(), os.getppid()}  # this probe and its `timeout`: their command lines hold the names sought
seen = [cmdline(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine]
out = {"another sandbox's process": any(marker in c for c in seen),
       "the host's processes": sorted({c for c in seen if "dockerd" in c or "jupyterhub -f" in c})[:3]}
for pid in pids:
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        os.waitpid(pid, 0x40000000)  # __WALL: its stop
        out[str(pid)] = "attached to " + cmdline(pid)
        libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
    else:
        out[str(pid)] = "refused: " + os.strerror(ctypes.get_errno())
print(json.dumps(out))
'''

OWN_PTRACE = r'''
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
child = subprocess.Popen(["sleep", "30"])
if libc.ptrace(16, child.pid, None, None) == 0:
    os.waitpid(child.pid, 0x40000000)
    libc.ptrace(17, child.pid, None, None)
    print("allowed")
else:
    print("refused: " + os.strerror(ctypes.get_errno()))
child.kill()
'''


def host_pid_of(cmdline: str) -> int | None:
    """The host's pid of the process that runs exactly `cmdline`, if one does."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return next((int(pid) for pid, args in (line.strip().split(None, 1) for line in ps.splitlines())
                 if args == cmdline), None)


def processes_seen_from(container, marker: str, pids: list[int]) -> dict:
    code, out = python_in(container, PROCESSES, ",".join(map(str, pids)), environment={"RED_MARKER": marker})
    assert code == 0, out
    return json.loads(out)


def test_other_sandboxes_and_the_hosts_processes_are_out_of_sight_and_reach(red_hub, alice, bob, twin):
    marker = f"sleep {300 + secrets.randbelow(1000)}.{secrets.randbelow(1000):03d}"
    bob.exec_run(marker.split(), user="1000", detach=True)  # a process of bob's, uid 1000 like alice's
    bobs = wait_for(lambda: host_pid_of(marker), 10, what="bob's marker process")
    hub = red_hub.process.pid
    try:
        by_twin = processes_seen_from(twin("host-pids", pid_mode="host"), marker, [bobs, hub])
        seen = processes_seen_from(alice, marker, [bobs, hub])
    finally:
        os.kill(bobs, signal.SIGKILL)
    NOTES.append(f"ptrace of one's own processes in a sandbox (same uid): {python_in(alice, OWN_PTRACE)[1].strip()}; "
                 f"of the hub (root) by a twin in the host's pid namespace: {by_twin[str(hub)]}")
    other, host = "another sandbox's process", "the host's processes"
    judge([
        Attempt("processes: see another sandbox's process", "a pid namespace of its own", by_twin[other],
                not seen[other], f"sandbox {seen[other]}, twin {by_twin[other]}"),
        Attempt("processes: see the host's processes", "a pid namespace of its own", bool(by_twin[host]),
                not seen[host], f"sandbox {seen[host]}, twin {by_twin[host]}"),
        Attempt("processes: ptrace another sandbox's process", "a pid namespace of its own",
                by_twin[str(bobs)] == f"attached to {marker}", marker not in seen[str(bobs)],
                f"sandbox {seen[str(bobs)]}, twin {by_twin[str(bobs)]}"),
    ])


# ---- 6. another user's home

OTHER_HOME = r'''
import json, os, sys
me, other, other_volume, secret = sys.argv[1:5]
fields = next((line.split() for line in open("/proc/self/mountinfo") if line.split()[4] == "/home/jovyan"), None)
root, source = (fields[3], fields[fields.index("-") + 2]) if fields else ("", "")  # a twin has no home mount
# where the other home could be: the own home's host path or device with the name changed, the
# docker volume's usual host path, a sibling of the own home
places = {root.replace(me, other), source.replace(me, other), f"/var/lib/docker/volumes/{other_volume}/_data",
          f"/home/{other}", os.path.expanduser(f"~/../{other}")}
out = {"own home": f"{source} {root}"}
for place in sorted(places):
    try:
        with open(os.path.join(place, secret)) as f:
            out[place] = "read: " + f.read().strip()
    except OSError as e:
        out[place] = "refused: " + type(e).__name__
print(json.dumps(out))
'''


def test_another_users_home_is_out_of_reach(red_hub, alice, bob, twin):
    secret = f"bob-secret-{secrets.token_hex(4)}"
    assert exec_in(bob, f"echo '{secret}' > ~/red-team-secret.txt")[0] == 0
    volume = BOX.home_volume("bob")
    args = ["alice", "bob", volume, "red-team-secret.txt"]
    bound = twin("bobs-home", volumes={volume: {"bind": f"/var/lib/docker/volumes/{volume}/_data", "mode": "ro"}})
    code, twin_out = python_in(bound, OTHER_HOME, *args)
    code2, out = python_in(alice, OTHER_HOME, *args)
    assert code == code2 == 0, (twin_out, out)
    by_twin, found = json.loads(twin_out), json.loads(out)
    judge([Attempt("home: read another user's home by the paths its own mount shows", "a bind of bob's volume",
                   any(v == f"read: {secret}" for v in by_twin.values()),
                   not any(v.startswith("read") for v in found.values()), f"sandbox {found}")])
