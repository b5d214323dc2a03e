"""Filing files for release: copy them from the author's outbox into the airlock's store, refuse
what may never leave, and run the automatic checks; the catalog then records the request
(catalog/releases.py). After this step the airlock never reads the sandbox's volume again."""

from dataclasses import dataclass

from ..catalog.access_requests import BadField
from ..catalog.releases import NewFile
from . import file_kinds
from .checks import CheckPolicy, check_release
from .outbox import checked_name, open_file
from .store import AirlockStore, TooLarge


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_file_size: int


def checked_request(names, count_columns, limits: Limits) -> tuple[list[str], dict[str, list[str]]]:
    """The file names (each a path inside the outbox, given once) and the declared count columns.

    Raises:
        BadField: "files" or "count_columns" wrong, naming the entry.
    """
    if not (isinstance(names, list) and names):
        raise BadField("files", f"must be a non-empty list of file names in ~/outbox, not {names!r}",
                       "name the files, e.g. [\"tables/age.csv\"]")
    if len(names) > limits.max_files:
        raise BadField("files", f"{len(names)} files, more than the {limits.max_files} one release may hold",
                       "split them over several releases, or release a summary")
    for name in names:
        checked_name(name)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadField("files", f"{', '.join(repeated)} given more than once", "name each file once")
    count_columns = count_columns or {}
    if not isinstance(count_columns, dict):
        raise BadField("count_columns", f"must map file names to lists of column names, not {count_columns!r}")
    for name, columns in count_columns.items():
        if name not in names:
            raise BadField("count_columns", f"names {name!r}, which is not one of the files",
                           "declare count columns only for files of this release")
        if not (isinstance(columns, list) and all(isinstance(c, str) and c for c in columns)):
            raise BadField("count_columns", f"{name}: must be a list of column names, not {columns!r}")
    return names, {n: list(c) for n, c in count_columns.items()}


def file_from_outbox(store: AirlockStore, outbox_fd: int, names: list[str], count_columns: dict[str, list[str]],
                     policy: CheckPolicy, limits: Limits) -> list[NewFile]:
    """Copy `names` from the outbox into the store and check them.

    Raises:
        BadField: a file may not leave at all (an image, DICOM or NIfTI; weights where refused),
            is too large, or cannot be read safely (outbox.open_file), naming it.
    """
    stored, kinds = {}, {}
    for name in names:
        with open_file(outbox_fd, name) as (fd, _size):
            try:
                sha, size = store.put(fd, limits.max_file_size, name)
            except TooLarge as e:
                raise BadField("files", e.message, e.hint) from None
        path = store.path(sha)
        with open(path, "rb") as f:
            head = f.read(file_kinds.HEAD_BYTES)
        refusal = file_kinds.refusal(name, head, policy.weights)
        if refusal:
            raise BadField("files", refusal)
        stored[name], kinds[name] = (sha, size), file_kinds.kind_of(name, head)
    findings = check_release({name: store.path(sha) for name, (sha, _) in stored.items()}, count_columns, policy)
    by_file: dict[str, list[dict]] = {name: [] for name in names}
    for finding in findings:
        by_file.setdefault(finding.file, []).append(finding.as_dict())
    return [NewFile(name, sha, size, kinds[name], count_columns.get(name, []), by_file[name])
            for name, (sha, size) in stored.items()]

