# The worker image (docs/image.md). Included by the Makefile.
#   make image        production build (CUDA base, ComfyUI from git, packs from the registry)
#   make image-test   build for this machine and run it for real (tests/image/harness.py)
#   make lint-docker  hadolint + shellcheck on every shell script
#   make image-clean  remove the image test's Docker data root (layers, build cache, base tarball)
IMAGE_NAME ?= comfy-runpod-worker
IMAGE_TAG ?= latest
DOCKER ?= docker
# Extra docker build flags, e.g. IMAGE_BUILD_ARGS="--build-arg BAKE_MODELS=z_image_turbo_denrisi"
IMAGE_BUILD_ARGS ?=
# An extra CA bundle trusted during the build only (TLS-intercepting proxies), e.g. /etc/ssl/certs/ca-certificates.crt
IMAGE_CA_BUNDLE ?=
IMAGE_TEST_CACHE ?= $(HOME)/.cache/comfy-runpod/docker

.PHONY: image image-test lint-docker image-clean

image:
	DOCKER_BUILDKIT=1 $(DOCKER) build -t $(IMAGE_NAME):$(IMAGE_TAG) \
	  $(if $(IMAGE_CA_BUNDLE),--secret id=ca$(comma)src=$(IMAGE_CA_BUNDLE)) $(IMAGE_BUILD_ARGS) .

image-test: venv
	@$(PY) -m tests.image.harness

lint-docker: venv
	@$(VENV)/bin/hadolint Dockerfile
	@git ls-files -co --exclude-standard -z -- '*.sh' ':!:.venv/**' | xargs -0 -r $(VENV)/bin/shellcheck
	@$(VENV)/bin/shellcheck .ci/run
	@echo "lint-docker: hadolint and shellcheck clean"

image-clean:
	rm -rf $(IMAGE_TEST_CACHE)

comma := ,
