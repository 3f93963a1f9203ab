# RIGHT: a build-time secret through a BuildKit secret mount.
# Build with: docker build --secret id=build_token,src=build_token.txt \
#               -f secret-mount.Dockerfile .
# The file appears at /run/secrets/build_token during this one RUN step
# only; it is written to no layer, and neither the history nor the config
# mentions it.
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE}

# required=true stops the build with a clear error when --secret was
# forgotten.
RUN --mount=type=secret,id=build_token,required=true \
    test -s /run/secrets/build_token \
    && echo "the build read $(wc -c < /run/secrets/build_token) bytes"

CMD ["python", "-c", "print('built with a token, and it stayed out')"]
