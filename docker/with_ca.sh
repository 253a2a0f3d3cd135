#!/usr/bin/env bash
# Run a build command trusting an extra CA bundle when one is passed as the build secret `ca`
# (`docker build --secret id=ca,src=/path/to/ca.pem`), e.g. behind a TLS-intercepting proxy.
# The bundle lives only for this command: nothing of it ends up in an image layer.
set -euo pipefail

secret=/run/secrets/ca
if [[ -s "$secret" ]]; then
  bundle="$(mktemp /tmp/ca-bundle.XXXXXX.pem)"
  trap 'rm -f "$bundle"' EXIT
  for system in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [[ -s "$system" ]]; then
      cat "$system" >> "$bundle"
      break
    fi
  done
  cat "$secret" >> "$bundle"
  export SSL_CERT_FILE="$bundle" PIP_CERT="$bundle" REQUESTS_CA_BUNDLE="$bundle" CURL_CA_BUNDLE="$bundle" \
    GIT_SSL_CAINFO="$bundle" APT_CA_BUNDLE="$bundle"
  "$@"
  exit $?
fi
exec "$@"
