"""Runs in the FLARE server process: the controller that sends an approved algorithm's tasks to
the job's sites and combines what they release."""
