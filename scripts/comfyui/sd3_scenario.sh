#!/usr/bin/env bash
# One scenario of our own client (`sd3 generate --backend`) against a ComfyUI server, for record_all.sh:
#
#   scripts/comfyui/record_all.sh Tests/ComfyUITests/Fixtures/comfyui \
#       'scripts/comfyui/sd3_scenario.sh {scenario} {hostport}' txt2img checkpoint-lora img2img interrupt refused missing-model
#
# The transcripts are what `make test` replays (Tests/ComfyUITests/ReplayTests.swift); each scenario's settings are
# written here once and read back by the tests from the recorded POST /prompt. SD3 is the binary (default: the
# debug build); the images go to OUT (default: a temporary folder).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SD3="${SD3:-$repo/.build/debug/sd3}"
OUT="${OUT:-$(mktemp -d)}"
scenario="$1"
server="comfyui://$2"
unet=(--model tiny-sd3.safetensors --clip-l clip_l.safetensors --clip-g clip_g.safetensors --vae sd3_vae.safetensors)
common=(--backend "$server" --no-history -W 64 -H 64)
case "$scenario" in
  txt2img)
    exec "$SD3" generate "${common[@]}" "${unet[@]}" --prompt "a red square on a blue background" --steps 4 --guidance 5 \
      --seed 42 --preview-every 1 --preview-path "$OUT/preview.png" --output "$OUT/txt2img.png" ;;
  checkpoint-lora)
    exec "$SD3" generate "${common[@]}" --model tiny-sd3-all.safetensors --lora tiny-lora.safetensors:0.8 --shift 3 \
      --prompt "a green circle" --negative-prompt "blurry" --steps 3 --guidance 4 --seed 7 --output "$OUT/checkpoint-lora.png" ;;
  img2img)
    exec "$SD3" generate "${common[@]}" "${unet[@]}" --prompt "a yellow triangle" --init-image "$repo/Tests/SD3Tests/Fixtures/init.png" \
      --strength 0.5 --steps 4 --guidance 5 --seed 3 --output "$OUT/img2img.png" ;;
  interrupt)
    # Ctrl-C once the second step is reported: the client posts /interrupt and ends with status 130.
    log="$OUT/interrupt.log"
    "$SD3" generate "${common[@]}" "${unet[@]}" --prompt "a slow one" --steps 40 --guidance 5 --seed 5 --output "$OUT/interrupt.png" 2>"$log" &
    pid=$!
    for _ in $(seq 1 600); do grep -q "step 2/40" "$log" 2>/dev/null && break; sleep 0.05; done
    kill -INT "$pid"
    wait "$pid"
    status=$?
    cat "$log" >&2
    [[ $status == 130 ]] ;;
  reconnect)
    # Recorded with PROXY_ARGS="--drop-socket-after-progress 3": the socket breaks mid-job; the client reconnects,
    # asks /history and /queue, and reads on.
    exec "$SD3" generate "${common[@]}" "${unet[@]}" --prompt "a dropped link" --steps 12 --guidance 5 --seed 11 --output "$OUT/reconnect.png" ;;
  refused)
    # ComfyUI's ModelSamplingSD3 takes a shift up to 100; ours up to 1000: the server's 400 with node_errors.
    ! "$SD3" generate "${common[@]}" "${unet[@]}" --prompt "x" --shift 500 --steps 2 --seed 1 --output "$OUT/refused.png" ;;
  execution-error)
    # Valid inputs the model cannot run: 1088 px is more than the tiny MMDiT's 64×64-patch position table, so its
    # KSampler fails while running (execution_error with the node and the exception).
    ! "$SD3" generate --backend "$server" --no-history "${unet[@]}" -W 64 -H 1088 --prompt "too tall" --steps 2 --seed 1 --output "$OUT/too-tall.png" ;;
  missing-model)
    ! "$SD3" generate "${common[@]}" --model sd3.5_large.safetensors --prompt "x" --steps 2 --seed 1 --output "$OUT/missing.png" ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
