"""The catalogue of AI tools: add (checked, copied read-only, whole or not at all), approve,
retire, list and show; every step audited.

States: draft (added) -> approved (by a tool reviewer who did not add it) -> retired (with a
reason; a draft can be retired too). A tool's files live at `<state_dir>/tools/<id>/<version>/`,
read-only, and `<state_dir>/tools/catalog.json` lists the approved tools' cards (and the retired
ones, so the loader can say why it refuses them): sandboxes read that file, never the database.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from ..catalog import audit
from ..catalog.access_requests import BadField, Conflict, NotAllowed
from ..catalog.idp_roles import effective_roles
from ..catalog.models import AuditEvent, Tool
from ..clock import utcnow
from ..errors import NotFound
from ..hub import roles
from .archive import bundle_root, is_archive, unpack
from .bundle_check import check_bundle
from .card import ToolRefused, check_weights, label
from .loader import CATALOG_FILE

DRAFT, APPROVED, RETIRED = "draft", "approved", "retired"
STATES = (DRAFT, APPROVED, RETIRED)
PARTIAL = ".partial-"


def tools_dir(settings: dict) -> Path:
    return Path(settings["state_dir"]) / "tools"


def tool_folder(settings: dict, tool_id: str, version: str) -> Path:
    return tools_dir(settings) / tool_id / version


def _remove(path: Path | None) -> None:
    """Remove a (read-only) tree, if it is there."""
    if path is None or not os.path.lexists(path):
        return
    for root, dirs, _ in os.walk(path):
        os.chmod(root, 0o700)
    shutil.rmtree(path)


def _copy_read_only(source: Path, parent: Path, version: str) -> Path:
    """Copy `source` to a new partial folder in `parent`, every file and folder read-only."""
    partial = Path(tempfile.mkdtemp(prefix=f"{PARTIAL}{version}-", dir=parent))
    shutil.copytree(source, partial, dirs_exist_ok=True)
    for root, dirs, files in os.walk(partial, topdown=False):
        for name in files:
            os.chmod(Path(root, name), 0o444)
        os.chmod(root, 0o555)
    return partial


def get_tool(session, tool_id: str, version: str) -> Tool:
    tool = session.get(Tool, (tool_id, version))
    if tool is None:
        raise NotFound(f"tool {tool_id} {version} is not in the catalogue", "see 'workbench tools list'")
    return tool


def add(ctx, source: Path) -> dict:
    """Check the bundle folder or archive `source` and add it as a draft; returns the tool.

    The bundle is checked in full first (bundle_check.py), then copied to a partial folder,
    recorded and audited, and the folder renamed into place in the same step: a refusal or a
    failure leaves nothing in the state directory.

    Raises:
        ToolRefused: the bundle fails a check; Conflict: that id and version are already there.
    """
    source, root = Path(source), tools_dir(ctx.settings)
    if not (source.is_dir() or is_archive(source)):
        raise ToolRefused(f"tool bundle {source} is neither a folder nor a .zip / .tar.gz archive",
                          "give the bundle's folder or archive")
    root.mkdir(parents=True, exist_ok=True)
    unpacked = unpack(source, root) if is_archive(source) else None
    bundle = bundle_root(unpacked) if unpacked else source
    made_parent = partial = final = None
    try:
        card = check_bundle(bundle, ctx.settings)
        parent = root / card["id"]
        with ctx.session() as s:
            if s.get(Tool, (card["id"], card["version"])) is not None or (parent / card["version"]).exists():
                raise Conflict(f"{label(card)} is already in the catalogue",
                               "give changed weights or a changed card a new version")
            if not parent.exists():
                parent.mkdir()
                os.chmod(parent, 0o755)  # sandboxes enter it as another uid, whatever the umask
                made_parent = parent
            partial = _copy_read_only(bundle, parent, card["version"])
            tool = Tool(id=card["id"], version=card["version"], kind=card["kind"], modality=card["modality"],
                        state=DRAFT, card=card, weights_sha256=card["weights"]["sha256"],
                        added_by=roles.normalize(ctx.actor), added_at=utcnow())
            s.add(tool)
            audit.record(s, ctx.actor, "tool.add", f"{card['id']} {card['version']}", source=str(source),
                         weights_sha256=card["weights"]["sha256"], network=card["network"]["class"])
            s.flush()
            final = parent / card["version"]
            os.rename(partial, final)
        return tool.as_dict()
    except BaseException:
        _remove(partial)
        _remove(final)
        if made_parent is not None and made_parent.exists() and not any(made_parent.iterdir()):
            made_parent.rmdir()
        raise
    finally:
        _remove(unpacked)


def _reviewer(session, ctx, tool: Tool, step: str) -> str:
    """The actor, a tool reviewer by the settings or the identity provider's groups."""
    reviewer = roles.normalize(ctx.actor)
    if reviewer not in roles.members(effective_roles(session, ctx.settings["roles"]), roles.TOOL_REVIEWER):
        raise NotAllowed(f"{reviewer} is not a tool reviewer, so cannot {step} tool {tool.id} {tool.version}",
                         "tool reviewers are named in the settings (roles.tool_reviewers) or by the identity "
                         "provider's groups (oidc.role_groups.tool_reviewers)")
    return reviewer


def approve(ctx, tool_id: str, version: str) -> dict:
    """A tool reviewer, not the person who added it, approves a draft; the weights on disk are
    checked against the card again first (what is approved is what is there).

    The catalogue file is written after the commit: should that fail, the tool stays unloadable
    until it is written again (approving an approved tool does that), never the reverse."""
    with ctx.session() as s:
        tool = get_tool(s, tool_id, version)
        reviewer = _reviewer(s, ctx, tool, "approve")
        if reviewer == tool.added_by:
            raise NotAllowed(f"{reviewer} added tool {tool_id} {version}, so cannot approve it",
                             "another tool reviewer approves it: nobody reviews their own work")
        if tool.state == RETIRED:
            raise Conflict(f"tool {tool_id} {version} is retired ({tool.retire_reason})",
                           "a retired tool stays retired; add a new version instead")
        if tool.state == DRAFT:
            check_weights(tool_folder(ctx.settings, tool_id, version), tool.card)
            tool.state, tool.approved_by, tool.approved_at = APPROVED, reviewer, utcnow()
            audit.record(s, ctx.actor, "tool.approve", f"{tool_id} {version}", weights_sha256=tool.weights_sha256)
        result = tool.as_dict()
    write_catalog(ctx)
    return result


def retire(ctx, tool_id: str, version: str, reason: str) -> dict:
    """A tool reviewer, or whoever added it, retires a tool, with a reason.

    The catalogue file is written before the commit (and again after): should the commit fail,
    the tool is unloadable, never still loadable after its retirement was asked for."""
    if not isinstance(reason, str) or not reason.strip():
        raise BadField("reason", f"must say why tool {tool_id} {version} is retired",
                       "users of the tool read it when it refuses to load")
    with ctx.session() as s:
        tool = get_tool(s, tool_id, version)
        if roles.normalize(ctx.actor) != tool.added_by:
            _reviewer(s, ctx, tool, "retire")
        if tool.state == RETIRED:
            return tool.as_dict()
        tool.state, tool.retired_by, tool.retired_at = RETIRED, roles.normalize(ctx.actor), utcnow()
        tool.retire_reason = reason.strip()
        audit.record(s, ctx.actor, "tool.retire", f"{tool_id} {version}", reason=tool.retire_reason)
        s.flush()
        _write_catalog_file(ctx.settings, s)
        result = tool.as_dict()
    write_catalog(ctx)
    return result


def list_tools(ctx, state: str | None = None) -> list[dict]:
    """Every tool version (or those in `state`), by id and version."""
    with ctx.session() as s:
        query = select(Tool).order_by(Tool.id, Tool.version)
        if state:
            query = query.where(Tool.state == state)
        return [t.as_dict() for t in s.scalars(query)]


def show(ctx, tool_id: str, version: str | None = None) -> list[dict]:
    """The versions of `tool_id` (or the one `version`), with their cards and audit trail."""
    with ctx.session() as s:
        tools = [get_tool(s, tool_id, version)] if version else list(
            s.scalars(select(Tool).where(Tool.id == tool_id).order_by(Tool.version)))
        if not tools:
            raise NotFound(f"tool {tool_id} is not in the catalogue", "see 'workbench tools list'")
        out = []
        for tool in tools:
            row = tool.as_dict()
            row["path"] = str(tool_folder(ctx.settings, tool.id, tool.version))
            row["audit"] = [e.as_dict() for e in s.scalars(select(AuditEvent).where(
                AuditEvent.subject == f"{tool.id} {tool.version}", AuditEvent.action.like("tool.%"))
                .order_by(AuditEvent.id))]
            out.append(row)
        return out


def _write_catalog_file(settings: dict, session) -> Path:
    tools = list(session.scalars(select(Tool).where(Tool.state.in_((APPROVED, RETIRED)))
                                 .order_by(Tool.id, Tool.version)))
    content = {
        "written_at": utcnow().isoformat(timespec="seconds"),
        "tools": [t.card for t in tools if t.state == APPROVED],
        "retired": [{"id": t.id, "version": t.version, "retired_at": t.retired_at.isoformat(timespec="seconds"),
                     "reason": t.retire_reason} for t in tools if t.state == RETIRED],
    }
    root = tools_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{CATALOG_FILE}-", dir=root)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(content, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # sandboxes read it as another uid
        os.replace(tmp, root / CATALOG_FILE)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return root / CATALOG_FILE


def write_catalog(ctx) -> Path:
    """Write `<state_dir>/tools/catalog.json` from the catalogue as committed (atomically)."""
    with ctx.session() as s:
        return _write_catalog_file(ctx.settings, s)
