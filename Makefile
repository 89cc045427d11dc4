# The two commands that matter on a fresh machine: `make demo` and `make test`.
# Each one sets everything up first (idempotent), then runs.
.PHONY: setup demo test lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/python -m mediaserver.demo $(ARGS)

lint: setup
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

test: lint
	bash scripts/test.sh

# Figures against DESIGN.md's targets; see the README's "Measured".
bench: setup
	.venv/bin/python -m benchmarks.amd_accuracy
	.venv/bin/python -m benchmarks.amd_ws --speed 4
	.venv/bin/python -m benchmarks.capacity
	.venv/bin/python -m benchmarks.dispatch
	.venv/bin/python -m benchmarks.csv_rows
	.venv/bin/python -m benchmarks.webhooks
	.venv/bin/python -m benchmarks.carriers
