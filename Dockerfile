# One image for the three Dagster processes of docker-compose.yml: the user-code gRPC server
# (the default command), dagster-webserver and dagster-daemon (compose overrides the command).
# The Python minor version the test suite runs on (CI: 3.11).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project, installed the way the README installs it: a virtual environment and `pip install`
# of this checkout (not editable here: the image holds a copy). constraints.txt holds the versions
# the test suite last passed with, so a rebuild gets those, not whatever is newest in pyproject's
# ranges (README, "Deploying": how to refresh it).
WORKDIR /opt/skinseg/src
COPY pyproject.toml README.md constraints.txt ./
COPY skinseg_assets ./skinseg_assets
RUN python3 -m venv /opt/skinseg/venv \
 && /opt/skinseg/venv/bin/pip install -c constraints.txt .
ENV PATH=/opt/skinseg/venv/bin:$PATH

# The instance (dagster.yaml: Postgres from DAGSTER_PG_*) and the workspace (the gRPC server).
# SKINSEG_DATA_DIR holds the DuckDB file; compose mounts a volume there.
ENV DAGSTER_HOME=/opt/dagster/dagster_home \
    SKINSEG_DATA_DIR=/var/lib/skinseg \
    MPLCONFIGDIR=/tmp/matplotlib
COPY dagster.yaml workspace.yaml /opt/dagster/dagster_home/
# Dagster writes logs and step output under DAGSTER_HOME; the two config files stay root's.
RUN useradd --system --uid 10001 --home-dir /opt/skinseg --shell /usr/sbin/nologin skinseg \
 && mkdir -p /var/lib/skinseg /opt/dagster/dagster_home/storage \
 && chown skinseg:skinseg /var/lib/skinseg /opt/dagster/dagster_home /opt/dagster/dagster_home/storage
WORKDIR /opt/dagster/dagster_home
USER skinseg

# The code location over gRPC; runs are launched by this server as its subprocesses.
EXPOSE 4000
CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "4000", \
     "--module-name", "skinseg_assets", "--location-name", "skinseg", \
     "--use-python-environment-entry-point"]
