"""The pure core both halves import (the worker in handler/, the laptop client in client/).

    pipeline.py     the one generate-job pipeline (resolve → store inputs → patch → judge → run →
                    collect → deliver) over a JobSite protocol; the worker and direct mode each supply one
    request.py      the job input contract: JobInput (as sent), parse_request → typed requests
    responses.py    the `test`, `diagnose` and `generate` answers, typed once
    errors.py, findings.py
                    the one table of error codes and of finding codes, each with a fix
    analysis.py, judge.py, model_tree.py, startup_log.py, volume_index.py
                    judging a workflow, a model tree, ComfyUI's start-up log, a volume against facts
    failures.py     ComfyUI's refusals and node errors as job errors (read by their `kind`)
    timing.py       the laps of a job's `timings`
    resolve.py, ui_convert.py, patch.py, parameters.py, outputs.py, images.py
                    choosing and converting a workflow, patching a job into it, classifying outputs
    registry.py (+ registry/), models.py, compat.py, policy.py, paths.py, secrets.py, draft.py, deploy.py
                    the workflow registry, model folders, response formats, the job policy, path
                    confinement, secret masking, registry drafts, deploy plans

No I/O beyond the registry loader; imports none of handler/, client/, comfyui_client/
(tests/test_layers.py), so `import workflows.failures` needs no HTTP or WebSocket library.
"""
