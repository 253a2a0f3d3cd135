#!/usr/bin/env bash
# Start the RunPod worker; used by the image and by `make up` alike.
#
# A thin launcher: the worker (python -m handler.worker) starts ComfyUI itself, pipes its output to
# $COMFY_LOG (bounded) and to stdout as "[comfyui] ...", restarts it when it dies, and always starts
# the RunPod SDK, so every job answers — with its result or with why this worker can't run it.
# SIGTERM/SIGINT are forwarded to the worker, which stops ComfyUI; a ComfyUI left behind is stopped.
# Never exit on a broken handler: when the worker ends on its own with an error (its handler can't be
# imported: a dependency missing from its venv), handler/last_resort.py (runpod SDK + stdlib only)
# answers every job with that import error and a fix, instead of a container restart loop.
set -uo pipefail

ENTRYPOINT_STARTED_AT="$(date +%s.%N)"
COMFY_DIR="${COMFY_DIR:-/comfyui}"
COMFY_PYTHON="${COMFY_PYTHON:-python3}"
COMFY_MAIN="${COMFY_MAIN:-$COMFY_DIR/main.py}"
COMFY_HOST="${COMFY_HOST:-127.0.0.1}"
COMFY_PORT="${COMFY_PORT:-8188}"
COMFY_LOG="${COMFY_LOG:-/var/log/comfyui.log}"
COMFY_PID_FILE="${COMFY_PID_FILE:-/tmp/comfyui.pid}"
COMFY_INPUT_DIR="${COMFY_INPUT_DIR:-$COMFY_DIR/input}"
COMFY_OUTPUT_DIR="${COMFY_OUTPUT_DIR:-$COMFY_DIR/output}"
COMFY_TEMP_DIR="${COMFY_TEMP_DIR:-$COMFY_DIR/temp}"
COMFY_USER_DIR="${COMFY_USER_DIR:-$COMFY_DIR/user}"
COMFY_EXTRA_MODEL_PATHS="${COMFY_EXTRA_MODEL_PATHS:-$COMFY_DIR/extra_model_paths.yaml}"
COMFY_EXTRA_ARGS="${COMFY_EXTRA_ARGS:-}"
HANDLER_PYTHON="${HANDLER_PYTHON:-python3}"
HANDLER_ARGS="${HANDLER_ARGS:-}"

export ENTRYPOINT_STARTED_AT COMFY_DIR COMFY_PYTHON COMFY_MAIN COMFY_HOST COMFY_PORT COMFY_LOG COMFY_PID_FILE \
  COMFY_INPUT_DIR COMFY_OUTPUT_DIR COMFY_TEMP_DIR COMFY_USER_DIR COMFY_EXTRA_MODEL_PATHS COMFY_EXTRA_ARGS
export COMFY_URL="${COMFY_URL:-http://$COMFY_HOST:$COMFY_PORT}"
export RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="${RUNPOD_SKIP_AUTO_SYSTEM_CHECKS:-true}"
# The SDK defaults to DEBUG, which writes every job's whole output (megabytes of base64) to the log.
export RUNPOD_LOG_LEVEL="${RUNPOD_LOG_LEVEL:-INFO}"

# Best effort: a directory that can't be made (a full or read-only disk) is reported by the worker.
mkdir -p "$(dirname "$COMFY_LOG")" "$(dirname "$COMFY_PID_FILE")" 2>/dev/null || true
read -r -a handler_args <<< "$HANDLER_ARGS"

terminating=0
handler_pid=""
trap 'terminating=1; [[ -n "$handler_pid" ]] && kill -TERM "$handler_pid" 2>/dev/null' TERM INT

# Start "$@" in the background and wait until it has really ended (`wait` returns early when a trapped
# signal arrives); its exit code in $rc.
run_until_ended() {
  "$@" &
  handler_pid=$!
  wait "$handler_pid"
  rc=$?
  while kill -0 "$handler_pid" 2>/dev/null; do
    wait "$handler_pid"
    rc=$?
  done
}

# The worker stops ComfyUI itself; this only catches a ComfyUI left behind by a worker killed hard.
stop_left_comfy() {
  local comfy_pid
  comfy_pid="$(cat "$COMFY_PID_FILE" 2>/dev/null || true)"
  if [[ -n "$comfy_pid" ]] && kill -0 "$comfy_pid" 2>/dev/null; then
    kill -TERM "$comfy_pid" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$comfy_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$comfy_pid" 2>/dev/null
  fi
}

# handler/last_resort.py: beside this script (a checkout), under app/ (the image), or on PYTHONPATH.
last_resort_script() {
  local here dir
  here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
  IFS=: read -r -a path_dirs <<< "${PYTHONPATH:-}"
  for dir in "$here" "$here/app" "${path_dirs[@]}" "$PWD"; do
    if [[ -n "$dir" && -f "$dir/handler/last_resort.py" ]]; then
      echo "$dir/handler/last_resort.py"
      return 0
    fi
  done
  return 1
}

echo "entrypoint: starting the worker (it starts ComfyUI on $COMFY_HOST:$COMFY_PORT, log: $COMFY_LOG)"
run_until_ended "$HANDLER_PYTHON" -m handler.worker "${handler_args[@]}"
stop_left_comfy

if [[ "$terminating" == 0 && "$rc" != 0 ]]; then
  if script="$(last_resort_script)"; then
    echo "entrypoint: the worker exited with $rc; starting the last-resort handler so every job gets the cause"
    export WORKER_EXIT_CODE="$rc"
    run_until_ended "$HANDLER_PYTHON" "$script" "${handler_args[@]}"
  else
    echo "entrypoint: the worker exited with $rc and handler/last_resort.py is not in the image" >&2
  fi
fi
rm -f "$COMFY_PID_FILE"
echo "entrypoint: worker exited with $rc"
exit "$rc"
