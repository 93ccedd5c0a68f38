# Open Lab CRM: one image for the web app, the RQ worker and the dispatcher (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=wsgi:app \
    CRM_INSTANCE_DIR=/app/instance

# Node and npm only install the DSFR, which Flask serves from node_modules/@gouvfr/dsfr.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
    && test -d node_modules/@gouvfr/dsfr/dist

# The app finds templates/, static/, migrations/ and node_modules/ next to crm/:
# install the package in editable mode so that it runs from /app.
COPY pyproject.toml wsgi.py ./
COPY crm/ crm/
COPY workers/ workers/
COPY migrations/ migrations/
COPY templates/ templates/
COPY static/ static/
RUN pip install -e . \
    && useradd --system --home-dir /app --no-create-home crm \
    && mkdir -p /app/instance \
    && chown crm /app/instance

USER crm
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "wsgi:app"]
