# syntax=docker/dockerfile:1
#
# relay's image: `docker build -t relay .`
#
# The base is pinned by its full version tag. Pin it by digest too where you build
# (python:3.11.14-slim-bookworm@sha256:...): no registry could be asked for the digest
# when this file was written, and a guessed one would only break the build.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Build stage: install relay and its dependencies into a virtualenv that the runtime stage
# copies whole. Every dependency ships manylinux wheels (confluent-kafka bundles
# librdkafka), so no compiler is needed here either.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1
RUN python -m venv /opt/relay
WORKDIR /src
# Dependencies first, so editing relay's code does not re-download them: exactly the
# versions and wheels in requirements.lock (`make lock` regenerates it from pyproject.toml).
COPY requirements.lock ./
RUN /opt/relay/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r requirements.lock
COPY pyproject.toml README.md ./
COPY relay ./relay
# --no-deps: the lock already installed them; pip check then fails the build if the lock
# no longer satisfies pyproject.toml. The import check runs from / in isolated mode (-I), so
# only the installed package can answer it, never the source tree in /src. The emulator
# (relay/emulator, `relay emulator`) stays in the package: compose's demo profile runs it
# from this same image, it adds no dependency, and it only runs when asked to.
RUN /opt/relay/bin/pip install --no-deps . \
    && /opt/relay/bin/pip check \
    # Only what runs relay stays: no pip or setuptools in the final image.
    && /opt/relay/bin/pip uninstall --yes pip setuptools \
    && cd / \
    && /opt/relay/bin/python -I -c "import relay, relay.cli, confluent_kafka, uvicorn; \
assert relay.__file__.startswith('/opt/relay/'), relay.__file__; print('relay', relay.__version__)"

# Runtime stage: the interpreter, the virtualenv and the default configuration.
FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it and volume permissions
# (fsGroup, the compose volumes below) can name it.
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid relay --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin relay \
    # Directories relay writes or is given: the spool, mounted secrets. Owned by relay so a
    # fresh named volume mounted there inherits that owner.
    && install -d -o relay -g relay -m 0700 /var/lib/relay /var/lib/relay/spool \
        /etc/relay/secrets
COPY --from=build /opt/relay /opt/relay
COPY config/relay.toml config/webhooks.toml /etc/relay/
ENV PATH=/opt/relay/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELAY_CONFIG=/etc/relay/relay.toml \
    RELAY_WEBHOOKS_CONFIG=/etc/relay/webhooks.toml
# No RELAY_<SECTION>__<KEY> defaults here: the environment overrides the config file, so
# one set in the image would shadow every relay.toml. The worker count comes from the
# environment at run time (docker run -e RELAY_SERVER__WORKERS=4), else from relay.toml.
USER 10001:10001
WORKDIR /var/lib/relay
# 8080: intake (UltraCart). 9090: admin (/metrics, /healthz, /readyz), keep it internal.
EXPOSE 8080 9090
# Liveness on the admin port (RELAY_SERVER__ADMIN_PORT if overridden). Python's urllib, as
# the slim image has no curl and adding one would widen the image for a probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RELAY_SERVER__ADMIN_PORT', '9090'), timeout=2)"]
# relay is PID 1 and handles SIGTERM itself: it drains in-flight deliveries within
# [server] shutdown_grace_seconds (25 s by default) before exiting.
STOPSIGNAL SIGTERM
ENTRYPOINT ["relay"]
CMD ["serve", "--config", "/etc/relay/relay.toml"]
