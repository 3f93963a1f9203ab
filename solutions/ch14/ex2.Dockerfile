### BEGIN SOLUTION
ARG BASE_IMAGE=python:3.13-slim

FROM ${BASE_IMAGE} AS builder
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip uninstall --yes pip \
    && find /opt/venv -depth -type d -name tests -path "*/site-packages/*" -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY src/ src/
USER 10001:10001
EXPOSE 80
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1/health', timeout=2)"]
CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "80"]
### END SOLUTION
