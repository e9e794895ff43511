#!/usr/bin/env bash
# Writes Tests/ComfyUITests/Fixtures/tls/: a test CA (ca.pem) and a certificate for localhost only (not 127.0.0.1: the host-name check is tested) it signed
# (server.pem, server.key), valid for 100 years, for the TLS tests of comfyuis:// (the CA's key is not kept).
set -euo pipefail
out="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/Tests/ComfyUITests/Fixtures/tls"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$out/ca.pem" -days 36500 -subj "/CN=sd3-studio test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl req -newkey rsa:2048 -nodes -keyout "$out/server.key" -out "$work/server.csr" -subj "/CN=localhost"
printf "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > "$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$out/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -out "$out/server.pem" \
    -days 36500 -extfile "$work/ext.cnf"
