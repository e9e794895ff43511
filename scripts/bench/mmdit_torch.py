"""PyTorch's time for one SD3 MMDiT forward with random weights, the number `sd3 bench --component mmdit` is
compared with. Same shapes: latents [B, 16, H/8, W/8], 333 text tokens of 4096, pooled 2048, one timestep.

    python scripts/bench/mmdit_torch.py --config sd3-medium --width 256 --height 256 --batch 2 --dtype fp32
Prints one JSON line: seconds_per_forward (minimum over --repeat), peak_rss_bytes, threads.
"""
import argparse
import json
import resource
import time

import torch

from diffusers import SD3Transformer2DModel

CONFIGS = {
    "sd3-medium": dict(num_layers=24, num_attention_heads=24, caption_projection_dim=1536, pos_embed_max_size=192),
    "sd35-medium": dict(num_layers=24, num_attention_heads=24, caption_projection_dim=1536, pos_embed_max_size=384,
                        qk_norm="rms_norm", dual_attention_layers=tuple(range(13))),
    "sd35-large": dict(num_layers=38, num_attention_heads=38, caption_projection_dim=2432, pos_embed_max_size=192,
                       qk_norm="rms_norm"),
}

parser = argparse.ArgumentParser()
parser.add_argument("--config", choices=CONFIGS, default="sd3-medium")
parser.add_argument("--width", type=int, default=256)
parser.add_argument("--height", type=int, default=256)
parser.add_argument("--batch", type=int, default=2)
parser.add_argument("--text-tokens", type=int, default=333)
parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
parser.add_argument("--repeat", type=int, default=3)
parser.add_argument("--threads", type=int, default=0)
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
dtype = torch.float32 if args.dtype == "fp32" else torch.bfloat16
torch.manual_seed(0)
model = SD3Transformer2DModel(sample_size=128, patch_size=2, in_channels=16, out_channels=16, attention_head_dim=64,
                              joint_attention_dim=4096, pooled_projection_dim=2048, **CONFIGS[args.config]).to(dtype).eval()
latents = torch.randn(args.batch, 16, args.height // 8, args.width // 8, dtype=dtype)
text = torch.randn(args.batch, args.text_tokens, 4096, dtype=dtype)
pooled = torch.randn(args.batch, 2048, dtype=dtype)
timestep = torch.full((args.batch,), 500.0)
best = float("inf")
with torch.inference_mode():
    model(latents, text, pooled, timestep)  # warm-up
    for _ in range(args.repeat):
        start = time.perf_counter()
        model(latents, text, pooled, timestep)
        best = min(best, time.perf_counter() - start)
print(json.dumps({"config": args.config, "dtype": args.dtype, "width": args.width, "height": args.height, "batch": args.batch,
                  "seconds_per_forward": best, "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
