# syntax=docker/dockerfile:1
# One image for web, workers and beat (compose.yaml). llama.cpp is compiled here, with flags
# chosen at build time:
#   CPU (portable, the default):  docker compose build   with GEMMA_CMAKE_ARGS unset in .env
#   NVIDIA GPU:                   CMAKE_ARGS="-DGGML_CUDA=on" on the CUDA images (compose's
#                                 defaults; see docs/operations.md)
# Both images must be Ubuntu 24.04 based: the venv built in the first is copied to the second.
ARG BUILD_IMAGE=ubuntu:24.04
ARG RUNTIME_IMAGE=ubuntu:24.04

FROM ${BUILD_IMAGE} AS build
# Never -march=native: the image runs on other CPUs than the one that built it (GUIDE §3).
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
ARG LLAMA_CPP_VERSION=0.3.36
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev build-essential cmake git ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CUDA build images carry libcuda only as a link stub; the host driver provides the real one.
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ -d /usr/local/cuda/lib64/stubs ]; then \
        export LIBRARY_PATH=/usr/local/cuda/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}; fi \
    && CMAKE_ARGS="$CMAKE_ARGS" pip wheel --no-deps --no-cache-dir \
        "llama-cpp-python==${LLAMA_CPP_VERSION}" -w /wheels
WORKDIR /app
COPY . /app
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --no-index --no-deps /wheels/llama_cpp_python-*.whl \
    && pip install --find-links /wheels -e /app

FROM ${RUNTIME_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
# libgomp: llama.cpp's CPU threads; pango: WeasyPrint's PDF reports; the venv's python is a
# link to this python3.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libgomp1 ca-certificates \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 gemma \
    && mkdir -p /data/var /data/media \
    && chown gemma:gemma /data/var /data/media
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=gemma_web.settings \
    GEMMA_VAR_DIR=/data/var \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles
# Static files belong to the image (whitenoise serves them); a throwaway key is enough here.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0
USER gemma
EXPOSE 8000
CMD ["uvicorn", "gemma_web.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
