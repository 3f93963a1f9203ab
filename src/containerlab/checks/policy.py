"""The grader's security rules for what a student's container may ask for, shared by exercises 3 and 6.

A submission's container runs in the grading sandbox; a run command (exercise 3)
or a compose file (exercise 6) that asks for what would weaken it is refused,
with the same words in both: privileged mode, added capabilities, host devices
and GPUs, a changed seccomp/AppArmor confinement, the host's (or another
container's) namespaces, another cgroup parent, another container's volumes, the
Docker socket, and bind mounts from outside the exercise folder. Refusals say
that they are the grader's rule, not Docker's.

Exercise 3 judges a created container's configuration as the engine reports it
(:func:`judge_container`, from ``docker container inspect``); exercise 6 judges
compose's normalised model (:func:`.composefile.refuse_unsafe`) with
:func:`security_rule`, :func:`weakens` and :func:`inside` from here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["RunCommandProblem", "SecurityRule", "SECURITY_RULES", "security_rule", "weakens", "inside", "shown",
           "judge_container"]


class RunCommandProblem(ValueError):
    """The run command cannot be used as written; the message says what is wrong and what to write."""


class SecurityRule(RunCommandProblem):
    """The run command asks for something the grader's sandbox refuses (not a Docker error)."""


#: What each refused ``docker run`` option would open, for the message (the grader's rule, not Docker's).
SECURITY_RULES = {
    "privileged": "it gives the container every capability and the host's devices",
    "cap-add": "it gives the container Linux capabilities beyond Docker's default set",
    "device": "it hands a host device to the container",
    "device-cgroup-rule": "it lets the container use host devices",
    "gpus": "it hands the host's GPUs to the container",
    "security-opt": "it changes the container's seccomp, AppArmor or SELinux confinement",
    "use-api-socket": "it mounts the Docker engine's socket, which controls the whole machine",
    "volumes-from": "it mounts the volumes of another container, from outside your exercise folder",
    "cgroup-parent": "it moves the container out of the sandbox's resource limits",
    "network": "it puts the container in the host's (or another container's) network namespace",
    "net": "it puts the container in the host's (or another container's) network namespace",
    "pid": "it lets the container see the host's (or another container's) processes",
    "ipc": "it shares the host's (or another container's) shared memory with the container",
    "uts": "it shares the host's host name namespace with the container",
    "userns": "it turns off user-namespace remapping for the container",
    "cgroupns": "it puts the container in the host's cgroup namespace",
}
_HARDENING = {"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
_SOCKETS = ("docker.sock", "containerd.sock", "podman.sock")
_SECURITY = ("Security rule of the grader (not a Docker error): {what}, so the check does not start it "
             "({why}). Leave it out: the service does not need it.")


def security_rule(what: str, option: str, value: str = "") -> SecurityRule:
    """The grader's refusal of one option that would weaken the sandbox, worded the same for every exercise.

    Args:
        what: who asks for it and how, e.g. "the command asks for `--privileged`"
            or "service api asks for `privileged: true`".
        option: the ``docker run`` option it amounts to, a key of :data:`SECURITY_RULES` (its reason
            is given).
        value: the option's value (``host``, ``container:NAME``), to word the reason.

    Returns:
        The exception to raise (its message says what was asked, why it is refused, and to leave it out).
    """
    why = SECURITY_RULES[option]
    if value == "host":
        why = why.replace(" (or another container's)", "")
    elif value.startswith(("container:", "service:")):
        why = why.replace("the host's (or another container's)", "another container's")
    return SecurityRule(_SECURITY.format(what=what, why=why))


def weakens(name: str, value: str) -> bool:
    """Whether ``docker run --NAME=VALUE`` (``NAME`` a key of :data:`SECURITY_RULES`) weakens the sandbox.

    ``--privileged=false``, ``--security-opt no-new-privileges`` or ``--network mynet`` do not;
    ``--network host`` and every capability or device do.
    """
    if name in ("privileged", "use-api-socket"):
        return value == "true"
    if name == "security-opt":
        return value not in _HARDENING
    if name in ("network", "net", "pid", "ipc"):
        return value == "host" or value.startswith("container:")
    if name in ("uts", "userns", "cgroupns"):
        return value == "host"
    return True


def shown(text: str, folder: Path) -> str:
    """``text`` with the exercise folder written as ``$PWD`` (no host paths in feedback)."""
    return text.replace(str(folder), "$PWD")


def inside(folder: Path, path: str, *, what: str = "A mount", who: str = "the command",
           instead: str = "the data folder is service/data") -> Path:
    """Resolve ``path`` from ``folder`` and refuse the Docker socket or anything outside ``folder``.

    Args:
        folder: the exercise folder (absolute, resolved).
        path: the mount source: absolute, or relative to ``folder``.
        what: what has the path, for the message about an empty one.
        who: who asks for the mount, for the refusal ("the command", "service api").
        instead: what to mount instead, completing "Mount only what is next to this notebook: ...".

    Returns:
        The resolved path (links followed).

    Raises:
        SecurityRule: the path is the Docker socket or leads outside the folder (also through a link).
        RunCommandProblem: the path is empty.
    """
    if not path:
        raise RunCommandProblem(f"{what} has no source path.")
    written = shown(path, folder)
    if path.startswith("~"):
        raise RunCommandProblem(f"{written}: ~ is your home folder, which the grader does not have; write paths "
                                "from the folder of this notebook, e.g. \"$PWD/service/data\" or ./service/data.")
    resolved = (folder / path).resolve()
    if Path(path).name.endswith(_SOCKETS) or resolved.name.endswith(_SOCKETS):
        raise SecurityRule(_SECURITY.format(
            what=f"{who} mounts the Docker socket ({written})",
            why="the socket controls the Docker engine and, through it, the whole machine"))
    if not resolved.is_relative_to(folder):
        raise SecurityRule(f"Security rule of the grader (not a Docker error): {written} is outside your exercise "
                           "folder, and the check mounts nothing from outside it. Mount only what is next to "
                           f"this notebook: {instead}.")
    return resolved


def _asks(option: str, value: str = "") -> SecurityRule:
    what = f"`--{option} {value}`" if value else f"`--{option}`"
    return security_rule(f"the command asks for {what}", option, value)


def judge_container(attrs: dict, folder: Path, *, baseline: dict | None = None) -> None:
    """Refuse a created container whose configuration would weaken the sandbox.

    Reads ``docker container inspect`` as data: ``HostConfig`` (``Privileged``, ``CapAdd``,
    ``Devices``, ``DeviceCgroupRules``, ``DeviceRequests``, ``SecurityOpt``, ``NetworkMode``,
    ``PidMode``, ``IpcMode``, ``UTSMode``, ``UsernsMode``, ``CgroupnsMode``, ``CgroupParent``,
    ``VolumesFrom``, ``Mounts``' volume driver options; the namespaces before ``SecurityOpt``, to
    which the engine adds ``label=disable`` for a host PID or IPC namespace) and the container's ``Mounts`` (every bind
    source must be inside ``folder``, never a socket). A namespace mode the engine gives every
    container (``CgroupnsMode: host`` on an engine configured so, ``IpcMode: private``) is not
    something the command asked for: modes equal to ``baseline``'s are left alone.

    Args:
        attrs: the inspect document of a container that was created, not started.
        folder: the exercise folder (absolute, resolved).
        baseline: the inspect document of a container created from the same image with no options.

    Raises:
        SecurityRule: naming the option as ``docker run`` writes it and why it is refused.
    """
    host = attrs.get("HostConfig") or {}
    default = (baseline or {}).get("HostConfig") or {}
    if host.get("Privileged"):
        raise _asks("privileged")
    if host.get("CapAdd"):
        raise _asks("cap-add", ",".join(host["CapAdd"]))
    for device in host.get("Devices") or []:
        raise _asks("device", str(device.get("PathOnHost", "")))
    if host.get("DeviceCgroupRules"):
        raise _asks("device-cgroup-rule", host["DeviceCgroupRules"][0])
    if host.get("DeviceRequests"):
        raise _asks("gpus")
    for key, option in (("NetworkMode", "network"), ("PidMode", "pid"), ("IpcMode", "ipc"), ("UTSMode", "uts"),
                        ("UsernsMode", "userns"), ("CgroupnsMode", "cgroupns")):
        value = str(host.get(key) or "")
        if value and value != str(default.get(key) or "") and weakens(option, value):
            raise _asks(option, value)
    for option in host.get("SecurityOpt") or []:
        if weakens("security-opt", option):
            raise _asks("security-opt", option)
    if host.get("CgroupParent"):
        raise _asks("cgroup-parent", host["CgroupParent"])
    if host.get("VolumesFrom"):
        raise _asks("volumes-from", host["VolumesFrom"][0])
    for mount in host.get("Mounts") or []:
        options = ((mount.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options") or {}
        if mount.get("Type") == "volume" and ("device" in options or "bind" in options.get("o", "")):
            raise SecurityRule(_SECURITY.format(
                what=f"the command mounts a host path through a volume driver option (at {mount.get('Target')})",
                why="it mounts host paths from outside your exercise folder"))
    for mount in attrs.get("Mounts") or []:
        if mount.get("Type") == "bind":
            inside(folder, str(mount.get("Source", "")))
