#!/usr/bin/env bash
# Start ComfyUI and the RunPod worker side by side; used by the image and by `make up` alike.
#
# ComfyUI boots in the background with its log in $COMFY_LOG. The worker process starts at the same
# time, so its slow `import runpod` overlaps ComfyUI's boot; it polls /system_stats every 50 ms,
# exits non-zero with the reason and the last 50 log lines if ComfyUI dies or misses
# COMFY_READY_TIMEOUT, runs the live self-check (SELF_CHECK_STRICT=1 stops on errors) and then takes
# jobs. SIGTERM/SIGINT are forwarded to both; when the worker ends, ComfyUI is stopped too.
set -uo pipefail

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

export COMFY_DIR COMFY_PORT COMFY_LOG COMFY_PID_FILE COMFY_INPUT_DIR COMFY_OUTPUT_DIR COMFY_TEMP_DIR \
  COMFY_EXTRA_MODEL_PATHS
export COMFY_URL="${COMFY_URL:-http://$COMFY_HOST:$COMFY_PORT}"
export RUNPOD_SKIP_AUTO_SYSTEM_CHECKS="${RUNPOD_SKIP_AUTO_SYSTEM_CHECKS:-true}"
# The SDK defaults to DEBUG, which writes every job's whole output (megabytes of base64) to the log.
export RUNPOD_LOG_LEVEL="${RUNPOD_LOG_LEVEL:-INFO}"

mkdir -p "$COMFY_INPUT_DIR" "$COMFY_OUTPUT_DIR" "$COMFY_TEMP_DIR" "$COMFY_USER_DIR" "$(dirname "$COMFY_LOG")" \
  "$(dirname "$COMFY_PID_FILE")"

comfy_args=(--listen "$COMFY_HOST" --port "$COMFY_PORT" --disable-auto-launch
  --input-directory "$COMFY_INPUT_DIR" --output-directory "$COMFY_OUTPUT_DIR"
  --temp-directory "$COMFY_TEMP_DIR" --user-directory "$COMFY_USER_DIR"
  --database-url "sqlite:///$COMFY_USER_DIR/comfyui.db")
if [[ -f "$COMFY_EXTRA_MODEL_PATHS" ]]; then
  comfy_args+=(--extra-model-paths-config "$COMFY_EXTRA_MODEL_PATHS")
fi
read -r -a extra_args <<< "$COMFY_EXTRA_ARGS"
read -r -a handler_args <<< "$HANDLER_ARGS"

echo "entrypoint: starting ComfyUI on $COMFY_HOST:$COMFY_PORT (log: $COMFY_LOG)"
# ComfyUI gets no PYTHONPATH: our packages must never shadow its own (it has comfy_api, app, utils, …).
env -u PYTHONPATH "$COMFY_PYTHON" "$COMFY_MAIN" "${comfy_args[@]}" "${extra_args[@]}" > "$COMFY_LOG" 2>&1 &
comfy_pid=$!
echo "$comfy_pid" > "$COMFY_PID_FILE"

"$HANDLER_PYTHON" -m handler.worker "${handler_args[@]}" &
handler_pid=$!

trap 'kill -TERM "$handler_pid" "$comfy_pid" 2>/dev/null' TERM INT

# `wait` returns early when a trapped signal arrives; keep waiting until the worker has really ended.
wait "$handler_pid"
rc=$?
while kill -0 "$handler_pid" 2>/dev/null; do
  wait "$handler_pid"
  rc=$?
done

if kill -0 "$comfy_pid" 2>/dev/null; then
  kill -TERM "$comfy_pid" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$comfy_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$comfy_pid" 2>/dev/null
fi
wait "$comfy_pid" 2>/dev/null
rm -f "$COMFY_PID_FILE"
echo "entrypoint: worker exited with $rc"
exit "$rc"
