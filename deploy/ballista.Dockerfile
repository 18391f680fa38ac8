# Ballista's scheduler and executor, the versions hedui is built against (55.0, on DataFusion
# 55.2), from crates.io. Both read the lake on object storage with the standard AWS_* settings.
#   docker build -f deploy/ballista.Dockerfile -t hedui-ballista .
FROM rust:1.95-bookworm AS build
RUN cargo install --locked --version 55.0.0 ballista-scheduler ballista-executor

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/ballista ballista
COPY --from=build /usr/local/cargo/bin/ballista-scheduler /usr/local/cargo/bin/ballista-executor /usr/local/bin/
USER ballista
WORKDIR /var/lib/ballista
