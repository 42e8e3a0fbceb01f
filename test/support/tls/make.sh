#!/usr/bin/env bash
# Regenerates the test-only TLS fixtures of this directory (needs openssl). Not run by CI: the
# files are committed. Every certificate is valid until 2126; the keys guard nothing.
#   cluster-ca.pem                  the CA every test store trusts
#   peer.pem, peer-key.pem          signed by it, for 127.0.0.1 and localhost (server and client auth)
#   wrong-host.pem, wrong-host-key.pem  signed by it, but for elsewhere.invalid only
#   stranger-ca.pem, stranger.pem, stranger-key.pem  another CA and a peer certificate it signed
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=36500
ca() { # name
  openssl ecparam -name prime256v1 -genkey -noout -out "$work/$1-key.pem"
  openssl req -x509 -new -key "$work/$1-key.pem" -sha256 -days $days -subj "/CN=flotilla test $1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$1.pem"
}
leaf() { # name ca san
  openssl ecparam -name prime256v1 -genkey -noout -out "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "/CN=flotilla test $1" -out "$work/$1.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$3" > "$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$2.pem" -CAkey "$work/$2-key.pem" -CAcreateserial -sha256 -days $days -extfile "$work/$1.ext" -out "$1.pem" 2>/dev/null
}
ca cluster-ca
ca stranger-ca
leaf peer cluster-ca 'IP:127.0.0.1,DNS:localhost'
leaf wrong-host cluster-ca 'DNS:elsewhere.invalid'
leaf stranger stranger-ca 'IP:127.0.0.1,DNS:localhost'
rm -f ./*.srl
