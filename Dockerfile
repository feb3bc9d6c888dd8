# One image for the three services; docker-compose.yml picks the service with `apihub serve NAME`.
# Only what the COPY lines copy is installed: the runtime package services/, no synthetic/ (the demo), benchmarks/ or
# tests/, no dev or bench extra (`apihub up` runs without the demo; `dev demo-files`, `model train` and `bench` say they
# need a source checkout). tests/test_image.py (in `make test`, no Docker needed) copies exactly these COPY paths, pip
# installs them into a fresh virtualenv and, from outside the repository, checks that `apihub --help` and the commands'
# --help, every module's import, an offline `apihub screen` on the packaged data and `apihub up` against the test
# broker run without a traceback.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 apihub \
    && mkdir -p /var/lib/apihub && chown apihub /var/lib/apihub
USER apihub
ENTRYPOINT ["apihub"]
