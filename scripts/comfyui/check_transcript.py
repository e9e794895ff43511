#!/usr/bin/env python3
"""Read back transcripts written by record_proxy.py: check the format, decode every body and frame, and print what
each holds (the HTTP calls, the WebSocket message sequence, binary frames by event and image type).

    python3 scripts/comfyui/check_transcript.py /root/comfy-transcripts/*.json

Checks: the top-level keys, every exchange's kind and fields, base64 that decodes, ws text frames that are JSON
{type, data}, binary frames whose 4-byte big-endian event is 1 (preview/image: a second uint32, 1 = JPEG, 2 = PNG,
then the image, whose magic bytes must match), 3 (text) or 4 (image with metadata), every ws_open closed, no
Authorization value. Standard library only. Exit status 1 if any file fails.
"""
import base64
import json
import struct
import sys

HTTP_FIELDS = {"kind", "method", "path", "request_headers", "request_body", "status", "response_headers",
               "response_body"}
MAGIC = {1: b"\xff\xd8\xff", 2: b"\x89PNG\r\n\x1a\n"}


def check(path):
    problems = []
    with open(path, encoding="utf-8") as f:
        t = json.load(f)
    for key in ("server", "recorded", "exchanges"):
        if key not in t:
            problems.append(f"no {key!r}")
    lines, opened, frames = [], set(), {}
    for i, e in enumerate(t.get("exchanges", [])):
        kind = e.get("kind")
        if kind == "http":
            if set(e) != HTTP_FIELDS:
                problems.append(f"#{i}: http fields {sorted(set(e) ^ HTTP_FIELDS)}")
            for side in ("request_body", "response_body"):
                b = e.get(side)
                if isinstance(b, dict) and set(b) == {"base64"}:
                    base64.b64decode(b["base64"], validate=True)
            if e.get("request_headers", {}).get("authorization", "<redacted>") != "<redacted>":
                problems.append(f"#{i}: an Authorization value was recorded")
            if any(k != k.lower() for k in list(e.get("request_headers", {})) + list(e.get("response_headers", {}))):
                problems.append(f"#{i}: a header name is not lower case")
            lines.append(f"{e['method']} {e['path'].split('?')[0]} -> {e['status']}")
        elif kind == "ws_open":
            opened.add(e["ws"])
            lines.append(f"ws_open {e['ws']}")
        elif kind == "ws_close":
            if e["ws"] not in opened:
                problems.append(f"#{i}: ws_close of a socket never opened")
            opened.discard(e["ws"])
            lines.append(f"ws_close {e['ws']} by {e.get('by')}")
        elif kind == "ws_text":
            m = json.loads(e["text"])
            if not isinstance(m, dict) or "type" not in m or "data" not in m:
                problems.append(f"#{i}: text frame is not {{type, data}}")
            d = m.get("data", {})
            label = m.get("type")
            if label == "progress":
                label += f" {d['value']}/{d['max']}"
            elif label == "executing":
                label += f" {d.get('node')}"
            lines.append(f"  {label}")
        elif kind == "ws_binary":
            raw = base64.b64decode(e["base64"], validate=True)
            event = struct.unpack(">I", raw[:4])[0]
            if event == 1:
                image_type = struct.unpack(">I", raw[4:8])[0]
                if not raw[8:].startswith(MAGIC.get(image_type, b"?")):
                    problems.append(f"#{i}: event 1 type {image_type} does not start with its magic bytes")
                label = f"binary event 1 type {image_type} ({len(raw) - 8} bytes)"
                frames[(1, image_type)] = frames.get((1, image_type), 0) + 1
            elif event in (3, 4):
                label = f"binary event {event} ({len(raw) - 4} bytes)"
                frames[(event, None)] = frames.get((event, None), 0) + 1
            else:
                problems.append(f"#{i}: unknown binary event {event}")
                label = f"binary event {event}"
            lines.append(f"  {label}")
        elif kind in ("http_upstream_error", "ws_upstream_error"):
            lines.append(f"{kind} {e.get('method', 'WS')} {e['path'].split('?')[0]}: {e['error']}")
        else:
            problems.append(f"#{i}: unknown kind {kind!r}")
    if opened:
        problems.append(f"sockets never closed: {sorted(opened)}")
    collapsed = []
    for line in lines:
        if collapsed and collapsed[-1][0] == line:
            collapsed[-1][1] += 1
        else:
            collapsed.append([line, 1])
    print(f"{path}: {t.get('server')}, recorded {t.get('recorded')}, {len(t.get('exchanges', []))} exchanges, "
          f"binary frames {frames}")
    for line, n in collapsed:
        print(f"    {line}" + (f"  x{n}" if n > 1 else ""))
    for p in problems:
        print(f"  PROBLEM: {p}")
    return not problems


def main():
    ok = all([check(p) for p in sys.argv[1:]])
    print("all transcripts read back" if ok else "some transcripts have problems")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
