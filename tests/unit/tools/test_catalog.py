"""The catalogue of AI tools on SQLite and PostgreSQL (tools/catalog.py, tools/loader.py, the
`workbench tools` CLI, `Tools()`): add -> approve -> load gives a working network; the adder and
non-reviewers cannot approve; drafts and retired tools do not load; weights changed after approval
do not load; a refused add leaves nothing in the state directory; every step is audited."""

import hashlib
import json
import os
import shutil
import tarfile

import pytest
import torch
from sqlalchemy import select

from imaging_workbench import Tools
from imaging_workbench.catalog import audit
from imaging_workbench.catalog.access_requests import NotAllowed
from imaging_workbench.catalog.models import AuditEvent, Tool
from imaging_workbench.tools import catalog
from imaging_workbench.tools.card import ToolRefused
from imaging_workbench.tools.loader import load_tool

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def settings_file(settings, tmp_path):
    """The deployment settings file the CLI reads, naming the tool reviewers."""
    import yaml

    path = tmp_path / "workbench.yaml"
    path.write_text(yaml.safe_dump({"state_dir": settings["state_dir"], "database_url": settings["database_url"],
                                    "roles": {"tool_reviewers": ["rita", "ravi"]}}))
    return path


def state_files(settings) -> list[str]:
    root = catalog.tools_dir(settings)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_an_approved_tool_loads_read_only_and_its_network_gives_the_declared_output(people, make_bundle, settings):
    added = catalog.add(people("rita"), make_bundle())
    assert (added["state"], added["added_by"]) == ("draft", "rita")
    approved = catalog.approve(people("ravi"), "tumour-seg", "1.0.0")
    assert (approved["state"], approved["approved_by"]) == ("approved", "ravi")

    folder = catalog.tool_folder(settings, "tumour-seg", "1.0.0")
    network, pre, post, card = load_tool(folder)
    with torch.no_grad():
        assert network(torch.rand(1, 1, 16, 16, 16)).shape == (1, 2, 16, 16, 16)
    saved = torch.load(folder / "models" / "model.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in network.state_dict().items())
    assert [type(t).__name__ for t in pre.transforms] == ["LoadImaged", "EnsureChannelFirstd", "ScaleIntensityRanged"]
    assert post.transforms[1].transform is pre  # Invertd undoes the tool's own preprocessing
    assert not os.access(folder / "models" / "model.pt", os.W_OK) or os.geteuid() == 0
    assert oct((folder / "models" / "model.pt").stat().st_mode & 0o777) == "0o444"
    assert oct(folder.stat().st_mode & 0o777) == "0o555"
    assert json.loads((catalog.tools_dir(settings) / "catalog.json").read_text())["tools"] == [card]
    with people("rita").session() as s:
        trail = [(e.actor, e.action, e.subject) for e in audit.events(s) if e.action.startswith("tool.")]
    assert trail == [("rita", "tool.add", "tumour-seg 1.0.0"), ("ravi", "tool.approve", "tumour-seg 1.0.0")]


def test_the_person_who_added_a_tool_cannot_approve_it_nor_can_a_non_reviewer(people, make_bundle, settings):
    catalog.add(people("rita"), make_bundle())
    with pytest.raises(NotAllowed, match="rita added tool tumour-seg 1.0.0, so cannot approve it"):
        catalog.approve(people("Rita"), "tumour-seg", "1.0.0")
    with pytest.raises(NotAllowed, match="adam is not a tool reviewer"):
        catalog.approve(people("adam"), "tumour-seg", "1.0.0")
    assert catalog.list_tools(people("adam"))[0]["state"] == "draft"


def test_the_identity_providers_groups_can_make_a_tool_reviewer(people, make_bundle):
    from imaging_workbench.catalog import accounts, idp_roles
    from imaging_workbench.hub import roles

    catalog.add(people("rita"), make_bundle())
    groups = {"tool_reviewers": ["ai-board"]}
    with people("hub").session() as s:
        accounts.add_account(s, "hub", "ivy")
        idp_roles.record_idp_roles(s, "hub", "ivy", roles.roles_from_groups(groups, "ivy", ["unrelated"]))
    with pytest.raises(NotAllowed, match="ivy is not a tool reviewer"):
        catalog.approve(people("ivy"), "tumour-seg", "1.0.0")
    with people("hub").session() as s:  # her next login: the provider puts her in ai-board
        idp_roles.record_idp_roles(s, "hub", "ivy", roles.roles_from_groups(groups, "ivy", ["ai-board"]))
    assert catalog.approve(people("ivy"), "tumour-seg", "1.0.0")["approved_by"] == "ivy"


def test_a_draft_and_a_retired_tool_are_refused_at_load_naming_the_tool_and_what_to_do(people, make_bundle, settings):
    catalog.add(people("rita"), make_bundle())
    folder = catalog.tool_folder(settings, "tumour-seg", "1.0.0")
    with pytest.raises(ToolRefused, match="tool tumour-seg 1.0.0 is not approved") as e:
        load_tool(folder)
    assert "workbench tools approve tumour-seg 1.0.0" in str(e.value)
    catalog.approve(people("ravi"), "tumour-seg", "1.0.0")
    load_tool(folder)
    retired = catalog.retire(people("ravi"), "tumour-seg", "1.0.0", "Dice fell on the 2026 scanner")
    assert retired["state"] == "retired"
    with pytest.raises(ToolRefused, match="tool tumour-seg 1.0.0 was retired on .*: Dice fell on the 2026 scanner"):
        load_tool(folder)
    written = json.loads((catalog.tools_dir(settings) / "catalog.json").read_text())
    assert written["tools"] == [] and written["retired"][0]["reason"] == "Dice fell on the 2026 scanner"
    assert Tools(catalog.tools_dir(settings) / "catalog.json").list(as_frame=False) == []


def test_weights_changed_after_approval_are_refused_at_load_naming_both_hashes(people, make_bundle, settings):
    catalog.add(people("rita"), make_bundle())
    catalog.approve(people("ravi"), "tumour-seg", "1.0.0")
    weights = catalog.tool_folder(settings, "tumour-seg", "1.0.0") / "models" / "model.pt"
    approved = hashlib.sha256(weights.read_bytes()).hexdigest()
    weights.chmod(0o644)
    weights.write_bytes(weights.read_bytes() + b"changed")
    with pytest.raises(ToolRefused) as e:
        load_tool(weights.parent.parent)
    assert approved in str(e.value) and hashlib.sha256(weights.read_bytes()).hexdigest() in str(e.value)


def test_a_refused_add_leaves_nothing_in_the_state_directory(people, make_bundle, settings, monkeypatch):
    with pytest.raises(ToolRefused):
        catalog.add(people("rita"), make_bundle("bad", card={"weights": {"size": 1}}))
    assert state_files(settings) == []

    def audit_fails(*args, **kwargs):  # a failure after the copy was made
        raise RuntimeError("database went away")

    monkeypatch.setattr(catalog.audit, "record", audit_fails)
    with pytest.raises(RuntimeError, match="database went away"):
        catalog.add(people("rita"), make_bundle())
    assert state_files(settings) == []
    assert catalog.list_tools(people("rita")) == []


def test_a_refused_archive_leaves_nothing_and_a_good_one_is_added(people, make_bundle, settings, tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tf:
        tf.add(make_bundle(), arcname="tumour-seg")
        link = tarfile.TarInfo("tumour-seg/models/extra.pt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tf.addfile(link)
    with pytest.raises(ToolRefused, match="is a link or special file"):
        catalog.add(people("rita"), evil)
    assert state_files(settings) == []
    good = shutil.make_archive(str(tmp_path / "tumour-seg"), "zip", tmp_path / "bundles", "seg")
    assert catalog.add(people("rita"), good)["state"] == "draft"
    assert [p for p in state_files(settings) if "/" not in p] == ["tumour-seg"]
    assert (catalog.tool_folder(settings, "tumour-seg", "1.0.0") / "configs" / "metadata.json").is_file()


def test_the_same_version_cannot_be_added_twice(people, make_bundle, settings):
    folder = make_bundle()
    catalog.add(people("rita"), folder)
    with pytest.raises(catalog.Conflict, match="tool tumour-seg 1.0.0 is already in the catalogue"):
        catalog.add(people("rita"), folder)
    with people("rita").session() as s:
        assert len(s.scalars(select(Tool)).all()) == 1


def test_the_cli_adds_approves_lists_and_shows_a_tool(people, make_bundle, cli, settings):
    rc, out, err = cli("tools", "add", str(make_bundle()), "--json", actor="rita")
    assert rc == 0, err
    assert json.loads(out)[0]["state"] == "draft"
    rc, out, err = cli("tools", "approve", "tumour-seg", "1.0.0", actor="rita")
    assert rc == 1 and "rita added tool tumour-seg 1.0.0, so cannot approve it" in err and "what to do" in err
    assert cli("tools", "approve", "tumour-seg", "1.0.0", actor="ravi")[0] == 0
    rc, out, _ = cli("tools", "list")
    assert "tumour-seg" in out and "approved" in out
    rc, out, _ = cli("tools", "show", "tumour-seg", "--json")
    [shown] = json.loads(out)
    assert [e["action"] for e in shown["audit"]] == ["tool.add", "tool.approve"]
    rc, out, err = cli("tools", "retire", "tumour-seg", "1.0.0", "--reason", " ", actor="ravi")
    assert rc == 1 and "reason: must say why" in err
    frame = Tools(catalog.tools_dir(settings) / "catalog.json").list()
    assert list(frame["id"]) == ["tumour-seg"] and frame.loc[0, "modality"] == "CT"
    with people("x").session() as s:
        assert s.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)) == "tool.approve"


def test_a_retired_tool_cannot_be_approved_again_and_approving_twice_changes_nothing(people, make_bundle):
    catalog.add(people("rita"), make_bundle())
    first = catalog.approve(people("ravi"), "tumour-seg", "1.0.0")
    assert catalog.approve(people("ravi"), "tumour-seg", "1.0.0")["approved_at"] == first["approved_at"]
    catalog.retire(people("rita"), "tumour-seg", "1.0.0", "superseded by 1.1.0")  # its adder may retire it
    with pytest.raises(catalog.Conflict, match="tool tumour-seg 1.0.0 is retired"):
        catalog.approve(people("ravi"), "tumour-seg", "1.0.0")
    with people("rita").session() as s:
        assert [e.action for e in audit.events(s) if e.action.startswith("tool.")] == [
            "tool.add", "tool.approve", "tool.retire"]
