# aimlapi-mock in a container: docker build -t aimlapi-mock . && docker run --rm -p 127.0.0.1:8000:8000 aimlapi-mock
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Installed from the source tree; the sources are not kept in the image.
COPY pyproject.toml README.md /tmp/aimlapi-mock/
COPY mock_server /tmp/aimlapi-mock/mock_server
COPY fixtures/specs /tmp/aimlapi-mock/fixtures/specs
RUN pip install /tmp/aimlapi-mock && rm -rf /tmp/aimlapi-mock \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin aimlapi

USER aimlapi
WORKDIR /home/aimlapi

# Reachable through the published port; publish it on the host's loopback (-p 127.0.0.1:8000:8000).
ENV AIMLAPI_MOCK_HOST=0.0.0.0 \
    AIMLAPI_MOCK_PORT=8000
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/__mock/health' % os.environ.get('AIMLAPI_MOCK_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"]

ENTRYPOINT ["aimlapi-mock"]
CMD ["serve"]
