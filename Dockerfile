# provisor's container image: docs/operations.md, "Installing and starting".
#   docker build -t provisor .
#   docker run -p 8000:8000 -v provisor-data:/var/lib/provisor provisor
# Two stages: the first builds the wheels (python-ldap is compiled against libldap and
# libsasl, whose headers only it has); the second installs them on a slim Python with only the
# runtime libraries, and runs provisor as an unprivileged user.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libldap2-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres,ldap]"

FROM ${PYTHON_IMAGE}
# Debian's security updates move these packages' versions: they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libldap-2.5-0 libsasl2-2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 provisor \
    && useradd --system --uid 10001 --gid provisor --home-dir /var/lib/provisor \
       --no-create-home --shell /usr/sbin/nologin provisor \
    && install -d -o provisor -g provisor -m 0700 /var/lib/provisor
# Only the wheels built above (--no-index): what runs is what was built.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "provisor[postgres,ldap]"
ENV PROVISOR_DATA_DIR=/var/lib/provisor \
    PROVISOR_PORT=8000 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/provisor
# The data folder: SQLite database, master key, tenants' files (PostgreSQL: the files and,
# without PROVISOR_SECRET_KEY(_FILE), the key).
VOLUME ["/var/lib/provisor"]
EXPOSE 8000
# Liveness only (the process answers); orchestrators route traffic on /health/ready
# (database, migrations, master key, a jobs runner). Plain HTTP: with PROVISOR_TLS_CERT set,
# override the check with an https:// URL.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PROVISOR_PORT', '8000') + '/health/live', timeout=4)"]
ENTRYPOINT ["provisor"]
CMD ["serve", "--host", "0.0.0.0"]
