"""Trains the demo model's SD3 MMDiT (diffusers SD3Transformer2DModel) with SD3's rectified-flow objective.

Model: sample 16x16x16 latents, patch 2 (64 image tokens), hidden 128 = 4 heads x 32, 6 joint blocks (the last
one context-pre-only, as in SD3), joint_attention_dim 64 (T5 width; the CLIP states are zero-padded to it by the
pipeline), caption projection 128, pooled projection 64 (CLIP-L 32 + CLIP-G 32), no qk-norm, no dual attention:
about 3.5 M parameters. Initialised as DiT/MMDiT do ("adaLN-Zero", Peebles & Xie 2023, sec. 3.2): every
modulation Linear and the output projection start at zero, so each block starts as the identity.

Objective (Esser et al. 2024, "Scaling Rectified Flow Transformers", sec. 2-3; the same as diffusers'
train_dreambooth_sd3.py without its timestep shift):
    sigma ~ logit-normal: sigma = sigmoid(n), n ~ N(0, 1)
    x_t = (1 - sigma) x_0 + sigma eps,  eps ~ N(0, I)
    the model, given x_t, timestep t = 1000 sigma and the prompt embeddings, predicts v = eps - x_0 (MSE)
x_0 are VAE latents (z - shift_factor) * scaling_factor. A pool of --pool training images is rendered and
encoded once by the trained VAE (posterior mean and std kept); each step draws a fresh posterior SAMPLE
mean + std * N(0, 1) of randomly chosen pool images. 10% of captions are replaced by "" (classifier-free
guidance). AdamW (lr 1e-3, betas 0.9/0.999, weight decay 0.01), linear warm-up then cosine decay to 0, grad-norm
clip 1, EMA of the weights (decay min(0.999, (1 + step) / (10 + step))), bf16 autocast on CUDA.

Every step's randomness comes from a generator seeded by (seed, step), so a run resumed from a checkpoint
(--resume; written every --ckpt-every steps to WORK/mmdit/ckpt.pt) continues exactly as an unbroken one would.

    python train_mmdit.py --work WORK [--steps 3700 --batch 256 --pool 262144 --device cuda --resume]
    (needs WORK/text/cache.pt from text.py and WORK/vae/ from train_vae.py; writes WORK/mmdit/ema/)
"""
import argparse
import os
import pathlib
import time

import numpy as np
import torch
from diffusers import AutoencoderKL, SD3Transformer2DModel

import dataset as ds
from train_vae import Budget, autocast, lr_at


def make_transformer():
    model = SD3Transformer2DModel(
        sample_size=16, patch_size=2, in_channels=16, out_channels=16, num_layers=6, attention_head_dim=32,
        num_attention_heads=4, joint_attention_dim=64, caption_projection_dim=128, pooled_projection_dim=64,
        pos_embed_max_size=32, dual_attention_layers=(), qk_norm=None)
    with torch.no_grad():  # adaLN-Zero
        for name, p in model.named_parameters():
            if ".norm1.linear." in name or ".norm1_context.linear." in name or name.startswith(("norm_out.linear.", "proj_out.")):
                p.zero_()
    return model


@torch.no_grad()
def build_pool(vae, n, device, seed, chunk, log):
    """n training renders encoded once: scaled posterior means and stds (fp16) and caption-cache indices."""
    rng = np.random.default_rng(seed)
    idx, params = ds.sample_training(rng, n, no_position=ds.NO_POSITION)
    shift, scale = vae.config.shift_factor, vae.config.scaling_factor
    means, stds = [], []
    start = time.time()
    for images in ds.render_batches(params, chunk, device):
        post = vae.encode(images * 2 - 1).latent_dist
        means.append(((post.mean - shift) * scale).half())
        stds.append((post.std * scale).half())
    mean, std = torch.cat(means), torch.cat(stds)
    log(f"mmdit: pool of {n} renders encoded in {time.time() - start:.0f}s; scaled latents mean {mean.float().mean():.3f} "
        f"std {mean.float().std():.3f}, posterior std {std.float().mean():.3f}")
    # cache index = 1 + training-combination index (0 is the empty caption)
    return mean, std, torch.as_tensor(idx + 1, device=device)


def save_checkpoint(path, **state):
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a run killed while saving keeps the previous checkpoint


def train_mmdit(work, steps=3700, batch=256, lr=1e-3, warmup=200, ema_decay=0.999, pool=262144, drop=0.1,
                ckpt_every=500, resume=False, device="cpu", seed=0, log=print, seconds=None):
    work = pathlib.Path(work)
    out = work / "mmdit"
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "ckpt.pt"
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    cache = torch.load(work / "text" / "cache.pt")
    embeds, pooled = cache["embeds"].to(device), cache["pooled"].to(device)
    vae = AutoencoderKL.from_pretrained(work / "vae").to(device).eval()
    mean, std, caption_of = build_pool(vae, pool, device, seed + 7, 2048 if cuda else 256, log)
    del vae

    torch.manual_seed(seed)
    model = make_transformer().to(device).train()
    params = [p for p in model.parameters()]
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=0.01, **({"fused": True} if cuda else {}))
    step = 0
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        for e, saved in zip(ema, state["ema"]):
            e.copy_(saved)
        step, steps = state["step"], state["args"]["steps"]  # a budgeted run's step count was fixed at its probe
        log(f"mmdit: resumed from {ckpt_path} at step {step}")
    log(f"mmdit: {sum(p.numel() for p in params) / 1e6:.3f} M params, steps {step}..{steps} x batch {batch} on {device}")

    n_pool, timer, losses, last_loss = len(mean), time.time(), [], float("nan")
    start_step = step
    budget = Budget(seconds if start_step == 0 else None, 150, device, log)
    while step < steps:
        steps = budget.steps(step, steps, "mmdit")
        g = torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        j = torch.randint(0, n_pool, (batch,), device=device, generator=g)
        m, sd = mean[j].float(), std[j].float()
        x0 = m + sd * torch.randn(m.shape, device=device, generator=g)  # a fresh posterior sample
        cap = torch.where(torch.rand(batch, device=device, generator=g) < drop, 0, caption_of[j])
        sigma = torch.sigmoid(torch.randn(batch, device=device, generator=g))
        noise = torch.randn(x0.shape, device=device, generator=g)
        s = sigma[:, None, None, None]
        x_t = (1 - s) * x0 + s * noise
        with autocast(device):
            pred = model(hidden_states=x_t, encoder_hidden_states=embeds[cap], pooled_projections=pooled[cap],
                         timestep=sigma * 1000, return_dict=False)[0]
        loss = (pred.float() - (noise - x0)).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - decay)
        step += 1
        losses.append(loss.detach())
        if step % 100 == 0 or step == steps or step == start_step + 1:
            elapsed = time.time() - timer
            rate = (step - start_step) / elapsed
            last_loss = torch.stack(losses).mean().item()
            log(f"mmdit step {step}/{steps}  loss {last_loss:.4f}  lr {lr_at(step - 1, steps, lr, warmup):.2e}  "
                f"{elapsed:.0f}s  {rate * batch:.0f} samples/s  eta {(steps - step) / rate:.0f}s")
            losses = []
        if step % ckpt_every == 0 or step == steps:
            save_checkpoint(ckpt_path, step=step, model=model.state_dict(), opt=opt.state_dict(),
                            ema=[e.cpu() for e in ema], args=dict(steps=steps, batch=batch, lr=lr, seed=seed))
    train_time = time.time() - timer
    with torch.no_grad():
        for p, e in zip(params, ema):
            p.copy_(e)
    model.to("cpu").save_pretrained(out / "ema")
    log(f"mmdit: {step - start_step} steps in {train_time:.0f}s ({train_time / max(1, step - start_step):.3f} s/step); "
        f"EMA weights saved to {out / 'ema'}")
    return {"steps": steps, "batch": batch, "samples": steps * batch, "train_seconds": train_time,
            "seconds_per_step": train_time / max(1, step - start_step), "final_loss": round(last_loss, 4), "pool": pool}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--steps", type=int, default=3700)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--pool", type=int, default=262144)
    ap.add_argument("--seconds", type=float, help="time budget for the training loop: fewer steps if they do not fit")
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_mmdit(args.work, args.steps, args.batch, args.lr, pool=args.pool, ckpt_every=args.ckpt_every,
                resume=args.resume, device=args.device, seconds=args.seconds)


if __name__ == "__main__":
    main()
