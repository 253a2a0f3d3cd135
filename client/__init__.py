"""The laptop / CI half: talk to a deployment over HTTP and tell, in seconds, whether it works.

A command runs through four rooms: cli → parsers → commands, and render shows what they return. Commands
never import cli, parsers or render; nothing imports cli but the launchers (a test checks the graph):

    cli.py             `comfy-runpod`: the one parser and dispatcher, the error → exit-code boundary;
                       COMMANDS names each subcommand's parser module (loaded by name, never imported back)
    parsers/           one module per subcommand: its flags (the only argparse) and the wiring from them to
                       a command; parsers/shared.py: the common flags, flags → settings, backend, registry
    commands/          health, diagnose, generate, jobs, validate (validate_entry: an entry's own suite),
                       bench, workflow, volume, report:
                       plain data in, data out (no argparse, no printing)
    render/            everything shown: the Renderer (rich text or the versioned JSON envelope on stdout,
                       progress on stderr), each command's text, the report files (JSON, Markdown, JUnit, HTML)

What the commands stand on:

    runpod_api.py      RunPod's endpoint API (cloud, the SDK's local dev API): the only RunPod network code
    direct.py          a ComfyUI server used as if it were the worker: HTTP only, every decision by workflows/
    jobflow.py         submit / poll / deadline / Ctrl-C → cancel, for either backend
    s3/                a network volume over RunPod's S3 API: adapter.py (boto3 calls, listing),
                       transfer.py (the resumable multipart upload engine of `volume push`)
    recheck.py         the worker's diagnose answer judged against the local workflow registry
    workflow_files.py  a workflow file in the API or the editor's format; media.py, saving.py: outputs
    ledger.py, history.py, sqlite_db.py   the local job ledger (--idempotency-key) and run history
    config.py          flags over environment, read once (nothing else reads os.environ)
    errors.py          every error the client raises, with its code, fix and exit code
    redact.py          keeps the API key and S3 keys out of every output
    ui/                `comfy-runpod ui`: the local ComfyUI editor behind a proxy whose Queue runs on the endpoint
                       (its parser is parsers/ui.py; no launcher script: the name is the package's)

    health.py diagnose.py generate.py jobs.py validate.py bench.py workflow.py volume.py report.py
                       launchers only: `python client/<name>.py ARGS` = `comfy-runpod <name> ARGS` from a clone

Nothing here imports the runpod SDK or handler/.
"""
