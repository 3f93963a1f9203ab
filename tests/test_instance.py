"""Names shared through one engine: are they this user's and this clone's, and valid where Docker uses them?"""

from __future__ import annotations

import re
from pathlib import Path

from containerlab import config
from containerlab.checks import ex1, ex2, ex3, service

#: What compose accepts as a project name, and Docker as a container name and an image tag.
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def test_two_users_and_two_clones_get_different_suffixes():
    """Do two users in one clone, and one user in two clones, get different suffixes, the same one each time?"""
    alice = config.instance_suffix(user="alice", uid=1000, root=Path("/home/alice/course"), override="")
    assert alice == config.instance_suffix(user="alice", uid=1000, root=Path("/home/alice/course"), override="")
    assert alice.startswith("alice-")
    bob = config.instance_suffix(user="bob", uid=1000, root=Path("/home/alice/course"), override="")
    second_clone = config.instance_suffix(user="alice", uid=1000, root=Path("/home/alice/course-2"), override="")
    assert len({alice, bob, second_clone}) == 3


def test_suffix_is_valid_in_tags_container_and_project_names():
    """Is the suffix valid as an image tag, in a container name and in a compose project name, whatever the
    user is called?"""
    for user in ("Alice.O'Neil", "jürgen müller", "", "UPPER_case", "-x-"):
        suffix = config.instance_suffix(user=user, uid=1234, root=Path("/srv/c"), override="")
        assert PROJECT_NAME.match(suffix) and TAG.match(suffix), (user, suffix)
    assert config.instance_suffix(user="", uid=1234, root=Path("/srv/c"), override="").startswith("uid1234-")
    assert config.instance_suffix(override="CI Run #7") == "ci-run-7"


def test_check_tags_and_sandbox_names_carry_the_suffix():
    """Do the check cells' image tags keep the repository the task text names and carry this instance's tag,
    and do the sandbox's container names carry it too?"""
    assert ex1.DEFAULT_TAG == f"cl-ex-ex1:{config.INSTANCE}"
    assert ex2.DEFAULT_TAG == f"cl-ex-ex2:{config.INSTANCE}" and ex2.EX1_TAG == ex1.DEFAULT_TAG
    assert ex3.DEFAULT_TAG == f"cl-ex-ex3:{config.INSTANCE}"
    assert config.INSTANCE in ex2.REFERENCE_TAG
    assert service.SANDBOX_PREFIX == f"cl-ex-{config.INSTANCE}"


def test_instance_ports_differ_per_instance_and_keep_the_last_digits():
    """Does this clone publish the book's ports in a block of its own, keeping the port's last two digits?"""
    assert config.instance_port(8080) % 100 == 80
    assert 20000 <= config.instance_port(8000) < 60000
    assert len({config.instance_port(p) for p in (8000, 8080, 8085, 8091)}) == 4
