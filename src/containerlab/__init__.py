"""Course package for Chapter 14, Containerisation.

Modules, one job each, roughly from the bottom up (no two import each other,
directly or through others: ``tests/test_imports.py`` checks it):

- ``config``: the image names and paths the course uses (the one place that names them).
- ``engine``: the only code that talks to the Docker engine (its submodules: the
  client and the ``docker`` command line, images, builds, containers, scripts, compose).
- ``sandbox``: the grading engine, a dockerd with memory, process, CPU and disk limits.
- ``baseimages``: makes sure the base images exist (a registry, or local stand-ins).
- ``tower``, ``tower_probe``: the "environment tower" of a host or an image.
- ``layers``, ``scan``, ``charts``: measure builds and layers, look inside an image for
  secrets and data, draw the measurements.
- ``checks``: one module per exercise (``ex1`` ... ``ex6``), found by ``checks.registry``,
  and the steps they share (building a submission, running it, its run command, its
  compose file, the security policy, hadolint, the named causes of failures, progress).
- ``answers``, ``autograde``: find a student's notebook and the answer they ran last,
  for the grader and for nbgrader.
- ``grading``: grade one student; ``resultfiles``: a student's result file on disk;
  ``batch``: grade a class, resumably (its submodules: which students and their keys and
  shards, a run's locks and the clean-up of killed runs, docker contexts, the worker processes
  and their supervisor); ``shared``: what its workers share (the scan or the probe of an
  image with the same content as another student's).
- ``report``: everything a person reads (check lists, feedback, live progress).
- ``gradebook``, ``classstats``, ``classreport``, ``lms``, ``lookalike``: the class's
  gradebook, its figures and report page, the LMS import files, look-alike submissions.
- ``exercises``: the exercise notebooks and nbgrader (student versions).
- ``notebook``, ``book``, ``book_html``: what the book's pages call, and the book's build.
- ``doctor``: is this machine ready for the course; ``cli``: the ``containerlab`` command.
"""

__version__ = "0.1.0"
