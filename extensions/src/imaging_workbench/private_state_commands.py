"""CLI: `workbench private-state`, the repair `make up` runs before the hub starts."""

from .private_state import Change, ensure_private_state, public_folders


def print_changes(changes: list[Change]) -> None:
    """One line per tightened path, then what that means for secrets readable until now."""
    if not changes:
        return
    print(f"made private ({len(changes)} change(s)):")
    for change in changes:
        print(f"  {change.was:03o} -> {change.now:03o}  {change.path}")
    print("  other local accounts could read these until now: if one is not trusted, replace what it could read "
          "(cookie secret, FLARE kits, demo passwords)")


def _private_state(ctx, args):
    changes = ensure_private_state(ctx.settings)
    print_changes(changes)
    kept = sorted(str(p) for p in public_folders(ctx.settings) if p.is_dir())
    print(f"state directory {ctx.state_dir}: {'now' if changes else 'already'} readable by its owner only"
          + (f", except for the sandbox user (uid 1000): {', '.join(kept)}" if kept else ""))


def register(subparsers) -> None:
    p = subparsers.add_parser("private-state", help="make the state directory's secrets and state readable by "
                                                    "their owner only (repairs an older install)")
    p.set_defaults(handler=_private_state)
