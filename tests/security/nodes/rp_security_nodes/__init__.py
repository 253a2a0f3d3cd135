"""A leaky custom node pack, for the security probes only: it prints an environment variable (or its
whole environment: mode "environ"), raises with it and returns it as a text output — what a careless or
hostile pack could do with a secret."""

import json
import os


class RPSecEnvEcho:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "name": ("STRING", {"default": "RUNPOD_API_KEY"}),
                "mode": (["text", "raise", "environ"],),
            }
        }

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "rp_test"

    def run(self, name, mode):
        if mode == "environ":
            dump = json.dumps(dict(os.environ), sort_keys=True)
            print(f"RPSecEnvEcho environ {dump}", flush=True)
            return {"ui": {"text": [dump]}}
        value = os.environ.get(name, "<unset>")
        print(f"RPSecEnvEcho {name}={value}", flush=True)
        if mode == "raise":
            raise RuntimeError(f"leaking {name}: {value}")
        return {"ui": {"text": [f"{name}={value}"]}}


NODE_CLASS_MAPPINGS = {"RPSecEnvEcho": RPSecEnvEcho}
