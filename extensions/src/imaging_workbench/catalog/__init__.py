"""The catalog: datasets, accounts, grants and the hash-chained audit trail, in one SQL database."""
