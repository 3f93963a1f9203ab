# WRONG ON PURPOSE: a secret copied into one layer, deleted in a later one.
# The deletion only hides the file; the earlier layer still holds its bytes.
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE}

WORKDIR /app

# This layer stores .env, token and all.
COPY .env .
# A build step that needs the token (standing in for a download from a
# private package index).
RUN grep -q '^DEMO_API_TOKEN=' .env && echo "the build found its token"
# This layer only records "the file is gone"; it cannot reach into the
# layer below it.
RUN rm .env

CMD ["python", "-c", "print('no .env in here... or is there?')"]
