"""Helpers shared by ``tests/`` and ``bench/`` (not part of the installed plugin).

* ``testkit.procs``: ``free_port()``, ``ServerProcess`` and its two kinds, ``TensorBoardProcess`` (a real
  ``tensorboard`` subprocess) and ``DevServerProcess`` (``frontend/dev/dev_server.py``: the plugin in
  TensorBoard's WSGI router, no tensorboard process).
* ``testkit.logdirs``: MCT-format logdirs written by ``bench/mct_format.py`` (no torch, no MCT), cached on disk.
* ``testkit.apps``: the plugin as TensorBoard loads it (its entry point), mounted in TensorBoard's WSGI router.

The package lives at the repository root so that ``python -m bench.xxx`` (run from the root) and the tests (whose
``conftest.py`` puts the root on ``sys.path``) import the same code.
"""
