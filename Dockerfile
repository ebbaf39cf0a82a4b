# fno-forecast service image.
#   CPU (default):  docker build -t fno-forecast .
#   CUDA torch:     docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t fno-forecast:cuda .
# Models and initial-state data mount as volumes:
#   docker run -p 8000:8000 -v $PWD/models:/models -v $PWD/data:/data fno-forecast \
#     fno-forecast serve --host 0.0.0.0 --model /models/my-model --data /data/init.nc
# The install runs scripts/install.sh, the same recipe the README and CI use.

FROM python:3.11-slim AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG FNO_EXTRAS=grib
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/ scripts/
COPY fno_forecast/ fno_forecast/
COPY service/ service/
RUN TORCH_INDEX_URL="${TORCH_INDEX_URL}" FNO_EXTRAS="${FNO_EXTRAS}" FNO_EDITABLE=0 \
    scripts/install.sh /opt/venv \
    && find /opt/venv -name "__pycache__" -type d -prune -exec rm -rf {} +

FROM python:3.11-slim
RUN groupadd --gid 10001 fno && useradd --create-home --uid 10001 --gid 10001 fno \
    && mkdir -p /models /data /var/lib/fno-forecast \
    && chown fno:fno /models /data /var/lib/fno-forecast
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FNO_STORE_DIR=/var/lib/fno-forecast \
    FNO_MODELS_DIR=/models
USER 10001:10001
WORKDIR /home/fno
VOLUME ["/models", "/data", "/var/lib/fno-forecast"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
CMD ["fno-forecast", "serve", "--host", "0.0.0.0", "--port", "8000"]
