"""The states of a federated job, as the hub's job store and the notebook client use them."""

RUNNING_STATES = ("submitted", "running")
FINAL_STATES = ("finished", "partial", "failed", "cancelled")
