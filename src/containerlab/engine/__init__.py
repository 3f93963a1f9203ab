"""The one module that talks to the Docker engine.

Facts about images come from the engine's metadata through the Docker SDK for
Python (https://docker-py.readthedocs.io). Builds go through ``docker buildx
build`` (BuildKit): the SDK's own ``images.build()`` uses the legacy builder,
which has no secret mounts (ENGINE.md). Builder text is only ever shown to a
person, never parsed for facts, except to point at the failing step of a build
that produced no image.

The package is split by job; every public name is also here, so callers write
``engine.build(...)`` or ``engine.sandboxed_container(...)``:

- :mod:`.client`: this process's engine (its address and the SDK client), the engine's own facts
  (version, info, disk, networks), the one runner of the ``docker`` command line (:func:`docker_cli`:
  the engine's address, a timeout, a full disk noticed), run labels, clean-up of what a run left;
- :mod:`.images`: look up, pull, import, measure (size, layers, history), read an image's files;
- :mod:`.builds`: ``docker buildx build`` with a timeout, and what a failed build says;
- :mod:`.containers`: plain runs for the book, and the sandbox the checks run submissions in;
- :mod:`.scripts`: a student's shell script run in a sandbox with a recording ``docker``; containers created, never started;
- :mod:`.compose`: compose stacks: config, up, ps, logs, port, health, down.

No SDK object leaves this package: its functions return the package's own
frozen dataclasses (:class:`ImageInfo`, :class:`ContainerRef`, :class:`ContainerInfo`,
:class:`NetworkInfo`, :class:`BuildResult`, ...) or plain data (the engine's JSON
as dicts and lists, numbers, text), and take a :class:`ContainerRef` where they act
on a container. The SDK client (:func:`.client.client`) is not exported, and no
module outside this package imports the SDK or reads an SDK object's ``attrs``
(``tests/test_engine_boundary.py`` holds to both). What the engine reports is
then read in one place, and the checks are tested with plain fakes.

The ``docker`` command line is run by :func:`docker_cli` alone, which points it at
the engine the SDK client uses; the one exception is ``docker save``'s stream in
:func:`image_archive`, read as it comes. No module outside this package runs
``docker`` itself (``tests/test_engine_boundary.py`` holds to that too).

Signs that the engine's shared limits, not the submission, decided an outcome
(:data:`Pressure`: a full disk, a build past its timeout) travel in what an
operation returns (:attr:`CliResult.pressure`) or raises
(:attr:`EngineError.pressure`, which :class:`BuildFailed` and
:class:`ComposeFailed` fill in); this package keeps no record of them. The
checks carry them into their :class:`~containerlab.checks.CheckResult`, and the
class grader reads them there.
"""

from __future__ import annotations

from .client import (  # noqa: F401  (re-exported)
    Echo,
    HOW_TO_GET_AN_ENGINE,
    EngineError,
    EngineUnavailable,
    NetworkInfo,
    connect,
    reconnect,
    version,
    info,
    require_engine,
    run_labels,
    _with_run_labels,
    answers,
    storage_fault,
    docker_cli,
    labelled,
    remove_objects,
    disk_usage,
    system_df,
    networks,
    data_root_size,
    CliResult,
    CommandTimedOut,
    Pressure,
)
from .images import (  # noqa: F401  (re-exported)
    ImageInfo,
    image,
    remove_image,
    untag,
    tag_image,
    pull,
    import_rootfs,
    exec_output,
    local_tags,
    image_files,
    image_file,
    remove_unused_image,
    image_history,
    content_digest,
    image_layers,
    image_size,
    image_sizes,
    ImageSizes,
    uses_containerd_store,
    is_containerd_store,
    ImageNotFound,
    image_archive,
    tar_path,
)
from .builds import (  # noqa: F401  (re-exported)
    BuildFailed,
    BuildResult,
    build,
    build_cgroup,
    prune_build_cache,
    BuilderDoesNotLoad,
    check_builder,
)
from .containers import (  # noqa: F401  (re-exported)
    ContainerFailed,
    ContainerRef,
    ContainerInfo,
    Mount,
    run,
    host_port,
    logs,
    wait_http,
    remove_container,
    wait_container,
    container_info,
    SandboxLimits,
    HttpAnswer,
    HttpRequest,
    sandboxed_container,
    container_state,
    remove_labelled_containers,
    exec_inside,
    container_address,
    http_from_inside,
    http_many_from_inside,
    wait_http_inside,
    listening_sockets,
    stop_seconds,
)
from .scripts import (  # noqa: F401  (re-exported)
    BlankImage,
    Created,
    DockerCall,
    ScriptRun,
    create_container,
    inspect_container,
    remove_created,
    remove_volume,
    run_shell_script,
    volume_names,
    volume_options,
)
from .compose import (  # noqa: F401  (re-exported)
    ComposeFailed,
    ComposeRejected,
    ComposeService,
    HealthProbe,
    compose,
    compose_config,
    compose_container,
    compose_health,
    compose_ps,
    compose_logs,
    compose_down,
    compose_up,
    compose_port,
)
