"""No Docker SDK object leaves :mod:`containerlab.engine` (issue 20): its public names take and give the
package's own dataclasses or plain data, and no other module imports the SDK or reads an SDK object's ``attrs``."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

from containerlab import engine

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "containerlab"
ENGINE = PACKAGE / "engine"
#: The SDK's own types, as an annotation would name them (``docker.models...`` or the bare class names).
SDK_TYPE = re.compile(r"\bdocker\.|\b(DockerClient|APIClient|Image|Container|Network|Volume|Model)\b")


def _outside_engine() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if ENGINE not in p.parents]


def _sdk_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "docker" or a.name.startswith("docker.")]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module == "docker" or node.module.startswith("docker."):
                found.append(node.module)
    return found


def test_no_module_outside_the_engine_imports_the_sdk_or_reads_attrs() -> None:
    """Does every module outside the engine package leave the SDK alone: no import of it, no ``.attrs``?"""
    leaks = []
    for path in _outside_engine():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(PACKAGE)
        leaks += [f"{where}: imports {name}" for name in _sdk_imports(tree)]
        leaks += [f"{where}:{node.lineno}: reads .attrs" for node in ast.walk(tree)
                  if isinstance(node, ast.Attribute) and node.attr == "attrs"]
    assert leaks == []
    assert len(_outside_engine()) > 30


def _public() -> dict[str, object]:
    return {name: value for name, value in vars(engine).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and getattr(value, "__module__", "").startswith("containerlab.engine")}


def test_the_engines_public_names_never_take_or_give_an_sdk_object() -> None:
    """Do the signatures of the engine's functions and the fields of its dataclasses name no SDK type?"""
    leaks = []
    for name, value in _public().items():
        if inspect.isfunction(value):
            signature = inspect.signature(value)
            annotations = [str(p.annotation) for p in signature.parameters.values()]
            annotations.append(str(signature.return_annotation))
        elif dataclasses.is_dataclass(value):
            annotations = [str(f.type) for f in dataclasses.fields(value)]
        else:
            continue
        leaks += [f"{name}: {text}" for text in annotations if SDK_TYPE.search(text)]
    assert leaks == []
    assert {"image", "run", "sandboxed_container", "compose_container", "ImageInfo", "ContainerRef"} <= set(_public())


def test_the_sdk_client_is_not_exported() -> None:
    """Is ``engine.client`` the module of that name, not the function that gives the SDK client?"""
    assert inspect.ismodule(engine.client)


#: What ``subprocess`` offers to start a program.
_STARTERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}


def _runs_docker(node: ast.Call) -> bool:
    """Whether ``node`` is a ``subprocess`` call whose command is ``docker ...`` (a list or a shell line)."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr in _STARTERS
            and isinstance(func.value, ast.Name) and func.value.id == "subprocess"):
        return False
    command = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "args"), None)
    if isinstance(command, (ast.List, ast.Tuple)) and command.elts:
        command = command.elts[0]
    return isinstance(command, ast.Constant) and isinstance(command.value, str) and (
        command.value == "docker" or command.value.startswith("docker "))


def test_no_module_outside_the_engine_runs_the_docker_command_line_itself() -> None:
    """Does every `docker` command line outside the engine go through engine.docker_cli (the engine's address,
    a timeout, a full disk noticed), never through subprocess?"""
    found = {str(path.relative_to(PACKAGE)): [node.lineno for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                                             if isinstance(node, ast.Call) and _runs_docker(node)]
             for path in _outside_engine()}
    assert {where: lines for where, lines in found.items() if lines} == {}
    engine_calls = [node for path in ENGINE.glob("*.py") for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                    if isinstance(node, ast.Call) and _runs_docker(node)]
    assert len(engine_calls) == 2  # docker_cli's own, and image_archive's streamed `docker save`
