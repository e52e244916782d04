FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gridcoord ./gridcoord
COPY adapters ./adapters
COPY optimizer ./optimizer
RUN pip install --no-cache-dir . && useradd --system gridcoord && mkdir -p /var/lib/gridcoord \
    && chown gridcoord /var/lib/gridcoord
USER gridcoord
STOPSIGNAL SIGTERM
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=4)"
CMD ["gridcoord", "run", "--config", "/etc/gridcoord/gridcoord.yaml"]
