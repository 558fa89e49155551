# The two entry points of README.md. Each installs what it needs first (scripts/bootstrap.sh).
.PHONY: demo test lint bootstrap stack-up stack-down bench

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	.venv/bin/playscope demo

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy

stack-up: bootstrap
	.venv/bin/playscope stack up --opensearch

stack-down:
	.venv/bin/playscope stack down

bench: bootstrap
	.venv/bin/playscope bench --quick
