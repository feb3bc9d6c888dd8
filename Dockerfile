# One image for the three services; docker-compose.yml picks the service with `apihub serve NAME`.
# Only what the COPY lines copy is installed: no benchmarks/ or tests/, no dev extra (`apihub bench` says it needs a
# source checkout). tests/test_image.py (in `make test`, no Docker needed) copies exactly these COPY paths, pip installs
# them into a fresh virtualenv and, from outside the repository, checks that `apihub --help`, `serve`/`up`/`topics`
# --help, the service modules' imports and an offline `apihub screen` on the packaged data run without a traceback.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 apihub
USER apihub
ENTRYPOINT ["apihub"]
