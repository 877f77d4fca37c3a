# One image for every PhotoChanger process: web, worker, the cleanup timer and one-off manage.py
# commands (docker/entrypoint.sh: web | worker | cron | release | manage …). compose.yaml runs it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=photochanger.settings \
    DATA_DIR=/var/lib/photochanger \
    DEBUG=false

RUN groupadd --system --gid 10001 photochanger \
    && useradd --system --uid 10001 --gid photochanger --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin photochanger

WORKDIR /app

# The dependencies, read from pyproject.toml alone, in a layer of their own: a code change does not
# reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
       > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The app itself, installed from pyproject.toml in place: templates/, locale/ and spec/ are read from
# /app, beside the packages.
COPY . .
RUN pip install --no-deps --editable . \
    && DEBUG=true python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /var/lib/photochanger/media \
    && chown -R photochanger:photochanger /var/lib/photochanger

USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
