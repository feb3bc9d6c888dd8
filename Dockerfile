# One image for the three services; docker-compose.yml picks the service with `apihub serve NAME`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --uid 10001 apihub
USER apihub
ENTRYPOINT ["apihub"]
