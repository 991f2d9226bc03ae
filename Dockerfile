# strata image: build stage (CUDA devel + Debian/Ubuntu packages), slim runtime stage
# (CUDA runtime + the bundled non-system libraries).
#   docker build -t strata .
#   docker run --gpus all -p 8000:8000 strata serve --host 0.0.0.0 [--model /models/x]
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
COPY --from=build /opt/strata /opt/strata
ENV LD_LIBRARY_PATH=/opt/strata/lib
WORKDIR /opt/strata
EXPOSE 8000 50051
ENTRYPOINT ["/opt/strata/bin/strata"]
CMD ["serve", "--host", "0.0.0.0", "--model", "/opt/strata/models/default"]
