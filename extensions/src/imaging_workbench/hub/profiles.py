"""Resource profiles offered in the spawn form and turned into docker limits."""

from html import escape

import traitlets

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


class ProfileChoice(traitlets.HasTraits):
    """A spawner's profile form and choice, for both spawners: the class gives `profiles`,
    `default_profile` and `available_profiles()` (which profiles this deployment can run)."""

    @traitlets.default("options_form")
    def _options_form(self):
        return lambda spawner: options_form(spawner.available_profiles(), spawner.default_profile)

    def options_from_form(self, formdata):
        return {"profile": choose(self.available_profiles(), self.default_profile, formdata)}

    @property
    def profile_name(self) -> str:
        return choose(self.available_profiles(), self.default_profile, self.user_options or {})
