#!/bin/sh
# Ours against PyTorch for one SD3 Medium MMDiT forward (batch 2, 333 text tokens, random weights), side by side in
# one run on this machine: 256², 512², 1024² × fp32, bf16. Prints one row per case with both times, the ratio and
# the instruction sets, then the whole table as JSON lines in $OUT (default side_by_side.jsonl).
#
#   scripts/bench/side_by_side.sh [SD3_BINARY] [PYTHON]        (defaults: .build/release/sd3, python3)
#   SIZES="256 512" PRECISIONS=bf16 scripts/bench/side_by_side.sh
#
# PYTHON is a virtual environment's python with scripts/bench/requirements.txt (torch 2.15.0, diffusers 0.42.1).
# Repeats: 3 at 256², 2 at 512², 1 at 1024² (the minimum is taken; each side also runs one untimed warm-up).
# Run it on a quiet machine: both sides use every core. Both run with the same OpenMP wait policy, OMP_WAIT_POLICY
# (default ACTIVE: idle threads spin between parallel regions, as PyTorch's own default does for a while; `sd3` alone
# would restart itself PASSIVE, which costs its forward ~5% on a quiet machine).
set -eu
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-ACTIVE}
SD3=${1:-.build/release/sd3}
PYTHON=${2:-python3}
SIZES=${SIZES:-256 512 1024}
PRECISIONS=${PRECISIONS:-fp32 bf16}
OUT=${OUT:-side_by_side.jsonl}
HERE=$(dirname "$0")
[ -x "$SD3" ] || { echo "side_by_side: $SD3 is not an executable (build with: swift build -c release)" >&2; exit 2; }
"$PYTHON" -c "import torch, diffusers" 2>/dev/null || { echo "side_by_side: $PYTHON cannot import torch and diffusers" >&2; exit 2; }
: > "$OUT"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) threads; OMP_WAIT_POLICY=$OMP_WAIT_POLICY for both sides"
echo "$("$SD3" --version)"
echo "torch $("$PYTHON" -c 'import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability())')"
printf '%-6s %-5s %10s %10s %7s\n' size prec ours_s torch_s ratio
for size in $SIZES; do
  case $size in 256) rep=3 ;; 512) rep=2 ;; *) rep=1 ;; esac
  for p in $PRECISIONS; do
    ours=$("$SD3" bench --component mmdit --width "$size" --height "$size" --precision "$p" --repeat "$rep" --json | tail -1)
    torch=$("$PYTHON" "$HERE/mmdit_torch.py" --width "$size" --height "$size" --dtype "$p" --repeat "$rep" | tail -1)
    "$PYTHON" - "$size" "$p" "$ours" "$torch" "$OUT" <<'PY'
import json, sys
size, p, ours, torch, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
a, b = ours["seconds_per_forward"], torch["seconds_per_forward"]
print(f"{size + '²':<6} {p:<5} {a:10.2f} {b:10.2f} {a / b:7.2f}   ours {ours['gflops']:.0f} GFLOP/s, "
      f"peak RSS {ours['peak_rss_bytes'] / 1e9:.2f} / {torch['peak_rss_bytes'] / 1e9:.2f} GB, kernels {ours['kernels_isa']}, oneDNN {ours['onednn_isa']}")
with open(out, "a") as f:
    f.write(json.dumps({"size": int(size), "precision": p, "ours": ours, "torch": torch, "ratio": a / b}) + "\n")
PY
  done
done
