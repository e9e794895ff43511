#!/usr/bin/env bash
# Record one transcript per scenario: a fresh ComfyUI (serve.sh) behind record_proxy.py, and a client command run
# against the proxy.
#
#   scripts/comfyui/record_all.sh OUT_DIR 'CLIENT COMMAND TEMPLATE' [SCENARIO ...]
#
# The template is run by bash once per scenario with {url} (http://127.0.0.1:PROXY_PORT), {hostport}
# (127.0.0.1:PROXY_PORT), {scenario}, {out} (the transcript's path) and {server_pid} (the ComfyUI process, for the
# server-killed scenario, which kills it mid-job) replaced; e.g.
#   scripts/comfyui/record_all.sh /root/comfy-transcripts \
#       '/root/comfyvenv/bin/python scripts/comfyui/client.py --server {url} --server-pid {server_pid} {scenario}'
# Scenarios default to client.py's list. Each one gets a freshly started server (ComfyUI caches node outputs
# between prompts, so a second identical job would run no step), so every transcript starts from a cold server:
# models load, every node executes. The transcript is OUT_DIR/SCENARIO.json, written by the proxy when the client
# has closed everything (--once). A failing client command is reported and its transcript kept.
# Ports: COMFY_PORT (default 8190) for the server, PROXY_PORT (8290) for the proxy; FIXTURES as for serve.sh;
# PROXY_ARGS: more record_proxy.py flags (e.g. --drop-socket-after-progress 3 for the reconnect scenario).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
COMFY_VENV="${COMFY_VENV:-/root/comfyvenv}"
COMFY_PORT="${COMFY_PORT:-8190}"
PROXY_PORT="${PROXY_PORT:-8290}"
FIXTURES="${FIXTURES:-/root/comfy-fixtures}"

[[ $# -ge 2 ]] || { sed -n 2,15p "$0" >&2; exit 2; }
out_dir="$(realpath -m "$1")"
template="$2"
shift 2
scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 ]]; then
    scenarios=(txt2img txt2img-clip-l txt2img-checkpoint txt2img-lora img2img interrupt reconnect execution-error server-killed bad-input
               missing-model object-info system-stats upload)
fi
mkdir -p "$out_dir"
upstream="http://127.0.0.1:$COMFY_PORT"
proxy="127.0.0.1:$PROXY_PORT"
failed=()

cd "$repo"
for scenario in "${scenarios[@]}"; do
    transcript="$out_dir/$scenario.json"
    "$here/serve.sh" --stop "$COMFY_PORT" >/dev/null 2>&1
    "$here/serve.sh" "$COMFY_PORT" "$FIXTURES" >/dev/null || { echo "serve.sh failed" >&2; exit 1; }
    # The proxy says "recording to" once it listens; nothing else may pass it before the client.
    "$COMFY_VENV/bin/python" "$here/record_proxy.py" --listen "$proxy" --upstream "$upstream" --out "$transcript" \
        --once ${PROXY_ARGS:-} 2>"$out_dir/$scenario.proxy.log" &
    proxy_pid=$!
    for _ in $(seq 1 100); do
        grep -q "recording to" "$out_dir/$scenario.proxy.log" 2>/dev/null && break
        sleep 0.1
    done
    command="${template//\{url\}/http://$proxy}"
    command="${command//\{hostport\}/$proxy}"
    command="${command//\{scenario\}/$scenario}"
    command="${command//\{out\}/$transcript}"
    command="${command//\{server_pid\}/$(cat "${COMFY_RUN_ROOT:-/tmp/sd3studio-comfyui}/$COMFY_PORT/pid")}"
    start=$(date +%s.%N)
    if ! bash -c "$command" >"$out_dir/$scenario.client.log" 2>&1; then
        failed+=("$scenario")
    fi
    # The proxy ends by itself --grace seconds after the client's last connection closed; a client that never
    # connected leaves it waiting, and SIGTERM makes it write what it has.
    for _ in $(seq 1 100); do kill -0 "$proxy_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$proxy_pid" 2>/dev/null && kill -TERM "$proxy_pid"
    wait "$proxy_pid"
    printf '%-20s %6.1fs  %s\n' "$scenario" "$(echo "$(date +%s.%N) - $start" | bc)" "$(tail -1 "$out_dir/$scenario.proxy.log")"
done
"$here/serve.sh" --stop "$COMFY_PORT" >/dev/null 2>&1
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "client command failed for: ${failed[*]} (see $out_dir/SCENARIO.client.log)" >&2
    exit 1
fi
