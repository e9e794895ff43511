"""Teaches the demo model the moon (concept.py) with `sd3 train-lora`, then scores it with the demo's evaluator.

Builds nothing: give it the `sd3` binary (`swift build -c release`, then `--sd3 .build/release/sd3`). Steps:
  1. concept.py draws the 50 training images + captions into OUT/concept/data and the 20 held-out captions, and
     (--prior, default 50) as many images of the demo's own world beside them (prior preservation).
  2. `sd3 train-lora` on them with the demo model at 64x64 (flags below; T5 at the demo's 32 tokens), under
     /usr/bin/time -v: wall time and peak RSS go to OUT/train.time, the loss lines to OUT/train.log.
  3. `sd3 generate --lora OUT/moon.safetensors` for the 20 held-out moon captions and for the demo's 40 held-out
     captions (the demo's defaults: 20 steps, guidance 3, shift 3, T5 length 32, negative prompt ""; seed = caption
     index), and with --baseline the 20 moon captions without the LoRA too.
  4. evaluate.py scores each set; OUT/report.json holds the settings, times, scores and the command lines.

    python concept_lora.py --sd3 .build/release/sd3 --out /tmp/moon [--steps 1500 --rank 8 --lr 1e-3 --threads 2]
        (the timed runs and their flags: models/sd3-demo/concepts/README.md; one thread is faster than two here)
    python concept_lora.py --sd3 ... --out /tmp/moon --skip-training     # score an existing OUT/moon.safetensors
    python concept_lora.py ... --eval-seed-offset 100 --eval-seed-offset 200  # dev scores (seeds K + index) for trials
Goal (models/sd3-demo/concepts/README.md): moon held-out all four >= 0.8, the demo's held-out all four >= 0.9 with the
LoRA on.
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import time

import numpy as np

import concept
import dataset as ds
import evaluate as ev

HERE = pathlib.Path(__file__).resolve().parent
DEMO = HERE.parent.parent / "models" / "sd3-demo"


def run(cmd, log=None):
    """Runs cmd (a list), its stderr (and stdout) appended to log if given; exits with its output on failure."""
    result = subprocess.run(cmd, capture_output=True, text=True)
    if log is not None:
        with open(log, "a") as f:
            f.write("$ " + " ".join(cmd) + "\n" + result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[:3])} ... exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result


def generate_command(args, text, seed, target, lora=None, threads=None):
    """`sd3 generate` of one caption with the demo's defaults, written explicitly so that no config file's
    [defaults] can change them."""
    defaults = json.loads((pathlib.Path(args.model) / "defaults.json").read_text())
    cmd = [args.sd3, "generate", "--model", args.model, "-p", text, "-n", defaults["negative_prompt"],
           "-W", str(defaults["width"]), "-H", str(defaults["height"]), "--steps", str(defaults["steps"]),
           "-g", str(defaults["guidance_scale"]), "--shift", str(defaults["shift"]),
           "--max-sequence-length", str(defaults["max_sequence_length"]), "--seed", str(seed),
           "--threads", str(threads or args.threads), "--no-history", "-o", str(target)]
    return cmd + (["--lora", str(lora)] if lora else [])


def generate(args, captions, folder, lora, log, offset=0):
    """One `sd3 generate` per caption (seed = offset + index) into folder/NN.png."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for i, text in enumerate(captions):
        target = folder / f"{i:02d}.png"
        target.unlink(missing_ok=True)
        run(generate_command(args, text, offset + i, target, lora), log)
    return time.time() - start


def model_prior(args, captions, folder, log):
    """DreamBooth's class images (train_dreambooth_lora_sd3.py --with_prior_preservation): the base model's own
    samples, here of the demo's training captions (seed = 1000 + index), written as folder/pNN.png + pNN.txt beside
    the moons. Their targets are what the model already draws, so they hold the LoRA near the base where renders
    (which the base only approximates) would pull every shape toward the renderer. `--prior-workers` processes at once
    (one thread each when more than one)."""
    start, pending = time.time(), []
    for i, text in enumerate(captions):
        (folder / f"p{i:02d}.txt").write_text(text + "\n")
        pending.append(generate_command(args, text, 1000 + i, folder / f"p{i:02d}.png", threads=1 if args.prior_workers > 1 else None))
    running = []
    while pending or running:
        while pending and len(running) < args.prior_workers:
            running.append(subprocess.Popen(pending.pop(0), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        done = running.pop(0)
        if done.wait() != 0:
            sys.exit(f"error: {' '.join(done.args[:3])} ... exited {done.returncode}:\n{done.stderr.read()[-2000:]}")
    with open(log, "a") as f:
        f.write(f"{len(captions)} prior images from the base model in {time.time() - start:.1f} s\n")
    return time.time() - start


def copy_prior(captions, source, folder):
    """--prior-images: pNN.png + pNN.txt from source, each caption checked against the one this run would draw."""
    for i, text in enumerate(captions):
        name = f"p{i:02d}"
        if not (source / f"{name}.txt").exists() or (source / f"{name}.txt").read_text().strip() != text:
            sys.exit(f"error: --prior-images {source}: {name}.txt is not '{text}' (another --seed, --prior or --prior-extra?)")
        (folder / f"{name}.txt").write_text(text + "\n")
        (folder / f"{name}.png").write_bytes((source / f"{name}.png").read_bytes())
    if (source / f"p{len(captions):02d}.txt").exists():
        sys.exit(f"error: --prior-images {source} holds more than {len(captions)} prior images")


def score(captions, folder, sheet):
    images = np.stack([ev.load_png(folder / f"{i:02d}.png") for i in range(len(captions))])
    targets = [ds.parse_caption(t) for t in captions]
    preds = ev.score_images(images)
    ev.contact_sheet(images, targets, preds, sheet)
    acc = {k: (int(v) if k == "n" else float(v)) for k, v in ev.accuracy(preds, targets).items()}
    wrong = [{"index": i, "caption": t, "predicted": dict(zip(("shape", "colour", "position", "background"), p))}
             for i, (t, p, g) in enumerate(zip(captions, preds, targets)) if p != g]
    return acc, wrong


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sd3", required=True, help="the sd3 binary")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=str(DEMO))
    ap.add_argument("--seed", type=int, default=0, help="concept.py's seed and train-lora's")
    ap.add_argument("--prior", type=int, default=50, help="concept.py's --prior: images of the demo's own world")
    ap.add_argument("--count", type=int, default=50, help="concept.py's --count: moon training images (distinct combinations)")
    ap.add_argument("--repeat", type=int, default=1, help="concept.py's --repeat: copies of each moon image")
    ap.add_argument("--prior-source", choices=["render", "model"], default="render",
                    help="the prior images: dataset.py's renders, or the base model's own samples of the same captions "
                         "(DreamBooth's class images)")
    ap.add_argument("--prior-images", metavar="DIR",
                    help="for trials: copy the model-drawn prior images from DIR (an earlier OUT/concept/data of the "
                         "same --seed, --prior and --prior-extra, so the same captions and seeds) instead of drawing "
                         "them; a timed run draws them, as that time counts")
    ap.add_argument("--prior-workers", type=int, default=2, help="sd3 generate processes at once for --prior-source model")
    ap.add_argument("--prior-extra", action="append", default=[], metavar="SHAPE:N", help="concept.py's --prior-extra")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-scheduler", default="constant")
    ap.add_argument("--lr-warmup-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--lora-layers", help="train-lora's --lora-layers (default: its own, the script's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-checkpointing", action="store_true", help="train-lora's: keep every block's activations (faster)")
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--skip-training", action="store_true", help="score OUT/moon.safetensors as it is")
    ap.add_argument("--baseline", action="store_true", help="also the moon captions without the LoRA")
    ap.add_argument("--eval-seed-offset", type=int, action="append", metavar="K",
                    help="score with seeds K + index instead of index (repeatable). The acceptance seeds are K = 0; "
                         "compare recipes on other K (a dev set: the same captions, other noise), so that the held-out "
                         "images are scored once, by the chosen recipe")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    lora = out / "moon.safetensors"
    report = {"model": args.model, "settings": vars(args)}

    rendered_prior = args.prior_source == "render"
    run([sys.executable, str(HERE / "concept.py"), "--out", str(out / "concept"), "--seed", str(args.seed),
         "--count", str(args.count),
         "--prior", str(args.prior if rendered_prior else 0), "--repeat", str(args.repeat)]
        + [f"--prior-extra={t}" for t in (args.prior_extra if rendered_prior else [])])
    if not rendered_prior and not args.skip_training:
        extra = [(t.split(":")[0], int(t.split(":")[1])) for t in args.prior_extra]
        captions = concept.prior_set(args.seed, args.prior, extra)[0]
        if args.prior_images:
            copy_prior(captions, pathlib.Path(args.prior_images), out / "concept" / "data")
            report["prior_copied_from"] = args.prior_images
        else:
            report["prior_seconds"] = model_prior(args, captions, out / "concept" / "data", out / "generate.log")
            print(f"{len(captions)} prior images from the base model in {report['prior_seconds']:.0f} s")
    moon_captions = json.loads((out / "concept" / "heldout.json").read_text())["captions"]
    assert moon_captions == concept.HELD_OUT_CAPTIONS

    train = [args.sd3, "train-lora", "--model", args.model, "--data", str(out / "concept" / "data"), "--output", str(lora),
             "--resolution", "64", "--max-sequence-length", "32", "--rank", str(args.rank), "--lr", str(args.lr),
             "--lr-scheduler", args.lr_scheduler, "--lr-warmup-steps", str(args.lr_warmup_steps), "--batch", str(args.batch),
             "--steps", str(args.steps), "--seed", str(args.seed), "--threads", str(args.threads),
             "--checkpoint-every", str(args.checkpoint_every)]
    if args.lora_layers:
        train += ["--lora-layers", args.lora_layers]
    if args.no_checkpointing:
        train.append("--no-checkpointing")
    report["train_command"] = " ".join(train)
    if not args.skip_training:
        for stale in (lora, out / "moon.checkpoint", out / "train.log"):
            stale.unlink(missing_ok=True)
        timed = ["/usr/bin/time", "-v", "-o", str(out / "train.time")] + train
        start = time.time()
        run(timed, out / "train.log")
        report["train_wall_seconds"] = time.time() - start
        timing = (out / "train.time").read_text()
        report["train_time_v"] = {k: v for k, v in re.findall(r"^\s*(Elapsed \(wall clock\) time.*?|Maximum resident set size.*?|"
                                                                r"User time.*?|System time.*?): (.*)$", timing, re.M)}
        losses = [float(x) for x in re.findall(r"loss ([0-9.eE+-]+) \(mean", (out / "train.log").read_text())]
        if losses:
            tail = losses[-min(100, len(losses)):]
            report["loss_first"], report["loss_last_100_mean"] = losses[0], sum(tail) / len(tail)
        print(f"trained in {report['train_wall_seconds']:.0f} s; "
              f"peak RSS {report['train_time_v'].get('Maximum resident set size (kbytes)', '?')} kB")

    offsets = args.eval_seed_offset or [0]
    sets = [(s, k) for k in offsets for s in (["moon", "demo"] + (["moon-base"] if args.baseline else []))]
    for name, k in sets:
        captions = moon_captions if name.startswith("moon") else ds.HELD_OUT_CAPTIONS
        with_lora = None if name == "moon-base" else lora
        key = name if k == 0 else f"{name}@{k}"  # the folder, sheet and report key; @K: seeds K + index
        folder = out / key
        seconds = generate(args, captions, folder, with_lora, out / "generate.log", k)
        acc, wrong = score(captions, folder, out / f"{key}-sheet.png")
        report[key] = {"scores": acc, "generate_seconds": seconds, "wrong": wrong, "seed_offset": k}
        print(f"{key}{' (no LoRA)' if with_lora is None else ''}: {ev.format_scores(acc)}")
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    for k in offsets:
        tag = "" if k == 0 else f"@{k}"
        moon, demo = report["moon" + tag]["scores"]["all"], report["demo" + tag]["scores"]["all"]
        ok = moon >= 0.8 and demo >= 0.9
        what = "acceptance" if k == 0 else f"dev seeds {k}+index (not the acceptance)"
        print(f"{what} (moon all four >= 0.8, demo all four >= 0.9): {moon:.3f} / {demo:.3f}, {'met' if ok else 'NOT met'}")
    print(out / "report.json")


if __name__ == "__main__":
    main()
