# slowlab in a container: `slowlab serve` on port 8000 of every interface.
#
#   docker build -t slowlab .
#   docker run --rm -p 8000:8000 slowlab                    # the slow API
#   docker run --rm slowlab fetch --base-url http://HOST:8000 1 2 3
#
# This file has not been built by the project's CI: no image registry is reachable there. It is
# kept simple enough to check by reading, and deploy/kubernetes/ uses the image it describes.

# Build stage: the release binary. jemalloc needs a C compiler and make, which this image has.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin slowlab \
    && cp target/release/slowlab /usr/local/bin/slowlab

# Runtime stage: the binary, curl for the health check, and a user without privileges.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home slowlab
COPY --from=build /usr/local/bin/slowlab /usr/local/bin/slowlab
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz >/dev/null || exit 1
ENTRYPOINT ["slowlab"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
