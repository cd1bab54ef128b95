# syntax=docker/dockerfile:1
# incident-bot: the service image. Build: docker build -t incident-bot:0.1.0 .
# Runtime only (no sandbox or validate extras); non-root; read-only root filesystem friendly
# (state lives in the database, scratch in /tmp and /var/lib/incident-bot).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# -- build: a virtual environment with the pinned dependencies and the bot's wheel ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/incident-bot
COPY deploy/docker/requirements.txt /tmp/requirements.txt
RUN /opt/incident-bot/bin/pip install --no-deps -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY playbooks ./playbooks
COPY integrations ./integrations
COPY sop ./sop
COPY deploy/prometheus/rules-fast.yml ./deploy/prometheus/rules-fast.yml
COPY deploy/rbac ./deploy/rbac
RUN /opt/incident-bot/bin/pip install 'setuptools>=77' wheel \
 && /opt/incident-bot/bin/pip wheel --no-deps --no-build-isolation . -w /dist \
 && /opt/incident-bot/bin/pip install --no-deps /dist/*.whl \
 && /opt/incident-bot/bin/pip uninstall -y setuptools wheel \
 && /opt/incident-bot/bin/pip check

# -- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="incident-bot" \
      org.opencontainers.image.description="ChatOps incident response held to the 1-5-10 clock" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 incident-bot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/incident-bot --shell /usr/sbin/nologin incident-bot \
 && mkdir -p /var/lib/incident-bot && chown 10001:10001 /var/lib/incident-bot
COPY --from=build /opt/incident-bot /opt/incident-bot
ENV PATH=/opt/incident-bot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INCIDENT_BOT_HOST=0.0.0.0 \
    INCIDENT_BOT_PORT=8080 \
    INCIDENT_BOT_LOG_FORMAT=json \
    INCIDENT_BOT_DATABASE_URL=sqlite:////var/lib/incident-bot/incident-bot.db
WORKDIR /var/lib/incident-bot
USER 10001:10001
EXPOSE 8080
# /healthz answers while the process serves; the orchestrator's readiness uses /readyz (the database)
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('INCIDENT_BOT_PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["incident-bot"]
# on 0.0.0.0 the bot needs INCIDENT_BOT_API_TOKEN (or _FILE) for /api/*, or --allow-unauthenticated-api
CMD ["serve"]
