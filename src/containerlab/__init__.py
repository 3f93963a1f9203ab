"""Course package for Chapter 14, Containerisation.

Modules, one job each:

- ``config``: the image names and paths the course uses (the one place that names them).
- ``engine``: the only module that talks to the Docker engine.
- ``baseimages``: makes sure the base images exist (registry, or local stand-ins).
- ``tower``: the "environment tower" of a host or an image.
- ``notebook``: small helpers the book's notebooks call.
- ``cli``: the ``containerlab`` command.
"""

__version__ = "0.1.0"
