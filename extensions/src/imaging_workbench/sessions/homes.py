"""Learners' session homes: their docker volumes, and copies of them as one tar.gz per learner.

A session server's home is a volume of its own (`<home_volume>--<server>`). The copies are made
by a throwaway sandbox (no network, no capabilities, uid 1000, the volumes read-only), never by
the host reading the volume: a learner can leave a symbolic link there, which must resolve
inside a container and not to the host's files.
"""

import os
import shutil
from pathlib import Path

from dockerspawner import DockerSpawner

from ..errors import WorkbenchError

SANDBOX_UID, SANDBOX_GID = 1000, 100


def session_home_template(home_volume: str) -> str:
    """The volume template of a named (session) server, from the settings' `sandbox.home_volume`."""
    return f"{home_volume}--{{servername}}"


def session_home_volume(home_volume: str, user: str, server_name: str) -> str:
    """The docker volume the spawner gives `user`'s server `server_name` (DockerSpawner's escaping)."""
    escape = DockerSpawner._escape
    return session_home_template(home_volume).format(
        username=escape(user), safe_username=escape(user), raw_username=user,
        servername=escape(server_name.lower()), raw_servername=server_name)


def pack_homes(client, image: str, volumes: dict[str, str], inside: str, out_dir: Path, labels: dict) -> dict:
    """Write `<user>.tar.gz` of `inside` (a path under each home, "" for all of it) for every
    user -> volume of `volumes` into `out_dir`, read-only (0440, root's). A user whose volume does
    not exist gets no file. Returns user -> file (or None where there was nothing to pack)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = {u: v for u, v in volumes.items() if _volume_exists(client, v)}
    staging = Path(str(out_dir) + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    os.chown(staging, SANDBOX_UID, SANDBOX_GID)
    try:
        if existing:
            # User names are catalog names (lower-case letters, digits, '.', '_', '-'): safe in sh.
            what = inside or "."
            script = "set -e; " + "".join(
                f"if [ -e /homes/{u}/{what} ]; then tar -C /homes/{u} -czf /out/{u}.tar.gz {what}; fi; "
                for u in existing)
            mounts = {v: {"bind": f"/homes/{u}", "mode": "ro"} for u, v in existing.items()}
            mounts[str(staging)] = {"bind": "/out", "mode": "rw"}
            try:
                client.containers.run(image, entrypoint=["sh", "-c", script], user=f"{SANDBOX_UID}:{SANDBOX_GID}",
                                      network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"],
                                      read_only=True, volumes=mounts, labels=labels, remove=True, stderr=True)
            except Exception as e:  # docker's ContainerError carries the container's stderr
                raise WorkbenchError(f"packing the learners' homes failed: {e}", "see dockerd's log") from None
        packed = {}
        for user in volumes:
            source = staging / f"{user}.tar.gz"
            if source.is_file():
                target = out_dir / source.name
                shutil.copyfile(source, target)
                os.chmod(target, 0o440)
                packed[user] = target
            else:
                packed[user] = None
        return packed
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_volumes(client, volumes) -> None:
    for name in volumes:
        if _volume_exists(client, name):
            client.volumes.get(name).remove(force=True)


def _volume_exists(client, name: str) -> bool:
    import docker.errors

    try:
        client.volumes.get(name)
        return True
    except docker.errors.NotFound:
        return False
