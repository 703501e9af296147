#!/usr/bin/env bash
# sgw SUT: the Supervision Gateway, embedded (SQLite in the run folder), as the peer harness runs it.
# MQTT connector(s) -> mapping bench.telemetry (iot_reading) -> validation (bad USCC: rejected, kept
# in the rejections ledger) -> outbox -> delivery worker -> http_post adapter -> the sink.
# Paths are resolved from this folder, so the project can live anywhere.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/../../.." && pwd)"
venv="${SGWBENCH_VENV:-$project/.venv}"
# SGW_<SECTION>__<KEY> would override the generated config: the run depends on this folder only
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^SGW_' || true)
config="$("$venv/bin/python" "$here/gen_config.py")"
echo "sgw SUT: config $config" >&2
cd "$project"
exec "$venv/bin/sgw" run -c "$config"
