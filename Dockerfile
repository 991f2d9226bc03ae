# strata image: build stage (CUDA devel + Debian/Ubuntu packages), slim runtime stage
# (CUDA runtime + the bundled non-system libraries), run as the non-root user strata (uid 10001).
#   docker build -t strata .
#   docker run --gpus all -p 8000:8000 strata serve --host 0.0.0.0 [--model /models/x]
# Settings also come from STRATA_<FLAG> variables (docker run -e STRATA_MODEL=/models/x ...);
# deploy/README.md has Compose, Kubernetes and load-balancer setups.
ARG CUDA_VERSION=13.0.0
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/install_deps.sh scripts/install_deps.sh
RUN ./scripts/install_deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN STRATA_BUILD_DIR=/build ./scripts/build.sh -DBUILD_TESTING=OFF -DSTRATA_CUDA_ARCHS=90a \
 && ./scripts/bundle.sh /opt/strata /build/bin/strata \
 && cp -r models /opt/strata/models

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04
# A fixed numeric uid/gid, so that volume permissions and Kubernetes' runAsUser can name it.
RUN groupadd --gid 10001 strata \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin strata
COPY --from=build /opt/strata /opt/strata
# GET /health without curl (this image has none): bash's /dev/tcp.
COPY --chmod=0755 deploy/healthcheck.sh /opt/strata/bin/strata-healthcheck
# Defaults as environment rather than CMD flags, so that STRATA_HOST / STRATA_MODEL given at
# `docker run -e` or in Compose / Kubernetes take effect (command-line flags win over the environment).
ENV LD_LIBRARY_PATH=/opt/strata/lib STRATA_HOST=0.0.0.0 STRATA_MODEL=/opt/strata/models/default
WORKDIR /opt/strata
# Numeric, so that Kubernetes' runAsNonRoot can verify it without a runAsUser.
USER 10001:10001
EXPOSE 8000 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=300s --retries=3 CMD ["/opt/strata/bin/strata-healthcheck"]
ENTRYPOINT ["/opt/strata/bin/strata"]
CMD ["serve"]
