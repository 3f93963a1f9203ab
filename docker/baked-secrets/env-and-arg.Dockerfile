# WRONG ON PURPOSE: a secret passed as a build argument and kept with ENV.
# Build with: docker build --build-arg BUILD_TOKEN=... \
#               -f env-and-arg.Dockerfile .
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE}

# A RUN step that uses a build argument has the argument's value written
# into the image history, next to the command. (hadolint warns about this
# line and the ENV below, rule DL3064; it is ignored only here, where the
# mistake is the lesson.)
# hadolint ignore=DL3064
ARG BUILD_TOKEN
RUN test -n "$BUILD_TOKEN" \
    && echo "the build got a token of ${#BUILD_TOKEN} characters"

# ENV stores the value in the image config: every container starts with
# it, and `docker image inspect` shows it to anyone who has the image.
# hadolint ignore=DL3064
ENV API_TOKEN=${BUILD_TOKEN}

CMD ["python", "-c", "print('a token travels with this image')"]
