# The README's two commands (and `down`). All run as root on Debian 12; up and test install what is missing.
.PHONY: up down test

up:
	bash scripts/up.sh

down:
	bash scripts/down.sh

test:
	bash scripts/test.sh
