"""A leaky custom node pack, for the security probes only: it prints an environment variable, raises
with it and returns it as a text output — what a careless or hostile pack could do with a secret."""

import os


class RPSecEnvEcho:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "name": ("STRING", {"default": "RUNPOD_API_KEY"}),
                "mode": (["text", "raise"],),
            }
        }

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "rp_test"

    def run(self, name, mode):
        value = os.environ.get(name, "<unset>")
        print(f"RPSecEnvEcho {name}={value}", flush=True)
        if mode == "raise":
            raise RuntimeError(f"leaking {name}: {value}")
        return {"ui": {"text": [f"{name}={value}"]}}


NODE_CLASS_MAPPINGS = {"RPSecEnvEcho": RPSecEnvEcho}
