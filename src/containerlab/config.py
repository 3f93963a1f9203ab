"""Names and paths the course uses, kept in one place.

The image tags follow COURSE.md ("Versions"): the maintained tags of the
official images, matched by the Debian 13 stand-ins built when no registry is
reachable (Debian 13 ships Python 3.13 and PostgreSQL 17).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
from pathlib import Path

#: Repository root (the folder holding ``_config.yml``).
ROOT: Path = Path(__file__).resolve().parents[2]

#: The slim Python base image every service Dockerfile starts from.
PYTHON_SLIM_IMAGE = "python:3.13-slim"
#: The full Python base image (compilers, headers), for size comparisons and builder stages.
PYTHON_FULL_IMAGE = "python:3.13"
#: The database image of the compose stack.
POSTGRES_IMAGE = "postgres:17"

#: The oldest Docker Engine the course supports (major version): the first one it is tested on
#: (Debian 13's 26.1). Engine 23 made BuildKit the default builder and 25 made ``docker save`` write
#: the OCI layout; 26 is what the course's own scripts install. ``containerlab doctor`` checks it.
MIN_ENGINE_MAJOR = 26

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

def instance_suffix(*, user: str | None = None, uid: int | None = None, root: Path | None = None,
                    override: str | None = None) -> str:
    """A short name for this user and this clone, e.g. ``"alice-3fa2c1"``, unique on a shared engine.

    JupyterHub users who share one Docker host, and two clones that build the book
    on one machine, would otherwise overwrite each other's images (``cl-ex-ex1``),
    remove each other's containers and compose stacks, and fight over host ports.
    The suffix is the user's name (``JUPYTERHUB_USER``, else the login name, else the
    uid), cut to 16 characters, and six hex digits of a SHA-256 of the user, the uid and
    the clone's path. ``CONTAINERLAB_INSTANCE`` sets it outright. It is valid in image
    tags, container names and compose project names (lower case letters, digits, ``-``).

    Args:
        user, uid, root, override: what to use instead of this process's values (tests).

    Returns:
        ``<user>-<6 hex digits>``, or the cleaned override.
    """
    override = os.environ.get("CONTAINERLAB_INSTANCE", "") if override is None else override
    if override.strip():
        return _slug(override, 40) or "x"
    uid = os.getuid() if uid is None and hasattr(os, "getuid") else (uid or 0)
    if user is None:
        user = os.environ.get("JUPYTERHUB_USER", "")
        if not user:
            try:
                user = getpass.getuser()
            except (KeyError, OSError):  # no name for this uid (a container without a passwd entry)
                user = ""
    root = ROOT if root is None else root
    digest = hashlib.sha256(f"{user}\0{uid}\0{Path(root).resolve()}".encode()).hexdigest()[:6]
    return f"{_slug(user, 16) or f'uid{uid}'}-{digest}"


def _slug(text: str, length: int) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length].strip("-")


#: This user's and clone's suffix on names shared through the engine (computed once per process).
INSTANCE: str = instance_suffix()


def instance_port(port: int) -> int:
    """The host port this clone publishes where the course's text says ``port`` (8000-8099).

    Each instance gets a block of 100 ports from 20000 up, chosen by its suffix's hash,
    so that two clones on one machine publish different ports; ``port`` keeps its last
    two digits (8080 becomes e.g. 33780).
    """
    block = int(hashlib.sha256(INSTANCE.encode()).hexdigest()[:8], 16) % 400
    return 20000 + block * 100 + port % 100


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
