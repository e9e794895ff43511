"""The one command that makes the demo model, end to end, on a GPU (minutes) or the CPU (hours), same code:

    python scripts/demo-model/run_all.py --out OUT [--device cuda|cpu] [--resume]

  1. text    tokenizers from scripts/demo-model/assets/, frozen random text encoders, prompt-embedding cache
  2. vae     train_vae.py: 4,000 steps x 256 images, then the reconstruction check (>= 0.9 on all four)
  3. mmdit   train_mmdit.py: pool of 262,144 encoded renders, 6,000 steps x 1024 (6.1 M samples), EMA
  --vae-seconds / --mmdit-seconds cap a stage's training loop: its rate is measured during the lr warm-up and the
  step count lowered to fit (the report and model card then give the equivalent command with the counts pinned).
  4. export  export.py: OUT/sd3-demo/ (fp16 safetensors, defaults.json)
  5. eval    generate_eval.py: the 40 held-out captions with the model's defaults -> OUT/eval/ (PNGs, scores,
             contact sheet, copied to OUT/sd3-demo/samples.png), then the model card OUT/sd3-demo/README.md is
             written with the scores and timings
Writes OUT/run.log (everything printed), OUT/report.json (settings, timings, scores) and OUT/work/
(caches, VAE, MMDiT checkpoint). A killed run continues with --resume: finished stages are reused and the
MMDiT restarts from its last checkpoint. Smaller runs for smoke tests: --vae-steps, --steps, --batch, --pool.
The committed model is OUT/sd3-demo copied to models/sd3-demo.
"""
import argparse
import json
import os
import pathlib
import platform
import shutil
import sys
import time

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class Log:
    """print() that also appends to OUT/run.log, each line stamped with the seconds since the start."""

    def __init__(self, path):
        self.start, self.file = time.time(), open(path, "a", buffering=1)

    def __call__(self, *args):
        line = f"[{time.time() - self.start:7.1f}s] " + " ".join(str(a) for a in args)
        print(line, flush=True)
        self.file.write(line + "\n")


def hardware(device):
    if torch.device(device).type == "cuda":
        return f"1x {torch.cuda.get_device_name()} (torch {torch.__version__})"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    return f"CPU {cpu}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (model in OUT/sd3-demo)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--eval-device", default="cpu", help="device for the final generation (default cpu, fp32)")
    ap.add_argument("--vae-steps", type=int, default=4000)
    ap.add_argument("--vae-batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6000, help="MMDiT steps")
    ap.add_argument("--batch", type=int, default=1024, help="MMDiT batch")
    ap.add_argument("--vae-seconds", type=float, help="time budget of the VAE's training loop (fewer steps if need be)")
    ap.add_argument("--mmdit-seconds", type=float, help="time budget of the MMDiT's training loop (fewer steps if need be)")
    ap.add_argument("--pool", type=int, default=262144, help="encoded training renders the MMDiT samples from")
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    log = Log(out / "run.log")

    import diffusers
    import transformers
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import export as ex
    import generate_eval as ge
    import text
    import train_mmdit as tm
    import train_vae as tv

    command = " ".join(["python", "scripts/demo-model/run_all.py"] + sys.argv[1:])
    log(f"run_all: {command}")
    log(f"run_all: {hardware(args.device)}; diffusers {diffusers.__version__}, transformers {transformers.__version__}, "
        f"python {platform.python_version()}")
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if args.resume and report_path.exists() else {}
    report.update(command=command, hardware=hardware(args.device), vae_steps=args.vae_steps,
                  vae_batch=args.vae_batch, steps=args.steps, batch=args.batch, pool=args.pool, seed=args.seed,
                  versions={"torch": torch.__version__, "diffusers": diffusers.__version__,
                            "transformers": transformers.__version__})
    if report.get("vae", {}).get("steps"):  # a resumed run keeps the step count its VAE was trained with
        report["vae_steps"] = report["vae"]["steps"]
    timings = report.setdefault("timings", {})

    def stage(name, fn):
        t = time.time()
        result = fn()
        timings[name] = round(time.time() - t, 1)  # this run's time (a resumed run reports its own part)
        log(f"run_all: stage {name} done in {time.time() - t:.1f}s")
        report_path.write_text(json.dumps(report, indent=1, default=float))
        return result

    if not args.resume:
        for stale in ("text", "vae", "mmdit"):
            if (work / stale).exists():
                raise SystemExit(f"error: {work / stale} exists: use --resume, or a fresh --out")
    stage("text", lambda: text.build_text(work, log=log))
    vae, check = stage("vae", lambda: tv.train_vae(work, args.vae_steps, args.vae_batch, device=args.device,
                                                   seed=args.seed, log=log, seconds=args.vae_seconds))
    if check is not None:
        report["vae"] = check
        report["vae_steps"] = check["steps"]
    report.update(shift_factor=vae.config.shift_factor, scaling_factor=vae.config.scaling_factor)
    del vae
    report["mmdit"] = stage("mmdit", lambda: tm.train_mmdit(work, args.steps, args.batch, pool=args.pool,
                                                            ckpt_every=args.ckpt_every, resume=args.resume,
                                                            device=args.device, seed=args.seed, log=log,
                                                            seconds=args.mmdit_seconds))
    report["final_loss"] = report["mmdit"]["final_loss"]
    report["steps"] = report["mmdit"]["steps"]
    if args.vae_seconds or args.mmdit_seconds:  # the same run with its step counts pinned
        report["budget_command"] = command
        report["command"] = (f"python scripts/demo-model/run_all.py --out {args.out} --vae-steps {report['vae_steps']} "
                             f"--vae-batch {args.vae_batch} --steps {report['steps']} --batch {args.batch} --pool {args.pool}")
    model = out / "sd3-demo"
    report["export"] = stage("export", lambda: ex.export(work, model, log=log))["bytes"]
    scores, gen_seconds = stage("eval", lambda: ge.generate_eval(model, out / "eval", args.eval_device, log=log))
    report.update(scores=scores, eval_device=args.eval_device, generate_seconds=gen_seconds)
    timings["total"] = round(time.time() - log.start, 1)
    report_path.write_text(json.dumps(report, indent=1, default=float))
    shutil.copy(out / "eval" / "contact_sheet.png", model / "samples.png")
    ex.write_card(model, report)
    log("run_all: timings " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    log(f"run_all: held-out scores: background {scores['background']:.3f}, shape colour {scores['colour']:.3f}, "
        f"shape {scores['shape']:.3f}, position {scores['position']:.3f}, all four {scores['all']:.3f}")
    log(f"run_all: model in {model} ({report['export'] / 1e6:.1f} MB); copy it to models/sd3-demo")


if __name__ == "__main__":
    main()
