"""Generates the 40 held-out captions with an exported model folder and scores them.

The folder is loaded with diffusers' StableDiffusion3Pipeline in fp32 (the fp16 weights widened), and run with
the folder's defaults.json (64x64, 20 steps, guidance 3, shift 3 via the scheduler, T5 length 32, negative
prompt ""). The initial noise of caption NN comes from torch.Generator("cpu").manual_seed(NN), so a run on a
GPU starts from the same noise as one on the CPU. Writes OUT/NN.png, OUT/contact_sheet.png, OUT/scores.json.

    python generate_eval.py --model models/sd3-demo --out /tmp/eval [--device cpu]
    python evaluate.py --images /tmp/eval      # the same scores, from the PNGs alone (as for the Swift engine)
"""
import argparse
import json
import pathlib
import time

import numpy as np
import torch
from diffusers import StableDiffusion3Pipeline
from PIL import Image

import dataset as ds
import evaluate as ev


@torch.no_grad()
def generate_eval(model, out, device="cpu", batch=40, log=print):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    defaults = json.loads((pathlib.Path(model) / "defaults.json").read_text())
    pipe = StableDiffusion3Pipeline.from_pretrained(model, dtype=torch.float32).to(device)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler.config.shift == defaults["shift"]
    start = time.time()
    images = []
    for i in range(0, len(ds.HELD_OUT_CAPTIONS), batch):
        captions = ds.HELD_OUT_CAPTIONS[i:i + batch]
        result = pipe(prompt=captions, negative_prompt=[defaults["negative_prompt"]] * len(captions),
                      height=defaults["height"], width=defaults["width"], num_inference_steps=defaults["steps"],
                      guidance_scale=defaults["guidance_scale"], max_sequence_length=defaults["max_sequence_length"],
                      generator=[torch.Generator("cpu").manual_seed(i + k) for k in range(len(captions))],
                      output_type="np")
        images.append((result.images * 255).round().clip(0, 255).astype(np.uint8))
    images = np.concatenate(images)
    seconds = time.time() - start
    for k, img in enumerate(images):
        Image.fromarray(img).save(out / f"{k:02d}.png")
    # Score the PNGs as written (what evaluate.py --images would read).
    images = np.stack([ev.load_png(out / f"{k:02d}.png") for k in range(len(images))])
    preds = ev.score_images(images)
    acc = {k: (int(v) if k == "n" else float(v)) for k, v in ev.accuracy(preds, ds.HELD_OUT).items()}
    ev.contact_sheet(images, ds.HELD_OUT, preds, out / "contact_sheet.png")
    rows = [{"caption": c, "file": f"{k:02d}.png", "predicted": dict(zip(("shape", "colour", "position", "background"), p))}
            for k, (c, p) in enumerate(zip(ds.HELD_OUT_CAPTIONS, preds))]
    (out / "scores.json").write_text(json.dumps({"scores": acc, "defaults": defaults, "device": device,
                                                 "generate_seconds": seconds, "images": rows}, indent=1))
    log(f"held-out ({device}, {seconds:.0f}s for {len(images)} images): {ev.format_scores(acc)}")
    return acc, seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=40)
    args = ap.parse_args()
    generate_eval(args.model, args.out, args.device, args.batch)


if __name__ == "__main__":
    main()
