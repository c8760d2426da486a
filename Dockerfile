# syntax=docker/dockerfile:1
#
# One image for predict, built once and deployed to either target:
# - on AWS Lambda (PackageType: Image) the binary sees AWS_LAMBDA_RUNTIME_API and serves the
#   Lambda runtime API, behind the same HTTP API integration as the zip package;
# - anywhere else (ECS, Kubernetes, `docker run`) it serves HTTP on HOST:PORT.
# The model is not baked in: predict loads the registered version from the lake at start-up
# (LAKE_BUCKET, MODEL_NAME, MODEL_VERSION, optional SHADOW_MODEL_VERSION; AWS credentials and
# region from the usual variables or the task role).
#
#   docker build -t lambda-mlops-predict .
#   docker run --rm -p 8080:8080 -e AWS_REGION -e LAKE_BUCKET -e MODEL_NAME=penguins \
#     -e MODEL_VERSION=1 -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY lambda-mlops-predict
#
# Lambda runs single-architecture images only: build with --platform linux/arm64 (or amd64)
# to match the function's Architectures.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# Caches keep the registry and the build between image builds on the same builder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p predict \
    && install -D -m 0755 target/release/predict /out/predict

# glibc and CA certificates, no shell, non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/predict /usr/local/bin/predict
ENV HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080
# The distroless image's nonroot user.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/predict"]
