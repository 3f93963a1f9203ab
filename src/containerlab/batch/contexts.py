"""Docker contexts: point a process at another engine, check that contexts exist, prepare each engine of a batch.

``containerlab grade --engine NAME`` spreads the workers over docker contexts.
A worker points its own SDK client and the ``docker`` commands it starts at its
context (:func:`use_context`); the parent checks and cleans each context's
engine from a spawned process, so its own client stays on its own engine.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence

from .. import engine, sandbox
from .runs import Cleanup, clean_leftovers

def use_context(name: str) -> None:
    """Point this process (the SDK and the docker CLI it starts) at the engine of docker context ``name``.

    Sets ``DOCKER_CONTEXT`` and, when the context names one, ``DOCKER_HOST``, then makes a new client.

    Raises:
        engine.CommandTimedOut: ``docker context inspect`` did not answer within 30 s.
    """
    host = sandbox.context_host(name)
    os.environ["DOCKER_CONTEXT"] = name
    if host:
        os.environ["DOCKER_HOST"] = host
    engine.reconnect()


def check_contexts(names: Sequence[str]) -> None:
    """Check that each docker context exists.

    Raises:
        engine.EngineUnavailable: naming a context ``docker context ls`` does not show.
    """
    if not names:
        return
    listed = engine.docker_cli(["context", "ls", "--format", "{{.Name}}"], timeout=30).stdout.split()
    missing = [n for n in names if n not in listed]
    if missing:
        raise engine.EngineUnavailable(f"No docker context named {', '.join(missing)} (there are: "
                                       f"{', '.join(listed) or 'none'}); create one with `docker context create`.")


def prepare_engine(context: str, *, run_id: str, keys: Sequence[str]) -> Cleanup:
    """Check an engine's builder and remove killed runs' leftovers there, before any worker starts.

    ``context`` ``""`` is this process's engine; another docker context is checked
    from a spawned process pointed at it, so this process's own client is not touched.

    Raises:
        engine.EngineUnavailable: the engine does not answer.
        engine.BuilderDoesNotLoad: its buildx builder would not load the images.
    """
    if context:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(_prepare_in_context, context, run_id, list(keys)).result()
    engine.connect()
    engine.check_builder()
    return clean_leftovers(run_id=run_id, keys=keys)


def _prepare_in_context(context: str, run_id: str, keys: list[str]) -> Cleanup:
    use_context(context)
    return prepare_engine("", run_id=run_id, keys=keys)
