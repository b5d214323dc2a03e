"""The airlock: results leave a sandbox's ~/outbox only as release requests that automatic checks
and two output checkers have passed (see README.md)."""
