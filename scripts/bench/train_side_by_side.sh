#!/bin/sh
# Ours against PyTorch for one LoRA training step of SD3 Medium's MMDiT with random weights (speed and memory at real
# size; docs/performance.md, Training step): 512², batch 1, rank 16 on the script's default target modules, bf16 base,
# fp32 LoRA and AdamW state, gradient checkpointing, 154 text tokens (77 CLIP + 77 T5: the script's
# --max_sequence_length 77).
# One process per side, one after the other; each runs WARMUP untimed steps and REPEAT timed ones (the minimum is
# taken). Prints one row with both times, the ratio, peak RSS of both, the CPU and the instruction sets, then appends
# the two JSON objects to $OUT (default train_side_by_side.jsonl).
#
#   scripts/bench/train_side_by_side.sh [SD3_BINARY] [PYTHON]        (defaults: .build/release/sd3, python3)
#   THREADS=2 SIZE=512 TOKENS=333 LORA_DTYPE=bf16 scripts/bench/train_side_by_side.sh .build/release/sd3 /root/refvenv/bin/python
#
# PYTHON is a virtual environment's python with torch 2.15.0, diffusers 0.42.1, peft 0.18.0 and accelerate 1.16.0.
# LORA_DTYPE=bf16 runs PyTorch with the LoRA and AdamW state in bf16, which is what the script does at
# --mixed_precision bf16 (it upcasts them only for fp16; see train_step_torch.py); ours keeps them fp32 either way.
# Run it on a quiet machine. Both sides run with the same OpenMP wait policy (OMP_WAIT_POLICY, default ACTIVE) and
# THREADS threads (default: all cores). Memory: each side peaks near 5–10 GB at 512²; they never run together.
set -eu
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-ACTIVE}
SD3=${1:-.build/release/sd3}
PYTHON=${2:-python3}
THREADS=${THREADS:-$(nproc)}
SIZE=${SIZE:-512}
TOKENS=${TOKENS:-154}
RANK=${RANK:-16}
WARMUP=${WARMUP:-1}
REPEAT=${REPEAT:-2}
LORA_DTYPE=${LORA_DTYPE:-fp32}
OUT=${OUT:-train_side_by_side.jsonl}
HERE=$(dirname "$0")
[ -x "$SD3" ] || { echo "train_side_by_side: $SD3 is not an executable (build with: swift build -c release)" >&2; exit 2; }
"$PYTHON" -c "import torch, diffusers, peft, accelerate" 2>/dev/null || { echo "train_side_by_side: $PYTHON cannot import torch, diffusers, peft and accelerate" >&2; exit 2; }
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) threads, $THREADS used; OMP_WAIT_POLICY=$OMP_WAIT_POLICY for both sides"
echo "$("$SD3" --version)"
echo "torch $("$PYTHON" -c 'import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability())')"
ours=$("$SD3" bench --component train-step --config sd3-medium --width "$SIZE" --height "$SIZE" --batch 1 --text-tokens "$TOKENS" \
       --rank "$RANK" --precision bf16 --warmup "$WARMUP" --repeat "$REPEAT" --threads "$THREADS" --json | tee /dev/stderr | tail -1)
torch=$(OMP_NUM_THREADS=$THREADS "$PYTHON" "$HERE/train_step_torch.py" --config sd3-medium --width "$SIZE" --height "$SIZE" --batch 1 \
        --text-tokens "$TOKENS" --rank "$RANK" --dtype bf16 --lora-dtype "$LORA_DTYPE" --warmup "$WARMUP" --repeat "$REPEAT" \
        --threads "$THREADS" 2>/dev/stderr | tee /dev/stderr | tail -1)
"$PYTHON" - "$SIZE" "$ours" "$torch" "$OUT" "$LORA_DTYPE" <<'PY'
import json, sys
size, ours, torch, out, lora_dtype = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5]
a, b = ours["seconds_per_step"], torch["seconds_per_step"]
# FLOPs of one step of SD3 Medium (24 blocks, D = 1536; the LoRA's rank-16 products, under 2%, left out). Forward:
# 12·D² multiply-adds per token and block (q, k, v, out and the 4× MLP, both streams; the last block's text tokens
# only q, k, v: 3·D²) and 4·S²·D FLOPs of attention over S = N + T tokens. The backward of a frozen base needs only the
# input gradients: the same products as the forward, and 10·S²·D in attention (dV, dP, the recomputed scores, dQ,
# dK); checkpointing recomputes the forward once more.
L, D, T = 24, 1536, ours["text_tokens"]
N = (ours["width"] // 16) * (ours["height"] // 16)
linear = 2 * ours["batch"] * D * D * (L * 12 * (N + T) - 9 * T) + 2 * ours["batch"] * T * 4096 * D
attention = 4 * ours["batch"] * L * (N + T) ** 2 * D
flops = (2 if ours["checkpointing"] else 1) * (linear + attention) + linear + 2.5 * attention
print(f"{'size':<6} {'tokens':>6} {'ours_s':>8} {'torch_s':>8} {'ratio':>6}  peak RSS ours / torch")
print(f"{size + '²':<6} {ours['text_tokens']:>6} {a:8.2f} {b:8.2f} {a / b:6.2f}  {ours['peak_rss_bytes'] / 1e9:.2f} / "
      f"{torch['peak_rss_bytes'] / 1e9:.2f} GB   (rank {ours['rank']}, {ours['lora_modules']} / {torch['lora_modules']} LoRA modules, "
      f"torch LoRA {lora_dtype}; kernels {ours['kernels_isa']}, oneDNN {ours['onednn_isa']}, torch {torch['cpu_capability']})")
print(f"  {flops / 1e12:.2f} TFLOP per step (forward {(linear + attention) / 1e12:.2f}, of it attention {attention / 1e12:.2f}): "
      f"ours {flops / a / 1e9:.0f} GFLOP/s, torch {flops / b / 1e9:.0f} GFLOP/s")
print(f"  ours:  forward {ours['forward_seconds']:.2f} s, forward + backward (with recompute) {ours['forward_backward_seconds']:.2f} s, "
      f"optimizer and draws {ours['optimizer_and_draws_seconds']:.3f} s")
print(f"  torch: forward {torch['forward_seconds']:.2f} s, backward (with recompute) {torch['backward_seconds']:.2f} s, "
      f"optimizer {torch['optimizer_seconds']:.3f} s")
with open(out, "a") as f:
    f.write(json.dumps({"size": int(size), "ours": ours, "torch": torch, "ratio": a / b, "flops_per_step": flops}) + "\n")
PY
