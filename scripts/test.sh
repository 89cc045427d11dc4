#!/usr/bin/env bash
# Runs the test suite. The PostgreSQL tests need the server on 127.0.0.1:5432
# (trust auth, database `test`); without it they are skipped, and this says so.
# Under CI (CI=true) the server is required and a missing one fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."

export CALLWRIGHT_PG_URL="${CALLWRIGHT_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
if .venv/bin/python -m mediaserver.store.probe "$CALLWRIGHT_PG_URL"; then
    export CALLWRIGHT_PG_REQUIRED=1
else
    if [ "${CI:-}" = "true" ]; then
        echo "CI needs PostgreSQL on 127.0.0.1:5432 and it is not answering" >&2
        exit 1
    fi
    echo "NOTE: no PostgreSQL on 127.0.0.1:5432; the PostgreSQL tests will be skipped" >&2
    unset CALLWRIGHT_PG_REQUIRED
fi
exec .venv/bin/python -m pytest -q "$@"
