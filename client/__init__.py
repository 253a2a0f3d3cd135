"""The laptop / CI half: talk to a deployment over HTTP and tell, in seconds, whether it works.

Layers (one module per external system, commands that return data, one renderer, thin CLIs):

    runpod_api.py      RunPod's endpoint API (cloud, the SDK's local dev API): the only RunPod network code
    direct.py          a ComfyUI server used as if it were the worker (through comfyui_client)
    jobflow.py         submit / poll / deadline / Ctrl-C → cancel
    ledger.py          sqlite job ledger behind --idempotency-key
    recheck.py         the worker's diagnose answer judged against the local workflow registry
    commands/*.py      health, diagnose, generate, jobs, validate, bench: plain data in, data out
    render.py          human text (rich) or a versioned JSON envelope; reports.py writes report files
    config.py          flags over environment, read once; redact.py keeps the API key out of every output
    diagnose.py generate.py jobs.py validate.py bench.py   the CLIs (python client/<name>.py --help)

Nothing here imports the runpod SDK or handler/ (a test checks the import graph).
"""
