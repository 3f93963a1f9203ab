"""Print this environment's "tower" as JSON: OS, kernel, C library, Python, key packages.

Self-contained on purpose (standard library only): :mod:`containerlab.tower`
runs this file's source inside a container with ``python -c``.
"""

import json
import platform
from importlib import metadata

PACKAGES = ("numpy", "pandas", "scikit-learn")


def probe() -> dict[str, str]:
    """Return the tower rows, bottom-up, as name to version text."""
    try:
        os_name = platform.freedesktop_os_release().get("PRETTY_NAME", "unknown")
    except OSError:
        os_name = f"{platform.system()} (no /etc/os-release)"
    libc_name, libc_version = platform.libc_ver()
    rows = {
        "operating system": os_name,
        "kernel": f"{platform.system()} {platform.release()}",
        "C library": f"{libc_name} {libc_version}".strip() or "unknown",
        "Python": platform.python_version(),
    }
    for name in PACKAGES:
        try:
            rows[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            rows[name] = "not installed"
    return rows


if __name__ == "__main__":
    print(json.dumps(probe()))
