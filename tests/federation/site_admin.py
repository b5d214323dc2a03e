"""What a site's administrator does by hand, for the federation tests: edit the site's policy
file for a while, and read the site's own ledger."""

from contextlib import contextmanager

import yaml


@contextmanager
def site_policy(federation, site: str, edit):
    """The site's admin edits its policy file (`edit(policy)` on the parsed YAML); restored after."""
    from imaging_workbench.federation.site.policy_file import POLICY_FILE

    path = federation.kit(site) / "local" / POLICY_FILE
    original = path.read_text()
    policy = yaml.safe_load(original)
    edit(policy)
    path.write_text(yaml.safe_dump(policy))
    try:
        yield path
    finally:
        path.write_text(original)


def dataset_limits(dataset: str, **limits):
    def edit(policy):
        policy.setdefault("datasets", {}).setdefault(dataset, {}).update(limits)
    return edit


def ledger(federation, site: str):
    from imaging_workbench.federation.site.ledger import LEDGER_FILE, Ledger

    return Ledger(federation.kit(site) / "local" / LEDGER_FILE)


def charges(federation, site: str, researcher: str, dataset: str) -> list:
    return [r for r in ledger(federation, site).rows(researcher=researcher) if r["dataset_id"] == dataset]
