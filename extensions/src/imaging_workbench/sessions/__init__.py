"""Training sessions for a room of learners: the command line (commands.py) over the catalog's records
(catalog/training_sessions.py)."""
