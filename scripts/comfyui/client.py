#!/usr/bin/env python3
"""A small ComfyUI client that runs the integration scenarios against a server (or the recording proxy in front of
it) and prints what it saw: the WebSocket message sequence, binary frames, HTTP answers.

    /root/comfyvenv/bin/python scripts/comfyui/client.py --server http://127.0.0.1:8188 SCENARIO [--out DIR]

Scenarios: txt2img, txt2img-clip-l (CLIPLoader type sd3, CLIP-L only), txt2img-checkpoint
(CheckpointLoaderSimple), txt2img-lora (LoraLoaderModelOnly), txt2img-sai (Stability-layout UNET file), img2img
(upload + LoadImage + VAEEncode, denoise 0.6), img2img-parity (the schedule of diffusers' strength 0.6), interrupt,
reconnect (the WebSocket drops mid-job), execution-error (fails while running),
server-killed (SIGKILL to --server-pid after the first step; not in "all"), bad-input, missing-model, object-info, system-stats, upload, all.
With --out, images (final PNG, previews), /history bodies and error bodies are written there.
Needs websocket-client (in the comfy venv). Exit status 1 if a scenario did not end as expected.
"""
import argparse
import io
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import websocket

MODELS = {"unet": "tiny-sd3.safetensors", "clip_l": "clip_l.safetensors", "clip_g": "clip_g.safetensors",
          "vae": "sd3_vae.safetensors", "checkpoint": "tiny-sd3-all.safetensors", "lora": "tiny-lora.safetensors"}
PROMPT = "a red circle at the top"


def sd3_workflow(seed=42, steps=4, cfg=5.0, width=64, height=64, prompt=PROMPT, negative="", unet=None, loader="dual",
                 lora=None, image=None, denoise=1.0):
    """API-format SD3 workflow (fast-paths-and-backends.md §3(a)); node ids are strings, links [node, output]."""
    w = {}
    if loader == "checkpoint":
        w["1"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": MODELS["checkpoint"]}}
        model, clip, vae = ["1", 0], ["1", 1], ["1", 2]
    else:
        w["1"] = {"class_type": "UNETLoader", "inputs": {"unet_name": unet or MODELS["unet"], "weight_dtype": "default"}}
        if loader == "clip-l":
            w["3"] = {"class_type": "CLIPLoader", "inputs": {"clip_name": MODELS["clip_l"], "type": "sd3"}}
        else:
            w["3"] = {"class_type": "DualCLIPLoader",
                      "inputs": {"clip_name1": MODELS["clip_l"], "clip_name2": MODELS["clip_g"], "type": "sd3"}}
        w["8"] = {"class_type": "VAELoader", "inputs": {"vae_name": MODELS["vae"]}}
        model, clip, vae = ["1", 0], ["3", 0], ["8", 0]
    if lora:
        w["11"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": model, "lora_name": lora, "strength_model": 1.0}}
        model = ["11", 0]
    w["2"] = {"class_type": "ModelSamplingSD3", "inputs": {"model": model, "shift": 3.0}}
    w["4"] = {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": prompt}}
    w["5"] = {"class_type": "CLIPTextEncode", "inputs": {"clip": clip, "text": negative}}
    if image is None:
        w["6"] = {"class_type": "EmptySD3LatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}}
    else:
        w["12"] = {"class_type": "LoadImage", "inputs": {"image": image}}
        w["6"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": vae}}
    w["7"] = {"class_type": "KSampler",
              "inputs": {"model": ["2", 0], "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": "euler",
                         "scheduler": "normal", "positive": ["4", 0], "negative": ["5", 0], "latent_image": ["6", 0],
                         "denoise": denoise}}
    w["9"] = {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": vae}}
    w["10"] = {"class_type": "SaveImageWebsocket", "inputs": {"images": ["9", 0]}}
    return w


class Client:
    def __init__(self, server, out=None, server_pid=None):
        self.server = server.rstrip("/")
        self.server_pid = server_pid
        self.client_id = str(uuid.uuid4())
        self.out = out
        self.ws = None

    def http(self, method, path, body=None, headers=None):
        """(status, content-type, parsed JSON or bytes). HTTP errors are answers too."""
        data = body
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.server + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, ctype, raw = r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            status, ctype, raw = e.code, e.headers.get("Content-Type", ""), e.read()
        if "json" in ctype:
            return status, ctype, json.loads(raw)
        return status, ctype, raw

    def connect(self):
        url = self.server.replace("http", "ws", 1) + "/ws?clientId=" + self.client_id
        self.ws = websocket.create_connection(url, timeout=300)

    def close(self):
        if self.ws:
            self.ws.close()
            self.ws = None

    def submit(self, workflow):
        prompt_id = str(uuid.uuid4())
        status, _, body = self.http("POST", "/prompt", {"prompt": workflow, "client_id": self.client_id,
                                                        "prompt_id": prompt_id})
        return status, body, prompt_id

    def follow(self, prompt_id, on_message=None):
        """Read the socket until our prompt ends. Returns (events, binaries, ending): events are the JSON messages
        (type, data), binaries (event, image type, bytes), ending the closing message type."""
        events, binaries = [], []
        while True:
            frame = self.ws.recv()
            if isinstance(frame, bytes):
                event = struct.unpack(">I", frame[:4])[0]
                if event == 1:
                    kind = struct.unpack(">I", frame[4:8])[0]
                    binaries.append((event, kind, frame[8:]))
                else:
                    binaries.append((event, None, frame[4:]))
                if on_message:
                    on_message(("binary", binaries[-1]))
                continue
            msg = json.loads(frame)
            events.append(msg)
            if on_message:
                on_message(("json", msg))
            data = msg.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if msg["type"] in ("execution_success", "execution_error", "execution_interrupted"):
                return events, binaries, msg["type"]

    def save(self, name, content):
        if not self.out:
            return
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, name)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as f:
            f.write(content if isinstance(content, bytes) else json.dumps(content, indent=1))


def summarize(events, binaries):
    seq = []
    for m in events:
        t, d = m["type"], m.get("data", {})
        if t == "progress":
            seq.append(f"progress {d['value']}/{d['max']}")
        elif t == "executing":
            seq.append(f"executing {d.get('node')}")
        elif t == "status":
            seq.append(f"status q={d['status']['exec_info']['queue_remaining']}")
        elif t == "progress_state":
            seq.append("progress_state")
        else:
            seq.append(t)
    collapsed = []
    for s in seq:  # "progress_state" repeats per node update; keep the shape readable
        if collapsed and collapsed[-1][0] == s:
            collapsed[-1][1] += 1
        else:
            collapsed.append([s, 1])
    line = ", ".join(s if n == 1 else f"{s} x{n}" for s, n in collapsed)
    kinds = {}
    for event, kind, _ in binaries:
        kinds[(event, kind)] = kinds.get((event, kind), 0) + 1
    return line, kinds


def image_size(data):
    from PIL import Image
    return Image.open(io.BytesIO(data)).size


def run_generation(c, name, workflow):
    c.connect()
    t0 = time.time()
    status, body, prompt_id = c.submit(workflow)
    print(f"[{name}] POST /prompt -> {status} {json.dumps(body)}")
    if status != 200:
        c.close()
        return False, None
    events, binaries, ending = c.follow(prompt_id)
    elapsed = time.time() - t0
    c.close()
    line, kinds = summarize(events, binaries)
    print(f"[{name}] ws: {line}")
    print(f"[{name}] binary frames (event, type): {kinds}; ending {ending} in {elapsed:.1f}s")
    final = [b for e, k, b in binaries if e == 1 and k == 2]
    previews = [b for e, k, b in binaries if e == 1 and k == 1]
    if final:
        print(f"[{name}] final PNG {image_size(final[-1])}, {len(final[-1])} bytes; previews: "
              f"{[image_size(p) for p in previews]}")
        c.save(f"{name}.png", final[-1])
    for i, p in enumerate(previews):
        c.save(f"{name}.preview{i}.jpg", p)
    status, _, history = c.http("GET", f"/history/{prompt_id}")
    entry = history.get(prompt_id, {})
    print(f"[{name}] GET /history/{{id}} -> {status}, keys {sorted(entry)}, status "
          f"{json.dumps(entry.get('status', {}).get('status_str'))}, outputs {json.dumps(entry.get('outputs'))}")
    c.save(f"{name}.history.json", history)
    c.save(f"{name}.ws.json", events)
    return ending == "execution_success" and bool(final), final[-1] if final else None


def scenario_txt2img(c, variant="txt2img"):
    kwargs = {"txt2img": {}, "txt2img-clip-l": {"loader": "clip-l"}, "txt2img-checkpoint": {"loader": "checkpoint"},
              "txt2img-lora": {"lora": MODELS["lora"]}, "txt2img-sai": {"unet": "tiny-sd3-sai.safetensors"}}[variant]
    ok, _ = run_generation(c, variant, sd3_workflow(**kwargs))
    return ok


def scenario_interrupt(c):
    c.connect()
    status, body, prompt_id = c.submit(sd3_workflow(steps=200, seed=7))
    print(f"[interrupt] POST /prompt -> {status} {json.dumps(body)}")
    sent = {}

    def on_message(m):
        if m[0] == "json" and m[1]["type"] == "progress" and not sent:
            t0 = time.time()
            sent["answer"] = c.http("POST", "/interrupt", {"prompt_id": prompt_id})
            sent["at"] = m[1]["data"]["value"]
            sent["t"] = t0

    events, binaries, ending = c.follow(prompt_id, on_message)
    c.close()
    line, kinds = summarize(events, binaries)
    last_progress = max((m["data"]["value"] for m in events if m["type"] == "progress"), default=None)
    print(f"[interrupt] POST /interrupt at step {sent.get('at')} -> {sent.get('answer')}; ws: {line}")
    print(f"[interrupt] ending {ending}, last progress {last_progress}, "
          f"{json.dumps([m for m in events if m['type'] == 'execution_interrupted'])}")
    c.save("interrupt.ws.json", events)
    status, _, history = c.http("GET", f"/history/{prompt_id}")
    c.save("interrupt.history.json", history)
    print(f"[interrupt] /history status {json.dumps(history.get(prompt_id, {}).get('status'))}")
    return ending == "execution_interrupted"


def scenario_reconnect(c):
    """The WebSocket drops after the first step; a new one with the same clientId reads on, then /history."""
    c.connect()
    status, body, prompt_id = c.submit(sd3_workflow(steps=12, seed=11))
    print(f"[reconnect] POST /prompt -> {status} {json.dumps(body)}")
    first = []
    while True:  # up to the first progress message
        frame = c.ws.recv()
        if isinstance(frame, str):
            m = json.loads(frame)
            first.append(m)
            if m["type"] == "progress":
                break
    c.close()
    c.connect()
    events, binaries, ending = c.follow(prompt_id)
    c.close()
    line, kinds = summarize(events, binaries)
    print(f"[reconnect] before the drop: {summarize(first, [])[0]}")
    print(f"[reconnect] after reconnecting: {line}; binary {kinds}; ending {ending}")
    status, _, history = c.http("GET", f"/history/{prompt_id}")
    entry = history.get(prompt_id, {})
    print(f"[reconnect] GET /history/{{id}} -> {status}, status {json.dumps(entry.get('status', {}).get('status_str'))}")
    final = [b for e, k, b in binaries if e == 1 and k == 2]
    return ending == "execution_success" and bool(final)


def scenario_execution_error(c):
    """Valid inputs that fail while running: a 64x1088 latent is 68 patches tall, more than the tiny MMDiT's
    pos_embed_max_size 64 (ComfyUI's mmdit.py cropped_pos_embed asserts), so KSampler raises."""
    c.connect()
    status, body, prompt_id = c.submit(sd3_workflow(width=64, height=1088, seed=5))
    print(f"[execution-error] POST /prompt -> {status} {json.dumps(body)}")
    events, binaries, ending = c.follow(prompt_id)
    c.close()
    line, _ = summarize(events, binaries)
    error = [m for m in events if m["type"] == "execution_error"]
    print(f"[execution-error] ws: {line}")
    print(f"[execution-error] {json.dumps(error)[:1500]}")
    c.save("execution-error.ws.json", events)
    status, _, history = c.http("GET", f"/history/{prompt_id}")
    print(f"[execution-error] /history status_str "
          f"{json.dumps(history.get(prompt_id, {}).get('status', {}).get('status_str'))}")
    return ending == "execution_error"


def scenario_server_killed(c):
    """The server is killed (SIGKILL, pid from --server-pid) after the first step: the socket drops, then
    /history and a new /prompt fail to connect."""
    if not c.server_pid:
        print("[server-killed] needs --server-pid (record_all.sh passes {server_pid})")
        return False
    c.connect()
    status, body, prompt_id = c.submit(sd3_workflow(steps=50, seed=13))
    print(f"[server-killed] POST /prompt -> {status} {json.dumps(body)}")
    seen = []
    try:
        while True:
            frame = c.ws.recv()
            if not frame:  # websocket-client's answer to a close frame
                print("[server-killed] socket closed")
                break
            if isinstance(frame, str):
                m = json.loads(frame)
                seen.append(m)
                if m["type"] == "progress" and m["data"]["node"] == "7":
                    os.kill(c.server_pid, 9)
                    print(f"[server-killed] killed pid {c.server_pid} at step {m['data']['value']}")
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as e:
        print(f"[server-killed] socket: {type(e).__name__}: {e}")
    print(f"[server-killed] before: {summarize(seen, [])[0]}")
    c.close()
    time.sleep(0.5)
    for method, path, body in (("GET", f"/history/{prompt_id}", None), ("POST", "/prompt", {"prompt": sd3_workflow()})):
        try:
            status, ctype, answer = c.http(method, path, body)
            print(f"[server-killed] {method} {path} -> {status} {ctype} {answer[:200]!r}")
        except (urllib.error.URLError, ConnectionError) as e:
            print(f"[server-killed] {method} {path} -> {type(e).__name__}: {e}")
    return True


def scenario_bad_input(c):
    w = sd3_workflow()
    w["7"]["inputs"]["steps"] = "many"
    w["7"]["inputs"]["sampler_name"] = "no_such_sampler"
    del w["7"]["inputs"]["cfg"]
    status, body, _ = c.submit(w)
    print(f"[bad-input] POST /prompt -> {status} {json.dumps(body)}")
    c.save("bad-input.body.json", body)
    return status == 400 and "node_errors" in body


def scenario_missing_model(c):
    w = sd3_workflow(unet="no-such-model.safetensors")
    status, body, _ = c.submit(w)
    print(f"[missing-model] POST /prompt -> {status} {json.dumps(body)}")
    c.save("missing-model.body.json", body)
    return status == 400


def scenario_object_info(c):
    ok = True
    for node in ["UNETLoader", "CheckpointLoaderSimple", "DualCLIPLoader", "TripleCLIPLoader", "CLIPLoader",
                 "VAELoader", "LoraLoaderModelOnly", "KSampler", "NoSuchNode"]:
        status, _, body = c.http("GET", f"/object_info/{node}")
        if node in body:
            req = body[node]["input"]["required"]
            lists = {k: v[0] for k, v in req.items() if isinstance(v[0], list) and "name" in k}
            print(f"[object-info] /object_info/{node} -> {status}; model lists {json.dumps(lists)}")
        else:
            print(f"[object-info] /object_info/{node} -> {status} {json.dumps(body)[:200]}")
        ok &= status == 200
    status, _, body = c.http("GET", "/object_info")
    print(f"[object-info] /object_info -> {status}, {len(body)} node classes, "
          f"{len(json.dumps(body))} bytes of JSON")
    for folder in ["checkpoints", "diffusion_models", "text_encoders", "vae", "loras", "vae_approx"]:
        s, _, b = c.http("GET", f"/models/{folder}")
        print(f"[object-info] /models/{folder} -> {s} {json.dumps(b)}")
    return ok


def scenario_system_stats(c):
    status, _, body = c.http("GET", "/system_stats")
    print(f"[system-stats] /system_stats -> {status} {json.dumps(body)}")
    c.save("system_stats.json", body)
    s2, _, q = c.http("GET", "/queue")
    print(f"[system-stats] /queue -> {s2} {json.dumps(q)}")
    s3, _, p = c.http("GET", "/prompt")
    print(f"[system-stats] GET /prompt -> {s3} {json.dumps(p)}")
    return status == 200 and "devices" in body


def test_png():
    """A 64x64 RGB gradient (the img2img input)."""
    from PIL import Image
    im = Image.new("RGB", (64, 64))
    im.putdata([(4 * x, 4 * y, 128) for y in range(64) for x in range(64)])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def upload(c, name="sd3studio-input.png", overwrite=True):
    boundary = "----sd3studio" + uuid.uuid4().hex
    parts = []

    def field(name, value, filename=None, ctype=None):
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
        if filename:
            head += f'; filename="{filename}"\r\nContent-Type: {ctype}'
        parts.append(head.encode() + b"\r\n\r\n" + value + b"\r\n")

    field("image", test_png(), name, "image/png")
    field("type", b"input")
    field("overwrite", b"true" if overwrite else b"false")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return c.http("POST", "/upload/image", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def scenario_upload(c):
    status, _, body = upload(c)
    print(f"[upload] POST /upload/image -> {status} {json.dumps(body)}")
    status2, _, body2 = upload(c, overwrite=False)
    print(f"[upload] again, overwrite=false -> {status2} {json.dumps(body2)}")
    s3, ctype, img = c.http("GET", "/view?" + urllib.parse.urlencode({"filename": body["name"], "type": "input"}))
    print(f"[upload] GET /view -> {s3} {ctype} {len(img)} bytes")
    return status == 200


def scenario_img2img(c, variant="img2img"):
    """img2img: 4 steps at denoise 0.6. img2img-parity: the schedule diffusers' SD3 img2img runs for 4 steps at
    strength 0.6 (it keeps the last 4 - int(4 - 4*0.6) = 3 steps of the 4-step schedule; KSampler with steps 3 and
    denoise 0.75 builds int(3/0.75) = 4 steps and keeps the last 3)."""
    status, _, body = upload(c)
    print(f"[{variant}] POST /upload/image -> {status} {json.dumps(body)}")
    c.save("input.png", test_png())
    name = body["name"] if not body.get("subfolder") else f"{body['subfolder']}/{body['name']}"
    steps, denoise = (4, 0.6) if variant == "img2img" else (3, 0.75)
    ok, _ = run_generation(c, variant, sd3_workflow(image=name, steps=steps, denoise=denoise))
    return ok


SCENARIOS = {"txt2img": scenario_txt2img,
             "txt2img-clip-l": lambda c: scenario_txt2img(c, "txt2img-clip-l"),
             "txt2img-checkpoint": lambda c: scenario_txt2img(c, "txt2img-checkpoint"),
             "txt2img-lora": lambda c: scenario_txt2img(c, "txt2img-lora"),
             "txt2img-sai": lambda c: scenario_txt2img(c, "txt2img-sai"),
             "interrupt": scenario_interrupt, "reconnect": scenario_reconnect,
             "execution-error": scenario_execution_error, "server-killed": scenario_server_killed, "bad-input": scenario_bad_input, "missing-model": scenario_missing_model,
             "object-info": scenario_object_info, "system-stats": scenario_system_stats, "upload": scenario_upload,
             "img2img": scenario_img2img, "img2img-parity": lambda c: scenario_img2img(c, "img2img-parity")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default="http://127.0.0.1:8188")
    ap.add_argument("--out")
    ap.add_argument("--server-pid", type=int, help="server-killed: the ComfyUI process to kill mid-job")
    ap.add_argument("scenario", choices=list(SCENARIOS) + ["all"])
    args = ap.parse_args()
    names = [n for n in SCENARIOS if n != "server-killed"] if args.scenario == "all" else [args.scenario]
    failed = []
    for name in names:
        c = Client(args.server, args.out, args.server_pid)
        t0 = time.time()
        ok = SCENARIOS[name](c)
        print(f"[{name}] {'OK' if ok else 'FAILED'} ({time.time() - t0:.1f}s)", flush=True)
        if not ok:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
