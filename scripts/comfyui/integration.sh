#!/usr/bin/env bash
# `make test-comfyui`: our client against two real ComfyUI 0.3.75 servers on loopback (serve.sh), no replay.
#   1. each scenario of sd3_scenario.sh against server A (txt2img with previews, checkpoint + LoRA, img2img,
#      interrupt, a refused workflow, a missing model), checking the exit status, the PNG and its metadata;
#   2. a 9-seed grid over A, B and the local engine (--backend local,A,B) with B stopped half-way: every seed once;
#   3. the same seed on ComfyUI and on our engine with the same random weights: PSNR and max difference.
# Ports: COMFY_A (8196), COMFY_B (8197). SD3: the binary (default: the debug build). Prints PASS/FAIL per check and
# exits non-zero when any failed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
export SD3="${SD3:-$repo/.build/debug/sd3}"
A="${COMFY_A:-8196}"; B="${COMFY_B:-8197}"
FIXTURES="${FIXTURES:-/root/comfy-fixtures}"
out="$(mktemp -d /tmp/sd3-comfyui-it.XXXXXX)"
failed=0
check() { if eval "$2"; then echo "PASS  $1"; else echo "FAIL  $1"; failed=$((failed + 1)); fi; }
text() { python3 - "$1" "$2" <<'PY'
import sys, struct
data = open(sys.argv[1], "rb").read(); i = 8
while i < len(data):
    n = struct.unpack(">I", data[i:i + 4])[0]; kind = data[i + 4:i + 8]
    if kind == b"tEXt":
        key, _, value = data[i + 8:i + 8 + n].partition(b"\0")
        if key.decode() == sys.argv[2]: print(value.decode("latin-1"))
    i += 12 + n
PY
}
trap '"$here/serve.sh" --stop "$A" >/dev/null 2>&1; "$here/serve.sh" --stop "$B" >/dev/null 2>&1' EXIT

"$here/serve.sh" "$A" "$FIXTURES" || exit 1
"$here/serve.sh" "$B" "$FIXTURES" || exit 1

# 1. Scenarios against A.
for scenario in txt2img checkpoint-lora img2img interrupt refused missing-model; do
    OUT="$out" "$here/sd3_scenario.sh" "$scenario" "127.0.0.1:$A" >"$out/$scenario.log" 2>&1
    check "$scenario exits as expected" "[[ $? == 0 ]]"
done
check "txt2img PNG is 64x64 with Backend in its parameters" "text '$out/txt2img.png' parameters | grep -q 'Backend: \"comfyui@127.0.0.1:$A\"'"
check "txt2img PNG carries ComfyUI's prompt JSON" "text '$out/txt2img.png' prompt | grep -q SaveImageWebsocket"
check "txt2img wrote a preview" "[[ -s '$out/preview.png' ]]"
check "interrupt wrote nothing" "[[ ! -e '$out/interrupt.png' ]] && grep -q 'cancelled; 0 of 1 written' '$out/interrupt.log'"
check "refused names the node and input" "grep -q 'ModelSamplingSD3.shift: Value 500.0 bigger than max of 100.0' '$out/refused.log'"
check "missing model lists the server's models" "grep -q \"its diffusion_models: tiny-sd3-sai.safetensors, tiny-sd3.safetensors\" '$out/missing-model.log'"
(cd "$out" && "$SD3" generate --params-from txt2img.png --output again.png --no-history >"$out/again.log" 2>&1)
check "--params-from sends the same job again (same pixels)" "python3 '$here/compare_png.py' '$out/txt2img.png' '$out/again.png' --max 0"

# 2. A 9-seed grid over A, B and the local engine, B stopped in the middle of a job.
grid="$out/grid"; mkdir -p "$grid"
"$SD3" generate --backend "local,comfyui://127.0.0.1:$A,comfyui://127.0.0.1:$B" --local-model "$FIXTURES/sd3-tiny-comfy" \
    --model tiny-sd3.safetensors --clip-l clip_l.safetensors --clip-g clip_g.safetensors --vae sd3_vae.safetensors --no-t5 \
    --prompt "a grid" -W 64 -H 64 --steps 12 --guidance 5 --seed 100 --count 9 --output "$grid/" --no-history >"$out/grid.out" 2>"$out/grid.log" &
pid=$!
# B is stopped in the middle of its second job (the first may still be loading its models).
for _ in $(seq 1 1200); do [[ $(grep -c "on 127.0.0.1:$B: step 3/12" "$out/grid.log" 2>/dev/null) -ge 2 ]] && break; sleep 0.05; done
"$here/serve.sh" --stop "$B" >/dev/null
wait "$pid"; status=$?
check "grid over two servers + local finishes (B stopped half-way)" "[[ $status == 0 ]]"
seeds="$(for f in "$grid"/*.png; do text "$f" sd3-studio | python3 -c 'import json,sys; print(json.load(sys.stdin)["seed"])'; done | sort -n | tr '\n' ' ')"
check "every seed 100…108 exactly once ($seeds)" "[[ '$seeds' == '100 101 102 103 104 105 106 107 108 ' ]]"
check "B's loss was reported and its job re-queued" "grep -q 'lost it, queued again' '$out/grid.log'"
echo "grid workers: $(grep -o 'done on [^ ]*' "$out/grid.log" | sort | uniq -c | tr '\n' ';')"

# 3. Parity: the same job on ComfyUI and on our engine (diffusers' T5 zeros make them close, not equal).
(cd "$out" && "$SD3" generate --model "$FIXTURES/sd3-tiny-comfy" --no-t5 --prompt "a red square on a blue background" -W 64 -H 64 \
    --steps 4 --guidance 5 --seed 42 --output local.png --no-history >"$out/local.log" 2>&1)
echo "parity ComfyUI vs local engine: $(python3 "$here/compare_png.py" "$out/txt2img.png" "$out/local.png")"
check "parity PSNR ≥ 30 dB" "python3 '$here/compare_png.py' '$out/txt2img.png' '$out/local.png' --min-psnr 30"

echo "outputs in $out"
[[ $failed == 0 ]] || { echo "$failed check(s) failed"; exit 1; }
echo "all checks passed"
