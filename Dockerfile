# Gregor as a container image: a static (musl) binary alone in a `scratch` image, about 10 MB.
# Build with `make image` (tag gregor:dev). Configure with environment variables named after
# the broker settings (docs/container.md): KAFKA_ADVERTISED_LISTENERS or
# GREGOR_ADVERTISED_LISTENERS sets advertised.listeners.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev gcc g++ make
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
RUN cargo build --release --locked --bin gregor \
 && mkdir -p /out/data \
 && cp target/release/gregor /out/gregor

FROM scratch
COPY --from=build /out/gregor /gregor
# An unprivileged user owns the data directory (a volume: data outlives the container).
COPY --from=build --chown=65534:65534 /out/data /data
USER 65534:65534
# Every interface inside the container; clients are told the container's host name unless
# KAFKA_ADVERTISED_LISTENERS says otherwise (as with Kafka's own images).
ENV GREGOR_LISTENERS=PLAINTEXT://:9092 \
    GREGOR_HTTP_LISTEN=0.0.0.0:9644 \
    GREGOR_LOG_DIRS=/data
VOLUME /data
EXPOSE 9092 9644
HEALTHCHECK NONE
ENTRYPOINT ["/gregor", "serve"]
