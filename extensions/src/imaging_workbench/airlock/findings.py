"""What the automatic checks found in a release's files, as shown to the output checkers."""

from dataclasses import asdict, dataclass, field

# Worst first: "fail" stops a release until the file is corrected or a checker overrides it,
# "review" asks the checkers to look at something named, "info" says what was checked.
SEVERITIES = ("fail", "review", "info")


@dataclass(frozen=True)
class Finding:
    """One finding about one file of a release.

    `file` is the file's name in the release (its path in the outbox), `check` a short id of the
    check (`small-cell`, `acro-status`, ...), `where` the place in the file (row, column, label,
    line, ACRO output id) when the finding is about a part of it.
    """

    file: str
    check: str
    severity: str
    message: str
    where: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"Finding.severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")

    def as_dict(self) -> dict:
        return asdict(self)
