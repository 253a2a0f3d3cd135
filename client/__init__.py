"""The laptop / CI half: talk to a deployment over HTTP and tell, in seconds, whether it works.

Layers (one module per external system, commands that return data, one renderer, thin CLIs):

    runpod_api.py      RunPod's endpoint API (cloud, the SDK's local dev API): the only RunPod network code
    direct.py          a ComfyUI server used as if it were the worker: HTTP only, every decision by workflows/
    jobflow.py         submit / poll / deadline / Ctrl-C → cancel
    ledger.py          sqlite job ledger behind --idempotency-key
    recheck.py         the worker's diagnose answer judged against the local workflow registry
    commands/*.py      health, diagnose, generate, jobs, validate, bench: plain data in, data out
    render.py          human text (rich) or a versioned JSON envelope; reports.py writes report files
    config.py          flags over environment, read once; redact.py keeps the API key out of every output
    cli.py             `comfy-runpod`: one parser, one dispatcher; COMMANDS lists the subcommands
    ui/                `comfy-runpod ui`: the local ComfyUI editor behind a proxy whose Queue runs on the endpoint
    health.py diagnose.py generate.py jobs.py validate.py bench.py   the subcommands' arguments
                       (also runnable as `python client/<name>.py`)

Nothing here imports the runpod SDK or handler/ (a test checks the import graph).
"""
