# syntax=docker/dockerfile:1
# The Firedrill services image: every service in one image, started as `python -m services.<name>`
# (the Nomad jobs set the command). Built by `make image` (scripts/cluster/build-image.sh).

ARG PYTHON_IMAGE=python:3.11.9-slim-bookworm

# --- build: resolve and compile dependencies into a virtualenv ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY pyproject.toml README.md ./
RUN mkdir -p services scripts && touch services/__init__.py scripts/__init__.py \
    && pip install --no-compile . \
    && pip uninstall -y firedrill
COPY services ./services
RUN pip install --no-deps --no-compile . \
    && python -m compileall -q /opt/venv/lib/python3.11/site-packages/services

# --- runtime: slim, non-root, nothing but the virtualenv ------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=dev
LABEL org.opencontainers.image.title="firedrill-services" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="Firedrill Python services (hello, response, incidents, metadata, rating, movie, auth)"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FIREDRILL_BIND_HOST=0.0.0.0 \
    FIREDRILL_STATE_DIR=/var/lib/firedrill
RUN groupadd --system --gid 10001 firedrill \
    && useradd --system --uid 10001 --gid firedrill --home-dir /var/lib/firedrill --create-home --shell /usr/sbin/nologin firedrill
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/firedrill
# Each job overrides the command with its service; hello is the default for `docker run`.
ENTRYPOINT ["python"]
CMD ["-m", "services.hello"]
