"""PyTorch's time and memory for one optimizer step of diffusers 0.42.1's examples/dreambooth/train_dreambooth_lora_sd3.py
on SD3's MMDiT with random weights, the number `sd3 bench --component train-step` is compared with.

    python scripts/bench/train_step_torch.py --width 512 --height 512 --threads 2          # SD3 Medium, the defaults below
    OMP_NUM_THREADS=1 python scripts/bench/train_step_torch.py --config tiny --check      # correctness at a tiny size

The step is the script's with its defaults (`--mixed_precision bf16 --rank 16 --gradient_checkpointing`):
  - the transformer in bf16 (the script's `transformer.to(dtype=weight_dtype)`), frozen (`requires_grad_(False)`), with
    `transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=the
    script's default 8))`. add_adapter (peft's inject_adapter_in_model) puts the adapter in its base layer's dtype and,
    unlike get_peft_model, does not upcast it; the script's cast_training_params(..., torch.float32) runs only for
    `--mixed_precision fp16`. So the script itself trains bf16 LoRA parameters with bf16 AdamW state at bf16.
    --lora-dtype fp32 (the default here, what `sd3 train-lora` keeps) applies cast_training_params as the
    script does for fp16; --lora-dtype bf16 is the script's bf16 run as it stands;
  - `transformer.enable_gradient_checkpointing()`;
  - accelerate's Accelerator(mixed_precision="bf16") prepares the transformer, optimizer and lr scheduler (its forward
    runs under torch.autocast("cpu", bfloat16) and returns fp32), AdamW (β 0.9/0.999, wd 1e-4, ε 1e-8, lr 1e-4),
    get_scheduler("constant");
  - per step: latents = the VAE posterior's sample (DiagonalGaussianDistribution of a stored random mean and log-variance:
    the VAE encoder is not part of a step), shifted and scaled, cast to bf16; noise = randn_like; u from
    compute_density_for_timestep_sampling("logit_normal", 0, 1); timesteps = scheduler.timesteps[(u·1000).long()];
    σ by get_sigmas; x_t = (1 − σ)·x0 + σ·ε; pred = transformer(x_t, t, text, pooled); preconditioned
    pred·(−σ) + x_t against x0; loss = mean(weighting·(pred − target)²) with compute_loss_weighting_for_sd3;
    accelerator.backward; clip_grad_norm_(1.0); optimizer.step(); lr_scheduler.step(); optimizer.zero_grad().
Text embeddings are random bf16 tensors [B, T, 4096] and [B, 2048]; T defaults to 154 = 77 CLIP + 77 T5 tokens, what the
script's --max_sequence_length 77 gives with T5 (pass --text-tokens 333 for 77 + 256, the inference default).
The model is built straight in bf16 (the script loads fp32 and casts; building in fp32 would put 8.3 GB of fp32
weights into the peak RSS, which is the load's and not the step's).

Prints one JSON line: seconds_per_step (minimum over the timed steps), each timed step and its forward / backward
(with checkpointing: the recompute) / optimizer parts, losses, peak_rss_bytes, torch version, threads, dtypes.
"""
import argparse
import copy
import json
import resource
import time

import torch

import accelerate
import diffusers
import peft
from accelerate import Accelerator
from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from diffusers.optimization import get_scheduler
from diffusers.training_utils import cast_training_params, compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3
from peft import LoraConfig

CONFIGS = {
    "sd3-medium": dict(sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
                       num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
                       pooled_projection_dim=2048, pos_embed_max_size=192),
    # The tiny stand-in of make_random_sd3.py's checks, for --check.
    "tiny": dict(sample_size=16, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
                 num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16, pooled_projection_dim=32,
                 pos_embed_max_size=16),
}
# The script's target_modules when --lora_layers is not given.
TARGETS = ["attn.add_k_proj", "attn.add_q_proj", "attn.add_v_proj", "attn.to_add_out",
           "attn.to_k", "attn.to_out.0", "attn.to_q", "attn.to_v"]
SHIFT_FACTOR, SCALING_FACTOR = 0.0609, 1.5305  # SD3's VAE

parser = argparse.ArgumentParser()
parser.add_argument("--config", choices=CONFIGS, default="sd3-medium")
parser.add_argument("--width", type=int, default=512)
parser.add_argument("--height", type=int, default=512)
parser.add_argument("--batch", type=int, default=1)
parser.add_argument("--text-tokens", type=int, default=154)
parser.add_argument("--rank", type=int, default=16)
parser.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
parser.add_argument("--lora-dtype", choices=["fp32", "bf16"], default="fp32")
parser.add_argument("--no-checkpointing", action="store_true")
parser.add_argument("--warmup", type=int, default=1)
parser.add_argument("--repeat", type=int, default=2)
parser.add_argument("--threads", type=int, default=0)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--check", action="store_true", help="also check that only the LoRA changes (keeps a copy of the base)")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)
weight_dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
torch.manual_seed(args.seed)

build_start = time.perf_counter()
torch.set_default_dtype(weight_dtype)
transformer = SD3Transformer2DModel(**CONFIGS[args.config])
torch.set_default_dtype(torch.float32)
transformer.to(dtype=weight_dtype)  # pos_embed is registered in fp32
transformer.requires_grad_(False)
if not args.no_checkpointing:
    transformer.enable_gradient_checkpointing()
transformer.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, init_lora_weights="gaussian", target_modules=TARGETS))
if args.lora_dtype == "fp32":
    cast_training_params([transformer], dtype=torch.float32)
lora_parameters = [p for p in transformer.parameters() if p.requires_grad]
lora_dtypes = sorted({str(p.dtype) for p in lora_parameters})
base_dtypes = sorted({str(p.dtype) for p in transformer.parameters() if not p.requires_grad})
lora_modules = sum(1 for name, _ in transformer.named_modules() if name.endswith(".lora_A"))
base_before = {k: v.clone() for k, v in transformer.state_dict().items() if "lora_" not in k} if args.check else None
lora_before = [p.detach().clone() for p in lora_parameters]
build_seconds = time.perf_counter() - build_start

accelerator = Accelerator(mixed_precision=args.dtype if args.dtype == "bf16" else "no")
optimizer = torch.optim.AdamW([{"params": lora_parameters, "lr": 1e-4}], betas=(0.9, 0.999), weight_decay=1e-4, eps=1e-8)
steps = args.warmup + args.repeat
lr_scheduler = get_scheduler("constant", optimizer=optimizer, num_warmup_steps=500, num_training_steps=steps)
transformer, optimizer, lr_scheduler = accelerator.prepare(transformer, optimizer, lr_scheduler)
noise_scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)  # SD3 Medium's scheduler config


def get_sigmas(timesteps, n_dim=4, dtype=torch.float32):  # the script's get_sigmas
    sigmas = noise_scheduler.sigmas.to(dtype=dtype)
    schedule_timesteps = noise_scheduler.timesteps
    step_indices = [(schedule_timesteps == t).nonzero().item() for t in timesteps]
    sigma = sigmas[step_indices].flatten()
    while len(sigma.shape) < n_dim:
        sigma = sigma.unsqueeze(-1)
    return sigma


c = CONFIGS[args.config]
h, w = args.height // 8, args.width // 8
# Posterior mean uniform in ±1 and log-variance −6 (std 0.05), the order of an SD3 VAE's on real images.
posterior = DiagonalGaussianDistribution(torch.cat([torch.rand(args.batch, 16, h, w) * 2 - 1,
                                                    torch.full((args.batch, 16, h, w), -6.0)], dim=1))
prompt_embeds = torch.randn(args.batch, args.text_tokens, c["joint_attention_dim"]).to(weight_dtype)
pooled_prompt_embeds = torch.randn(args.batch, c["pooled_projection_dim"]).to(weight_dtype)

records = []
transformer.train()
for step in range(steps):
    start = time.perf_counter()
    model_input = posterior.sample()
    model_input = (model_input - SHIFT_FACTOR) * SCALING_FACTOR
    model_input = model_input.to(dtype=weight_dtype)
    noise = torch.randn_like(model_input)
    bsz = model_input.shape[0]
    u = compute_density_for_timestep_sampling(weighting_scheme="logit_normal", batch_size=bsz, logit_mean=0.0,
                                              logit_std=1.0, mode_scale=1.29)
    indices = (u * noise_scheduler.config.num_train_timesteps).long()
    timesteps = noise_scheduler.timesteps[indices]
    sigmas = get_sigmas(timesteps, n_dim=model_input.ndim, dtype=model_input.dtype)
    noisy_model_input = (1.0 - sigmas) * model_input + sigmas * noise
    model_pred = transformer(hidden_states=noisy_model_input, timestep=timesteps, encoder_hidden_states=prompt_embeds,
                             pooled_projections=pooled_prompt_embeds, return_dict=False)[0]
    model_pred = model_pred * (-sigmas) + noisy_model_input  # --precondition_outputs 1 (default)
    weighting = compute_loss_weighting_for_sd3(weighting_scheme="logit_normal", sigmas=sigmas)
    target = model_input
    loss = torch.mean((weighting.float() * (model_pred.float() - target.float()) ** 2).reshape(target.shape[0], -1), 1)
    loss = loss.mean()
    forward_end = time.perf_counter()
    accelerator.backward(loss)
    backward_end = time.perf_counter()
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_(lora_parameters, 1.0)
    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad()
    end = time.perf_counter()
    if not torch.isfinite(loss):
        raise SystemExit(f"train_step_torch: the loss is {loss.item()} at step {step + 1}")
    record = {"step": end - start, "forward": forward_end - start, "backward": backward_end - forward_end,
              "optimizer": end - backward_end, "loss": loss.item()}
    print(f"step {step + 1}{' (warm-up)' if step < args.warmup else ''}: {record['step']:.2f} s (forward {record['forward']:.2f}, "
          f"backward {record['backward']:.2f}, optimizer {record['optimizer']:.3f}), loss {record['loss']:.5f}, "
          f"model_pred {tuple(model_pred.shape)} {model_pred.dtype}", flush=True)
    if step >= args.warmup:
        records.append(record)

lora_change = max((p.detach() - q).abs().max().item() for p, q in zip(lora_parameters, lora_before))
result = {"engine": "torch", "config": args.config, "width": args.width, "height": args.height, "batch": args.batch,
          "text_tokens": args.text_tokens, "rank": args.rank, "lora_modules": lora_modules,
          "lora_parameters": sum(p.numel() for p in lora_parameters), "precision": args.dtype,
          "base_dtypes": base_dtypes, "lora_dtypes": lora_dtypes,
          "optimizer_state_dtypes": sorted({str(t.dtype) for s in optimizer.state.values() for t in s.values() if t.dim() > 0}),
          "autocast": accelerator.native_amp, "checkpointing": not args.no_checkpointing,
          "warmup_steps": args.warmup, "timed_steps": [r["step"] for r in records],
          "seconds_per_step": min(r["step"] for r in records),
          "forward_seconds": min(r["forward"] for r in records), "backward_seconds": min(r["backward"] for r in records),
          "optimizer_seconds": min(r["optimizer"] for r in records), "losses": [r["loss"] for r in records],
          "lora_max_abs_change": lora_change, "setup_seconds": build_seconds,
          "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "threads": torch.get_num_threads(),
          "torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__,
          "accelerate": accelerate.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
if args.check:
    unwrapped = accelerator.unwrap_model(transformer)
    after = {k: v for k, v in unwrapped.state_dict().items() if "lora_" not in k}
    changed = [k for k in base_before if not torch.equal(base_before[k], after[k])]
    result["base_changed"] = changed
    result["base_tensors_checked"] = len(base_before)
    ok = not changed and lora_change > 0 and set(after) == set(base_before)
    result["check"] = "ok" if ok else "FAILED"
print(json.dumps(result))
if args.check and result["check"] != "ok":
    raise SystemExit(1)
