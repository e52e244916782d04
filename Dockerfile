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
CMD ["gridcoord", "run", "--config", "/etc/gridcoord/wolfsburg.yaml"]
