"""What every signed-in user may see of a dataset, and the catalogue's search and filters.

Only the public metadata leaves: never the dataset's folder on the host (host_path), nor images
or identifiers, which the catalog does not hold anyway.
"""

from ..catalog import datasets, grants
from ..catalog.models import Dataset
from ..hub import roles

PUBLIC_FIELDS = ("id", *datasets.FIELDS)
FILTERS = ("modality", "site", "body_part")  # exact (case-insensitive) matches; `q` searches the text


def public_view(dataset: Dataset, roles_settings: dict) -> dict:
    """The dataset's public metadata, its stewards and the access modes it offers."""
    return {**{key: getattr(dataset, key) for key in PUBLIC_FIELDS},
            "stewards": sorted(roles.stewards_of(roles_settings, dataset.id)), "modes": list(grants.MODES)}


def matches(row: dict, q: str = "", **filters: str) -> bool:
    """Whether a public view passes the search text `q` (in any text field) and every filter given."""
    for key, wanted in filters.items():
        if wanted and str(row[key]).lower() != wanted.lower():
            return False
    text = " ".join(str(row[key]) for key in ("id", "title", "cancer_type", "modality", "body_part", "site"))
    return all(word in text.lower() for word in q.lower().split())


def facets(rows: list[dict]) -> dict[str, list[str]]:
    """Each filter's values among `rows`, for the catalogue's choices."""
    return {key: sorted({row[key] for row in rows if row[key]}) for key in FILTERS}
