# The README's two commands. Both run as root on Debian 12 and install what is missing.
.PHONY: up test

up:
	bash scripts/up.sh

test:
	bash scripts/test.sh
