#!/usr/bin/env python
"""Development server for the XQuant panel: the real plugin, no tensorboard process.

    .venv/bin/python frontend/dev/dev_server.py [--port 6099] [--path_prefix /foo]
                     [--logdir DIR | --layers 300 5000 20000 [--out DIR] [--seed 0]]
    then open  http://127.0.0.1:6099/foo/data/plugin_entry.html?name=xquant

Serves the plugin, found through its ``tensorboard_plugins`` entry point like TensorBoard finds it, inside
TensorBoard's own WSGI router (``TensorBoardWSGI``: ``/data/plugins_listing``, the iframe page
``/data/plugin_entry.html?name=xquant`` with TensorBoard's Content-Security-Policy, and
``/data/plugin/xquant/...``), without a data provider: the plugin reads the logdir's files directly, so answers
come at once instead of after TensorBoard loaded the event files.  A rebuilt bundle
(``tb_xquant_plugin/static/``) is served on the next request.

``--logdir`` serves an existing logdir (e.g. ``python -m demo.generate`` output).  Without it, models of the
given layer counts are written in MCT 2.6.1's on-disk format by ``bench/mct_format.py`` (no torch, no MCT) into
``--out`` (default ``$TMPDIR/tb_xquant_dev``) and reused while the generator is unchanged; each is a report
``model_<N>/xquant_report``.  Detection, judges and the manual are the plugin's own: nothing is canned.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # testkit/ and bench/ live at the repository root
    sys.path.insert(0, str(REPO))

DEFAULT_LAYERS = (300, 5000, 20000)


def prepare_logdir(args) -> str:
    if args.logdir:
        if not os.path.isdir(args.logdir):
            raise SystemExit("logdir %s does not exist" % args.logdir)
        return os.path.abspath(args.logdir)
    from testkit.logdirs import ensure_model_logdir

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for n in args.layers:
        model_dir, seconds = ensure_model_logdir(out, n, seed=args.seed)
        print("%s: %s" % (model_dir, "generated in %.1fs" % seconds if seconds else "reused"), flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6099)
    p.add_argument("--path_prefix", default="", help="as tensorboard's --path_prefix, e.g. /foo")
    p.add_argument("--logdir", help="serve this logdir instead of generated models")
    p.add_argument("--layers", type=int, nargs="+", default=list(DEFAULT_LAYERS),
                   help="layer counts of the generated models (default %s)" % " ".join(map(str, DEFAULT_LAYERS)))
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "tb_xquant_dev"),
                   help="where the generated models live")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    logdir = prepare_logdir(args)
    from werkzeug.serving import make_server

    from testkit.apps import wsgi_app

    prefix = args.path_prefix.rstrip("/")
    app, _ = wsgi_app(logdir, prefix)
    server = make_server(args.host, args.port, app, threaded=True)

    def on_sigterm(signum, frame):  # end serve_forever through the finally below
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    print("serving %s\n  http://%s:%d%s/data/plugin_entry.html?name=xquant"
          % (logdir, args.host, server.server_port, prefix), flush=True)
    t0 = time.monotonic()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print("stopped after %.0fs" % (time.monotonic() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
