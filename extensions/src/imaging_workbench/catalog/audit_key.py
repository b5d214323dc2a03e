"""The audit trail's HMAC key: 32 random bytes, hex, in a file kept apart from the database.

Whoever can write the database but cannot read this file cannot forge a row the trail accepts.
"""

import os
import secrets
import stat
from pathlib import Path

from ..errors import WorkbenchError

KEY_BYTES = 32
FILE_NAME = "audit.key"  # in the state directory, unless the settings' audit_key_file says otherwise


def key_file(settings: dict) -> Path:
    """The deployment's key file: `audit_key_file`, or <state_dir>/audit.key when that is None."""
    return Path(settings["audit_key_file"] or Path(settings["state_dir"]) / FILE_NAME)


def load_key(path: Path) -> bytes | None:
    """The key in `path`, or None when there is no such file.

    Raises WorkbenchError when the file is open to group or others, or holds no key."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise WorkbenchError(f"audit key file {path} is open to group or others (mode {stat.S_IMODE(mode):03o})",
                             f"chmod 600 {path}, and ask whether someone copied it: they could forge audit rows")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise WorkbenchError(f"audit key file {path} does not hold a key ({KEY_BYTES * 2} hex digits)",
                             "restore it from your backup; a new key cannot verify the rows already written")
    return key


def ensure_key(path: Path) -> bytes:
    """The key in `path`, created (mode 0600) when missing; its folder must exist.

    Two processes creating it at once agree: each writes a private temporary file and links it
    into place, and the one that loses the link reads the winner's key."""
    path = Path(path)
    key = load_key(path)
    if key is not None:
        return key
    if not path.parent.is_dir():
        raise WorkbenchError(f"the folder of the audit key file {path} does not exist",
                             "create it (readable by the workbench's user only) or set audit_key_file in the "
                             "deployment settings file")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first
    finally:
        tmp.unlink(missing_ok=True)
    return load_key(path)
