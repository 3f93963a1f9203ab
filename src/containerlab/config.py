"""Names and paths the course uses, kept in one place.

The image tags follow COURSE.md ("Versions"): the maintained tags of the
official images, matched by the Debian 13 stand-ins built when no registry is
reachable (Debian 13 ships Python 3.13 and PostgreSQL 17).
"""

from __future__ import annotations

from pathlib import Path

#: Repository root (the folder holding ``_config.yml``).
ROOT: Path = Path(__file__).resolve().parents[2]

#: The slim Python base image every service Dockerfile starts from.
PYTHON_SLIM_IMAGE = "python:3.13-slim"
#: The full Python base image (compilers, headers), for size comparisons and builder stages.
PYTHON_FULL_IMAGE = "python:3.13"
#: The database image of the compose stack.
POSTGRES_IMAGE = "postgres:17"

#: Debian release the stand-ins are built from (Python 3.13, PostgreSQL 17).
DEBIAN_SUITE = "trixie"
#: Label put on every stand-in image; its value is the official tag it replaces.
STANDIN_LABEL = "org.containerlab.stand-in"
#: Label holding a digest of the stand-in's build inputs (rebuild when it changes).
INPUTS_LABEL = "org.containerlab.inputs"

DOCKER_DIR: Path = ROOT / "docker"
STANDINS_DIR: Path = DOCKER_DIR / "standins"
SERVICE_DIR: Path = DOCKER_DIR / "customer-value"
#: Scratch space inside the repository (root file systems, temporary contexts).
CACHE_DIR: Path = ROOT / ".cache"

#: Tag of the Chapter 12 model service image that the book builds.
SERVICE_IMAGE = "customer-value:1.0"

#: The host's CA bundle (Debian/Ubuntu path); copied into stand-ins so that
#: pip inside builds trusts what the host trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def isolated_environment() -> dict[str, str]:
    """Environment variables that keep Jupyter, IPython and matplotlib inside the project.

    Without them the book build and the notebooks write config and caches to the
    home folder (ENGINE.md). Values are absolute paths under ``.cache/``.

    Returns:
        Variable name to value; merge into ``os.environ`` or a subprocess's env.
        The folders are created.
    """
    cache = CACHE_DIR
    env = {
        "MPLCONFIGDIR": str(cache / "matplotlib"),
        "IPYTHONDIR": str(cache / "ipython"),
        "JUPYTER_CONFIG_DIR": str(cache / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(cache / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(cache / "jupyter" / "runtime"),
        "XDG_CACHE_HOME": str(cache / "xdg"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "UV_CACHE_DIR": str(cache / "uv"),
    }
    # IPython and Jupyter fall back to a temporary or home folder when these are missing.
    for folder in env.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env
