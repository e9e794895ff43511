"""Trains the demo model's 16-channel AutoencoderKL (64x64x3 <-> 16x16x16) on rendered training images.

Architecture: diffusers AutoencoderKL with SD3's layout at toy widths: 3 DownEncoderBlock2D / UpDecoderBlock2D
(channels 16, 32, 64; 1 resnet each; mid-block attention), 16 latent channels, no quant convs (as SD3),
about 0.70 M parameters. Images are in [-1, 1] as the diffusers pipeline expects.

Loss: L1 + L2 on the reconstruction of a posterior sample, plus a small KL to N(0, 1) (kl_weight, per element),
which keeps the posterior's noise a small fraction of the latents' spread so nearby latents decode to similar
images. Adam, lr warm-up then cosine; data drawn fresh every step (training combinations only).

After training the weights are rounded to fp16 (the export dtype), and, as SD3 does, the latents' statistics
set the config: shift_factor = mean, scaling_factor = 1 / std of posterior samples over 4,096 training images;
the MMDiT then works on (z - shift_factor) * scaling_factor, which has mean 0 and std 1.
The check: reconstructions of the 40 held-out combinations (3 draws each) and of 512 training images, scored by
evaluate.py, must be >= 0.9 on all four attributes (a warning is printed, and recorded, when they are not).

    python train_vae.py --work WORK [--steps 3000 --batch 128 --device cuda]   # writes WORK/vae/
"""
import argparse
import math
import pathlib
import time

import numpy as np
import torch
from diffusers import AutoencoderKL

import dataset as ds
import evaluate as ev


def make_vae():
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3, block_out_channels=[16, 32, 64], layers_per_block=1,
        norm_num_groups=8, latent_channels=16, sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0, scaling_factor=1.0)


def lr_at(step, steps, lr, warmup):
    """Linear warm-up, then cosine decay to 0."""
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


class Budget:
    """Fits a run's step count to a time budget: the rate is measured over steps [10, probe) (the first steps
    include cuDNN's autotuning), then steps = min(steps, what fits in what is left). probe must lie inside the lr
    warm-up, whose lr does not depend on the step count, so the run equals one given that step count up front."""

    def __init__(self, seconds, probe, device, log):
        self.seconds, self.probe, self.log = seconds, probe, log
        self.cuda = torch.device(device).type == "cuda"
        self.start, self.t10 = time.time(), None

    def steps(self, step, steps, name):
        """Called before each step (0-based); returns the (possibly reduced) total step count."""
        if not self.seconds or step not in (10, self.probe):
            return steps
        if self.cuda:
            torch.cuda.synchronize()
        if step == 10:
            self.t10 = time.time()
            return steps
        rate = (self.probe - 10) / (time.time() - self.t10)
        fit = step + int(rate * (self.seconds - (time.time() - self.start)))
        self.log(f"{name}: {rate:.1f} steps/s; {fit} steps fit in {self.seconds:.0f}s -> {min(steps, fit)} steps")
        return max(step + 1, min(steps, fit))


def autocast(device):
    """bf16 autocast on CUDA (matrix products and convolutions in bf16, norms and losses in fp32); none on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")


@torch.no_grad()
def reconstruct(vae, images, device, batch=256):
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].to(device) * 2 - 1
        out.append(vae.decode(vae.encode(x).latent_dist.mode()).sample.float().add(1).div(2).cpu())
    return torch.cat(out)


def check_reconstructions(vae, device, log, sheet=None):
    """Scores reconstructions of held-out and training renders; returns the accuracies."""
    params = [ds.held_out_params(seed) for seed in range(3)]
    targets = ds.HELD_OUT * 3
    idx, train = ds.sample_training(np.random.default_rng(99), 512)
    params.append(train)
    targets += [ds.TRAIN_COMBOS[i] for i in idx]
    images = torch.cat([img.cpu() for p in params for img in ds.render_batches(p, 256, device)])
    recon = ds.to_uint8(reconstruct(vae, images, device))
    preds = ev.score_images(recon, device)
    acc = {"held_out": ev.accuracy(preds[:120], targets[:120]), "training": ev.accuracy(preds[120:], targets[120:])}
    err = (torch.from_numpy(recon).float() - torch.from_numpy(ds.to_uint8(images)).float()).abs().mean().item()
    for name, a in acc.items():
        log(f"vae reconstructions, {name}: {ev.format_scores(a)}")
    log(f"vae reconstructions: mean absolute error {err:.2f} / 255")
    if sheet:
        ev.contact_sheet(recon[:40], targets[:40], preds[:40], sheet)
    ok = all(a[k] >= 0.9 for a in acc.values() for k in ("background", "colour", "shape", "position", "all"))
    if not ok:
        log("WARNING: VAE reconstructions score below 0.9 somewhere: train the VAE longer (--vae-steps)")
    as_json = lambda a: {k: (int(v) if k == "n" else float(v)) for k, v in a.items()}
    return {"held_out": as_json(acc["held_out"]), "training": as_json(acc["training"]), "mean_abs_error": err, "ok": ok}


def train_vae(work, steps=3000, batch=128, lr=1e-3, warmup=100, kl_weight=1e-4, device="cpu", seed=0, log=print,
              every=250, seconds=None):
    out = pathlib.Path(work) / "vae"
    if (out / "config.json").exists():
        log(f"vae: reusing {out}")
        return AutoencoderKL.from_pretrained(out).to(device), None
    torch.manual_seed(seed)
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest convolutions once
    vae = make_vae().to(device).train()
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    rng = np.random.default_rng(seed + 1)
    log(f"vae: {sum(p.numel() for p in vae.parameters()) / 1e6:.3f} M params, {steps} steps x {batch} on {device}")
    start, seen, budget = time.time(), 0.0, Budget(seconds, 60, device, log)
    step = 0
    while step < steps:
        steps = budget.steps(step, steps, "vae")
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        _, params = ds.sample_training(rng, batch)
        x = ds.render(params, device=device) * 2 - 1
        with autocast(device):
            post = vae.encode(x).latent_dist
            recon = vae.decode(post.sample()).sample.float()
        mean, logvar = post.mean.float(), post.logvar.float()
        rec = (recon - x).abs().mean() + (recon - x).pow(2).mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = rec + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += rec.item() if step % 50 == 0 or step == steps - 1 else 0
        if step % every == 0 or step == steps - 1:
            log(f"vae step {step + 1}/{steps}  rec {rec.item():.4f}  kl {kl.item():.3f}  "
                f"posterior std {post.std.float().mean().item():.3f}  {time.time() - start:.0f}s")
        step += 1
    train_time = time.time() - start
    vae.eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(p.half().float())  # the exported weights are fp16: check and use exactly those
        _, params = ds.sample_training(np.random.default_rng(seed + 2), 4096)
        z = torch.cat([vae.encode(img * 2 - 1).latent_dist.sample() for img in ds.render_batches(params, 512, device)])
    shift, scale = z.mean().item(), 1.0 / z.std().item()
    vae.register_to_config(shift_factor=round(shift, 4), scaling_factor=round(scale, 4))
    log(f"vae: {train_time:.0f}s training; latents mean {shift:.4f} std {1 / scale:.4f} -> "
        f"shift_factor {vae.config.shift_factor}, scaling_factor {vae.config.scaling_factor}")
    out.mkdir(parents=True, exist_ok=True)
    check = check_reconstructions(vae, device, log, sheet=out / "reconstructions.png")
    check.update(train_seconds=train_time, steps=steps, batch=batch)
    vae.save_pretrained(out)
    return vae, check


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kl-weight", type=float, default=1e-4)
    ap.add_argument("--seconds", type=float, help="time budget for the training loop: fewer steps if they do not fit")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_vae(args.work, args.steps, args.batch, args.lr, kl_weight=args.kl_weight, device=args.device, seconds=args.seconds)


if __name__ == "__main__":
    main()
