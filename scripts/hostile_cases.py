"""Runs the hostile-input cases (docs/testing.md) against an sd3 binary, as a clumsy user or an attacker would: NaN/Inf
and out-of-range flags, hostile LoRA values and headers, NaN and 0xFF weights, FIFOs and devices as weights, LoRAs,
models and recorded paths, broken configs, bad output names, concurrent runs with one -o, stale .partial files,
hostile PNG parameters, convert with renamed/missing/odd keys. Prints one line per case (exit code, signal, seconds,
the last stderr line, files left behind) and a count of crashes, hangs and unexpected outcomes.

By hand, from the repo root, in the fixtures venv (numpy, safetensors; scripts/fixtures/requirements.txt):
    python scripts/hostile_cases.py "$(swift build --show-bin-path)/sd3" .
The test suites keep these cases too (EngineInputCommandTests, HostileInputCommandLineTests, Hostile*Tests).
"""
import json, os, shutil, signal, sqlite3, struct, subprocess, sys, tempfile, time
import numpy as np
from safetensors.numpy import save_file, load_file

sd3, repo = sys.argv[1], sys.argv[2]
fix = f"{repo}/Tests/SD3Tests/Fixtures"
tiny = f"{fix}/tiny-sd3"
work = tempfile.mkdtemp(prefix="hostile-")
env = {**os.environ, "XDG_DATA_HOME": f"{work}/data", "XDG_CONFIG_HOME": f"{work}/config", "HF_HOME": f"{work}/hf"}
rows = []

def run(area, name, args, cwd=None, timeout=30, expect_fail=True, check_dir=None, stdin=None):
    before = set(os.listdir(check_dir)) if check_dir else None
    start = time.time()
    try:
        p = subprocess.run([sd3] + args, cwd=cwd or work, env=env, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        code, err = p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        code, err = "HANG", ""
    took = time.time() - start
    crash = isinstance(code, int) and code < 0
    hang = code == "HANG"
    lines = [l for l in err.strip().splitlines() if l.strip() and not l.startswith("loading") and not l.startswith("loaded")]
    left = sorted(set(os.listdir(check_dir)) - before) if check_dir else []
    ok = (not crash) and (not hang) and ((code != 0) if expect_fail else (code == 0))
    rows.append(dict(area=area, case=name, code=code, crash=crash, hang=hang, secs=round(took, 1), ok=ok,
                     last=(lines[-1][:150] if lines else ""), left=left))

def model_copy(name):
    d = f"{work}/{name}"
    shutil.copytree(tiny, d, symlinks=False)
    return d

def edit_config(model, component, change, file="config.json"):
    path = f"{model}/{component}/{file}"
    c = json.load(open(path)); change(c); json.dump(c, open(path, "w"))

base = ["generate", "--prompt", "a red circle", "-W", "32", "-H", "32", "--steps", "2", "--threads", "1", "--no-history"]
out = f"{work}/out"; os.makedirs(out)
def gen(model, extra=(), o=None):
    return ["generate", "--model", model, "--prompt", "a red circle", "-W", "32", "-H", "32", "--steps", "2", "--threads", "1",
            "--no-history", "-o", f"{out}/x.png" if o is None else o, *extra]

# Flags: NaN / Inf / out of range
for flag, value in [("--guidance", "1e39"), ("--guidance", "nan"), ("--shift", "1e-320"), ("--shift", "inf"), ("--skip-layer-guidance", "nan"),
                    ("--strength", "nan"), ("--variation-strength", "inf"), ("--steps", "-1"), ("--steps", "99999999999"),
                    ("-W", "0"), ("-W", "1000000000"), ("--seed", "-1"), ("--max-sequence-length", "0"), ("--threads", "0")]:
    extra = [flag, value] + (["--variation-seed", "3"] if flag == "--variation-strength" else []) + (["--init-image", f"{fix}/init.png"] if flag == "--strength" else [])
    args = gen(tiny, extra)
    if flag == "-W": args = [a for a in args if a != "32" or True]
    run("flags", f"{flag} {value}", args, check_dir=out)
lora = f"{fix}/lora/style.diffusers.safetensors"
run("flags", "--lora F:nan", gen(tiny, ["--lora", f"{lora}:nan"]), check_dir=out)
run("flags", "--lora F:1e39", gen(tiny, ["--lora", f"{lora}:1e39"]), check_dir=out)

# LoRA files with hostile values
weights = load_file(lora)
for label, value in [("NaN", np.nan), ("Inf", np.inf), ("1e19", 1e19)]:
    w = dict(weights); k = next(iter(w)); w[k] = w[k].copy(); w[k].flat[0] = value
    path = f"{work}/lora-{label}.safetensors"; save_file(w, path)
    run("lora", f"weight {label}", gen(tiny, ["--lora", path]), check_dir=out)
kohya = load_file(f"{fix}/lora/style.kohya.safetensors")
alpha = [k for k in kohya if k.endswith(".alpha")]
for label, value in [("alpha 1e38", np.array(1e38, dtype=np.float32)), ("alpha shape [0]", np.zeros([0], dtype=np.float32)), ("alpha nan", np.array(np.nan, dtype=np.float32))]:
    w = dict(kohya); w[alpha[0]] = value
    path = f"{work}/kohya-{label.replace(' ', '_')}.safetensors"; save_file(w, path)
    run("lora", f"kohya {label}", gen(tiny, ["--lora", path]), check_dir=out)
meta_lora = f"{work}/lora-r1e300.safetensors"
save_file(load_file(lora), meta_lora, metadata={"lora_adapter_metadata": json.dumps({"transformer.r": 1e300, "transformer.lora_alpha": 4})})
run("lora", "metadata r 1e300", gen(tiny, ["--lora", meta_lora]), check_dir=out)
bad_header = f"{work}/lora-badheader.safetensors"
open(bad_header, "wb").write(struct.pack("<Q", 2**63 + 5) + b"{}")
run("lora", "header length 2^63", gen(tiny, ["--lora", bad_header]), check_dir=out)
run("lora", "LoRA is a directory", gen(tiny, ["--lora", work]), check_dir=out)
fifo = f"{work}/fifo.safetensors"; os.mkfifo(fifo)
run("files", "LoRA is a FIFO", gen(tiny, ["--lora", fifo]), check_dir=out)
run("files", "LoRA is /dev/zero", gen(tiny, ["--lora", "/dev/zero"]), check_dir=out)

# Model weights and configs
m = model_copy("nan-weights")
p = f"{m}/transformer/diffusion_pytorch_model.safetensors"; w = load_file(p); k = sorted(w)[5]; w[k] = w[k].copy(); w[k].flat[:] = np.nan; save_file(w, p)
run("weights", "NaN transformer weights", gen(m), check_dir=out)
m = model_copy("ff-weights")
p = f"{m}/vae/diffusion_pytorch_model.safetensors"; data = bytearray(open(p, "rb").read()); n = struct.unpack("<Q", data[:8])[0]
data[8 + n:] = b"\xff" * (len(data) - 8 - n); open(p, "wb").write(data)
run("weights", "0xFF VAE weights", gen(m), check_dir=out)
m = model_copy("fifo-weights"); p = f"{m}/transformer/diffusion_pytorch_model.safetensors"; os.remove(p); os.mkfifo(p)
run("files", "transformer weights are a FIFO", gen(m), check_dir=out)
m = model_copy("zero-weights"); p = f"{m}/vae/diffusion_pytorch_model.safetensors"; os.remove(p); os.symlink("/dev/zero", p)
run("files", "VAE weights are /dev/zero", gen(m), check_dir=out)
run("files", "model is a FIFO file", gen(fifo), check_dir=out)
for label, comp, change in [
    ("transformer num_layers -1", "transformer", lambda c: c.update(num_layers=-1)),
    ("transformer num_layers 1e9", "transformer", lambda c: c.update(num_layers=10**9)),
    ("transformer patch_size 0", "transformer", lambda c: c.update(patch_size=0)),
    ("VAE block_out_channels []", "vae", lambda c: c.update(block_out_channels=[])),
    ("VAE norm_num_groups 0", "vae", lambda c: c.update(norm_num_groups=0)),
    ("VAE norm_num_groups 3", "vae", lambda c: c.update(norm_num_groups=3)),
    ("VAE norm_num_groups -1", "vae", lambda c: c.update(norm_num_groups=-1)),
    ("VAE norm_num_groups missing", "vae", lambda c: c.pop("norm_num_groups")),
    ("VAE scaling_factor 0", "vae", lambda c: c.update(scaling_factor=0)),
    ("VAE scaling_factor nan-ish 1e39", "vae", lambda c: c.update(scaling_factor=1e39)),
    ("CLIP num_attention_heads 0", "text_encoder", lambda c: c.update(num_attention_heads=0)),
    ("T5 num_heads 0", "text_encoder_3", lambda c: c.update(num_heads=0)),
]:
    m = model_copy("cfg-" + label.replace(" ", "_").replace("[]", "empty"))
    edit_config(m, comp, change)
    run("configs", label, gen(m), check_dir=out)
m = model_copy("sched-shift"); edit_config(m, "scheduler", lambda c: c.update(shift=1e-320), file="scheduler_config.json")
run("configs", "scheduler shift 1e-320", gen(m), check_dir=out)
m = model_copy("tok-maxlen"); edit_config(m, "tokenizer", lambda c: c.update(model_max_length=-1), file="tokenizer_config.json")
run("configs", "tokenizer model_max_length -1", gen(m), check_dir=out)

# Outputs
good = f"{work}/good.png"
run("outputs", "baseline generate", gen(tiny, o=good), expect_fail=False)
run("outputs", "-o /dev/null", gen(tiny, o="/dev/null"))
os.makedirs(f"{work}/dir", exist_ok=True)
run("outputs", "-o DIR (writes inside)", gen(tiny, o=f"{work}/dir"), expect_fail=False)
run("outputs", "-o ''", gen(tiny, o=""))
same = f"{work}/same.png"
procs = [subprocess.Popen([sd3] + gen(tiny, ["--seed", str(i)], o=same), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(5)]
codes = [p.wait(timeout=120) for p in procs]
pngs = [f for f in os.listdir(work) if f.startswith("same")]
rows.append(dict(area="outputs", case="5 concurrent runs with one -o", code=codes, crash=any(c < 0 for c in codes), hang=False, secs=0,
                 ok=all(c == 0 for c in codes) and len(pngs) == 5, last=f"{len(pngs)} files: {sorted(pngs)}", left=[]))
stale = f"{work}/.stale.png.999999.partial"; open(stale, "w").write("x"); os.utime(stale, (time.time() - 300, time.time() - 300))
run("outputs", "stale .partial of a dead pid swept", gen(tiny, o=f"{work}/fresh.png"), expect_fail=False)
rows[-1]["ok"] = rows[-1]["ok"] and not os.path.exists(stale)
rows[-1]["last"] += f" | stale left: {os.path.exists(stale)}"

# PNG parameters
meta = subprocess.run([sd3, "recall", good, "--json"], env=env, capture_output=True).stdout
png = open(good, "rb").read()
def png_with(text_key, text):
    import zlib
    chunk = text_key.encode() + b"\0" + text.encode()
    c = struct.pack(">I", len(chunk)) + b"tEXt" + chunk + struct.pack(">I", zlib.crc32(b"tEXt" + chunk) & 0xffffffff)
    i = png.index(b"IEND") - 4
    return png[:i] + c + png[i:]
def rewrite_ours(mutate):
    # Replace the sd3-studio chunk's JSON by a mutated copy.
    import zlib
    out, i = bytearray(png[:8]), 8
    while i < len(png):
        n = struct.unpack(">I", png[i:i+4])[0]; kind = png[i+4:i+8]; data = png[i+8:i+8+n]
        if kind == b"tEXt" and data.startswith(b"sd3-studio\0"):
            j = json.loads(data[len(b"sd3-studio\0"):]); mutate(j); data = b"sd3-studio\0" + json.dumps(j).encode()
        out += struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
        i += 12 + n
    return bytes(out)
for label, mutate in [("guidanceScale 1e308", lambda j: j.update(guidanceScale=1e308)),
                      ("steps -5", lambda j: j.update(steps=-5)),
                      ("model path a FIFO", lambda j: j.update(modelPath=fifo)),
                      ("LoRA path a FIFO", lambda j: j.update(loras=[{"name": "x", "path": fifo, "strength": 1, "hash": "0123456789ab"}]))]:
    path = f"{work}/params-{label.replace(' ', '_')}.png"; open(path, "wb").write(rewrite_ours(mutate))
    run("png", f"--params-from {label}", ["generate", "--params-from", path, "--threads", "1", "--no-history", "-o", f"{out}/p.png"], check_dir=out)
long = png_with("parameters", "a cat\nNegative prompt: " + " ".join(["word"] * 40000) + "\nSteps: 20, Sampler: Euler, Seed: 1")
path = f"{work}/long-a1111.png"; open(path, "wb").write(long)
run("png", "A1111 text with 40,000 words (recall)", ["recall", path], expect_fail=False)
run("png", "recall a FIFO", ["recall", fifo])
run("png", "recall /dev/zero", ["recall", "/dev/zero"])

# Database
run("db", "history list (empty)", ["history", "list"], expect_fail=False)
db = f"{work}/data/sd3-studio/studio.sqlite"
if os.path.exists(db):
    con = sqlite3.connect(db)
    tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
    rows.append(dict(area="db", case="tables", code=0, crash=False, hang=False, secs=0, ok=True, last=str(tables), left=[]))
    con.close()

# Convert
conv = f"{work}/convert"; os.makedirs(conv)
single = f"{fix}/single-file/sd3.safetensors"
run("convert", "convert a FIFO", ["models", "convert", fifo, f"{conv}/a"], check_dir=conv)
sf = load_file(single)
renamed = dict(sf); k = [k for k in sf if "attn.qkv.weight" in k][0]; renamed[k.replace("qkv", "qkvx")] = renamed.pop(k)
save_file(renamed, f"{work}/renamed.safetensors")
run("convert", "convert with a renamed key", ["models", "convert", f"{work}/renamed.safetensors", f"{conv}/b"], check_dir=conv)
missing = dict(sf); missing.pop(sorted(k for k in sf if k.startswith("model.diffusion_model.joint_blocks.0."))[0])
save_file(missing, f"{work}/missing.safetensors")
run("convert", "convert with a missing key", ["models", "convert", f"{work}/missing.safetensors", f"{conv}/c"], check_dir=conv)
odd = dict(sf); odd[k] = odd[k][:odd[k].shape[0] - 1].copy()
save_file(odd, f"{work}/qkv-odd.safetensors")
run("convert", "convert with qkv rows not divisible by 3", ["models", "convert", f"{work}/qkv-odd.safetensors", f"{conv}/d"], check_dir=conv)
run("convert", "convert the good file (with its configs)", ["models", "convert", single, f"{conv}/ok", "--config-from", tiny], expect_fail=False)
run("convert", "convert the tiny file without configs (SD3's 32 norm groups do not divide its 8 channels)", ["models", "convert", single, f"{conv}/ok2"], check_dir=conv)

fails = [r for r in rows if not r["ok"]]
for r in rows:
    print(f"{'OK ' if r['ok'] else 'BAD'} [{r['area']}] {r['case']}: exit {r['code']}{' CRASH' if r['crash'] else ''}{' HANG' if r['hang'] else ''} {r['secs']}s | {r['last']}" + (f" | LEFT {r['left']}" if r['left'] else ""))
print(f"\n{len(rows)} cases, {sum(r['crash'] for r in rows)} crashes, {sum(r['hang'] for r in rows)} hangs, {len(fails)} not as expected")
shutil.rmtree(work, ignore_errors=True)
