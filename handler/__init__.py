"""The worker: a RunPod handler in front of a local ComfyUI (runs inside the image).

    worker.py       the RunPod entry: `handle(job)` parses the input (workflows.request) and answers
                    test / diagnose / generate; error_response() is the one failure shape
    runtime.py      the worker's long-lived state: settings, the pooled ComfyUI client, the event
                    stream, the registry, the cached /object_info, job bookkeeping
    state.py, supervisor.py, comfylog.py
                    the worker's state machine; starting, watching and restarting ComfyUI; its output
    health.py       `test`: a sub-second health ping (workflows.responses.TestResponse)
    diagnose.py     `diagnose`: disks, volume, models, packs, workflows judged by workflows.analysis
    generate.py     `generate`: the job pipeline (workflows.pipeline) at the worker's site — inputs in
                    ComfyUI's input dir, outputs read from disk and delivered as base64 or to a bucket
    facts.py        facts about disk and ComfyUI, gathered in one place for diagnose, generate and the
                    self-check: the model scan, ComfyUI's model lists, pack imports and commits, the
                    extra_model_paths.yaml check
    images.py, outputs.py, jobfiles.py
                    storing input images, describing/encoding/uploading outputs, removing a job's files
    selfcheck.py    the build-time (--static) and start-up (--live) self-check
    config.py       the environment, read once into Settings

May import workflows/ and comfyui_client/, never client/ (tests/test_layers.py).
"""
