# Image for every engine service (web, worker, beat, one-shot `umkm init`); see
# docker-compose.yml. Build: docker build -t umkm-tts .
FROM python:3.11-slim

# PYTHONPATH: Alembic migrations, templates/ and campaigns/ live next to the packages,
# not inside them, so the code is imported from this tree where those paths resolve
# (pip still installs the dependencies and the `umkm` command).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var \
    PYTHONPATH=/app

WORKDIR /app

# Sisimai (Perl) reads bounces of every MTA layout; engine/engagement/sisimai_bridge.py
# talks to it through scripts/sisimai_bridge.pl (without it the Python fallback is used).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsisimai-perl \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir -p engine channels workers web \
    && touch engine/__init__.py channels/__init__.py workers/__init__.py web/__init__.py \
    && pip install . \
    && pip uninstall -y umkm-tts \
    && rm -rf engine channels workers web build *.egg-info

COPY . .
RUN pip install --no-deps . \
    && rm -rf build *.egg-info \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin umkm \
    && mkdir -p /app/var \
    && chown umkm:umkm /app/var

USER umkm
EXPOSE 8000
VOLUME ["/app/var"]

CMD ["uvicorn", "web.app:app", "--host", "0.0.0.0", "--port", "8000"]
