"""Resource profiles offered in the spawn form and turned into docker limits."""

from html import escape

from ..deployment import parse_memory


def options_form(profiles: dict, default: str) -> str:
    options = "\n".join(
        f'<option value="{escape(name)}"{" selected" if name == default else ""}>{escape(p.get("display", name))}</option>'
        for name, p in profiles.items())
    return (f'<label for="profile">Resources</label>\n'
            f'<select class="form-control" name="profile" id="profile">\n{options}\n</select>')


def choose(profiles: dict, default: str, formdata_or_options: dict) -> str:
    """The profile named in the form or API options; unknown names are an error the user sees."""
    value = formdata_or_options.get("profile", default)
    if isinstance(value, list):  # form data arrives as lists
        value = value[0] if value else default
    if value not in profiles:
        raise ValueError(f"unknown resource profile '{value}'; choose one of: {', '.join(profiles)}")
    return value


def limits(profile: dict) -> dict:
    """Docker limits of a profile: memory in bytes, CPUs, GPUs (0 = none)."""
    return {"mem_limit": parse_memory(profile["memory"]), "cpu_limit": float(profile["cpu"]),
            "gpus": int(profile.get("gpus", 0))}
