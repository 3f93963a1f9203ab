# The grader's image for shards on a cluster (deploy/kubernetes): the course's
# package and the docker command line, talking to an engine outside the image
# (DOCKER_HOST). Built from the repository root:
#   docker buildx build -f deploy/grader.dockerfile -t containerlab-grader:1.0 .
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE}

# docker-cli: the grader runs `docker buildx build` and `docker builder prune`;
# docker-buildx: the BuildKit plugin those builds use (Debian 13 packages).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        docker-cli \
        docker-buildx \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /course
COPY requirements/course.lock requirements/course.lock
RUN pip install --no-cache-dir -r requirements/course.lock
COPY pyproject.toml README.md ./
COPY src src
COPY solutions solutions
COPY exercises exercises
COPY docker docker
COPY nbgrader_config.py ./
RUN pip install --no-cache-dir --no-deps -e . \
    && useradd --create-home --uid 10001 grader \
    && mkdir -p /course/.cache \
    && chown grader /course/.cache
USER 10001
ENTRYPOINT ["containerlab"]
CMD ["--help"]
