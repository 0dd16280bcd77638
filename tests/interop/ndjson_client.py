#!/usr/bin/env python3
"""Interop: a plain Python NDJSON JSON-RPC client (standard library only) against the real
`photobulk serve` Unix socket. Usage: ndjson_client.py PATH/TO/photobulk PHOTO.jpg

Starts the server with TMPDIR set to a fresh folder, reads the start line, connects to
$TMPDIR/CoreFxPipe_NAME, and checks: initialize, image.prepare (paths and base64 data), a
parse error and an unknown method that leave the connection up, not_connected, and shutdown
(the process exits 0 and removes its socket)."""
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile


def main(exe, photo):
    tmp = tempfile.mkdtemp(prefix="pb-interop-py-")
    proc = subprocess.Popen([exe, "serve", "--pipe", "interop-py", "--idle-timeout", "60"],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "serve.log"), "w"),
                            env=dict(os.environ, TMPDIR=tmp), text=True)
    start = json.loads(proc.stdout.readline())
    assert start["status"] == "started", start
    assert start["path"] == os.path.join(tmp, "CoreFxPipe_interop-py"), start
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(60)
    sock.connect(start["path"])
    f = sock.makefile("rwb")
    next_id = [0]

    def call(method, params=None):
        next_id[0] += 1
        msg = {"jsonrpc": "2.0", "id": next_id[0], "method": method}
        if params is not None:
            msg["params"] = params
        f.write(json.dumps(msg).encode() + b"\r\n")  # CRLF is accepted too
        f.flush()
        while True:
            reply = json.loads(f.readline())
            if "method" not in reply:
                assert reply["id"] == next_id[0], reply
                return reply

    r = call("initialize", {"protocolVersion": 1, "clientName": "python-interop"})
    assert r["result"]["serverName"] == "photobulk", r
    out = os.path.join(tmp, "out")
    r = call("image.prepare", {"paths": [photo], "outDir": out, "includeData": True})
    item = r["result"]["items"][0]
    assert item["ok"], item
    by_target = {o["target"]: o for o in item["outputs"]}
    ad = by_target["ad"]
    data = base64.b64decode(ad["data"])
    assert data == open(ad["path"], "rb").read() and len(data) <= 10240, ad["bytes"]
    assert by_target["hd"]["width"] == 648
    f.write(b'{"broken json\n')
    f.flush()
    err = json.loads(f.readline())
    assert err["error"]["data"]["kind"] == "parse_error" and err["id"] is None, err
    r = call("no.such.method")
    assert r["error"]["code"] == -32601, r
    r = call("photo.get", {"identity": "john.smith"})
    assert r["error"]["data"]["kind"] == "not_connected", r
    r = call("shutdown")
    assert r["result"] is None, r
    sock.close()
    rc = proc.wait(timeout=30)
    assert rc == 0, rc
    assert not os.path.exists(start["path"]), "socket left behind"
    print("python NDJSON client: ok (initialize, image.prepare, parse error, unknown method, not_connected, shutdown)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
