"""The approved algorithms, one module each: its declaration (`ALGORITHM`, an `Algorithm`), its
site function and its aggregation. A site runs only what is listed here *and* allowed in its own
policy; researchers pick one by id and pass parameters checked against its schema."""

from ...errors import WorkbenchError
from . import cohort_statistics, federated_evaluation, federated_training
from .base import Algorithm

ALGORITHMS: dict[str, Algorithm] = {m.ALGORITHM.id: m.ALGORITHM
                                    for m in (cohort_statistics, federated_training, federated_evaluation)}


def get_algorithm(algorithm_id: str) -> Algorithm:
    try:
        return ALGORITHMS[algorithm_id]
    except (KeyError, TypeError):
        raise WorkbenchError(f"unknown algorithm {algorithm_id!r}",
                             f"pick one of the approved algorithms: {', '.join(sorted(ALGORITHMS))}") from None
