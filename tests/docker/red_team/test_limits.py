"""Red team 7 and 8: the writable filesystems' size limits and a fork bomb (the twins: unsized
tmpfs and a plain volume, no pids limit)."""

import json

import pytest

from ..sandboxes import exec_in, python_in
from .tools import Attempt, BOX, HOME_SIZE, MiB, PAST, TMP_SIZE, judge

pytestmark = pytest.mark.docker

# ---- 7. the writable filesystems' size limits

WRITABLE = r'''
import json, os
# every filesystem that holds files the sandbox user may write, with its size
found = {}
for line in open("/proc/mounts"):
    _, folder, kind, options = line.split()[:4]
    if kind in ("tmpfs", "ext4", "xfs", "btrfs", "overlay") and "rw" in options.split(",") \
            and os.path.isdir(folder) and os.access(folder, os.W_OK):  # not docker's masks over /proc files
        found[folder] = os.statvfs(folder).f_blocks * os.statvfs(folder).f_frsize
print(json.dumps(found))
'''

FILL = r'''
import errno, json, os, sys
past, out = int(sys.argv[1]), {}
for folder, size in json.loads(sys.argv[2]).items():
    path, written = os.path.join(folder, "red-team-fill"), 0
    try:
        with open(path, "wb", buffering=0) as f:
            while written < size + past:
                written += f.write(b"\0" * 2**20)
            os.fsync(f.fileno())
        result = "wrote all"
    except OSError as e:
        result = "refused: " + errno.errorcode.get(e.errno, str(e.errno))
    finally:
        if os.path.exists(path):
            os.unlink(path)
    out[folder] = [result, written]
print(json.dumps(out))
'''


def fill_from(container, sizes: dict) -> dict:
    code, out = python_in(container, FILL, str(PAST), json.dumps(sizes), timeout=120)
    assert code == 0, out
    return json.loads(out)


def test_no_writable_filesystem_fills_past_its_limit(alice, twin):
    code, out = python_in(alice, WRITABLE)
    assert code == 0, out
    sizes = json.loads(out)
    assert sizes["/tmp"] == TMP_SIZE and sizes["/home/jovyan"] <= HOME_SIZE, sizes  # /dev/shm: docker's 64 MiB
    unsized = {folder: ",".join(o for o in options.split(",") if not o.startswith("size="))
               for folder, options in alice.attrs["HostConfig"]["Tmpfs"].items()}
    unbounded = twin("unbounded", tmpfs=unsized, shm_size=4 * max(sizes.values()),
                     volumes={f"{BOX.prefix}-twin-home": {"bind": "/home/jovyan", "mode": "rw"}})
    by_twin, filled = fill_from(unbounded, sizes), fill_from(alice, sizes)
    judge([Attempt(f"fill {folder} past its {sizes[folder] // MiB} MiB",
                   "a size limit (tmpfs size, shm size; a plain volume for the home)",
                   by_twin[folder][0] == "wrote all", filled[folder][0] == "refused: ENOSPC" and
                   filled[folder][1] <= sizes[folder], f"sandbox {filled[folder]}, twin {by_twin[folder]}")
           for folder in sizes])


# ---- 8. a fork bomb

FORK_BOMB = r'''
import os, signal, sys, time
most, seconds = int(sys.argv[1]), float(sys.argv[2])
deadline, children, stopped_by = time.monotonic() + seconds, [], "its own bound"
while len(children) < most and time.monotonic() < deadline:
    try:
        pid = os.fork()
    except OSError as e:  # EAGAIN at the pids limit
        stopped_by = type(e).__name__
        break
    if pid == 0:  # a child waits to be killed, and leaves by itself at the deadline if it is not
        time.sleep(max(0.0, deadline - time.monotonic()))
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, signal.SIGKILL)
for pid in children:
    os.waitpid(pid, 0)
print(len(children), stopped_by)
'''


def test_a_fork_bomb_stops_at_the_pids_limit(alice, twin):
    """A bounded bomb (one parent forks until refused, its own bound or 20 s): the sandbox's pids limit
    refuses it, then the sandbox and its server work on (the autouse check)."""
    limit = alice.attrs["HostConfig"]["PidsLimit"]
    most = limit + 64  # a bounded bomb: a twin without the limit stops here, by itself
    code, twin_out = exec_in(twin("no-pids-limit", pids_limit=-1), ["python3", "-c", FORK_BOMB, str(most), "20"],
                             timeout=40)
    code2, out = exec_in(alice, ["python3", "-c", FORK_BOMB, str(most), "20"], timeout=40)
    assert code == code2 == 0, (twin_out, out)
    forked, stopped_by = out.split()
    judge([Attempt(f"fork bomb: more than the {limit} processes of the limit", "the pids limit",
                   twin_out.strip() == f"{most} its own bound",
                   stopped_by == "BlockingIOError" and int(forked) < limit,
                   f"sandbox {out.strip()}, twin {twin_out.strip()}")])
