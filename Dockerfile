# The image every kiko component runs in on Kubeflow Pipelines v2 / Vertex AI Pipelines
# (python pipeline/kubeflow_v2_runner.py --image REGISTRY/kiko:TAG). The stack pinned in
# constraints.txt on Python 3.10 (TFX 1.16 needs Python < 3.11), kiko installed at /opt/kiko
# (pipeline/configs.py IMAGE_KIKO_DIR: the compiled pipeline reads the curated schema there).
#
#   docker build -t REGISTRY/kiko:TAG . && docker push REGISTRY/kiko:TAG
FROM python:3.10.13-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

WORKDIR /opt/kiko

# Dependencies first, in a layer that changes only with the pins: setup.py alone finds no
# package yet, so this installs the whole pinned stack and an empty kiko.
COPY setup.py constraints.txt ./
RUN pip install "pip>=23" && pip install -c constraints.txt -e '.[kfp]'

# kiko itself (see .dockerignore); editable, so its modules and data files stay in /opt/kiko.
# The check: the kfp extra is installed and every curated schema the compiled pipeline may
# name is where it reads it. tests/test_dockerfile.py runs it against the checkout.
COPY . .
RUN pip install --no-deps -c constraints.txt -e '.[kfp]' \
    && python -c "import os, kfp, kiko.pipeline.configs as c; assert all(os.path.isfile(c.image_schema_path(u, m)) for u in (False, True) for m in (False, True))"
