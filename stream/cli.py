"""CLI: serve, listen, dashboard, keys. Handlers parse and delegate; heavy imports inside."""
from __future__ import annotations

import argparse
import json
import sys

from neurogrs.cli_session import (
    LABEL_OPTIONS,
    add_session_options,
    apply_recorded_label_options,
    session_from_args,
)
from neurogrs.errors import ConfigError

__all__ = ["register", "scoring_labels"]


def register(sub: "argparse._SubParsersAction") -> None:
    from neurogrs.inference import ENGINES
    from neurogrs.stream.policy import LATEST, POLICIES
    from neurogrs.stream.transport import CLIENT_PREDICTIONS, SERVICE_FRAMES, SERVICE_PREDICTIONS

    p = sub.add_parser(
        "serve", help="serve predictions over ZeroMQ within a deadline (Prometheus metrics)",
        description="Decode frames from ZeroMQ and publish predictions (protocol v1, "
                    "docs/protocol.md). Endpoints: @ binds, > connects; bare addresses bind. "
                    "Prints one JSON 'ready' line on stdout; final metrics on stderr at exit.")
    p.add_argument("artifact", help="artifact directory (model.json + weights.npz)")
    p.add_argument("--engine", default="c", choices=ENGINES,
                   help="inference engine (numpy for debugging; default c)")
    p.add_argument("--frames", default=SERVICE_FRAMES, help="frame endpoint (SUB)")
    p.add_argument("--predictions", default=SERVICE_PREDICTIONS,
                   help="prediction/error endpoint (XPUB)")
    p.add_argument("--metrics-port", type=int, default=9108,
                   help="Prometheus port (0: any free port, -1: no metrics endpoint)")
    p.add_argument("--metrics-addr", default="127.0.0.1", help="address the metrics endpoint binds")
    p.add_argument("--deadline-ms", type=float, default=100.0, help="per-frame deadline (ms)")
    p.add_argument("--policy", default=LATEST, choices=POLICIES,
                   help="latest: when behind, answer only the newest frame per session "
                        "(skipped ones counted as conflated); all: answer every frame")
    p.add_argument("--session", action="append", default=[], metavar="NAME",
                   help="serve only this session (repeatable; default: every session)")
    p.add_argument("--curve", metavar="DIR", help="CURVE keys directory (neurogrs keys DIR)")
    p.add_argument("--max-body-bytes", type=int, default=None, help="protocol size limit")
    p.add_argument("--session-idle-s", type=float, default=60.0,
                   help="forget a session after this many seconds without a frame (default 60)")
    p.add_argument("--clock", default="auto", choices=("auto", "source"),
                   help="auto: judge stale/late on the service's clock when a source's clock "
                        "is off by more than 5 ms (estimated from its frames); source: trust "
                        "t_src as it is (needs synchronised clocks)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("listen", help="print predictions live; online accuracy and latency",
                       description="Subscribe to a service's predictions. Given the recorded "
                                   "session, report online accuracy against its labels and "
                                   "latency percentiles (t_src -> received).")
    p.add_argument("--predictions", default=CLIENT_PREDICTIONS, help="service endpoint")
    p.add_argument("--session", metavar="FILE",
                   help="recorded session: score online accuracy (with balanced accuracy and "
                        "the best constant predictor) against its labels; stop at its "
                        "end-of-stream. Read with the session options below, as train reads")
    p.add_argument("--artifact", metavar="DIR",
                   help="the artifact the service runs: score against the labels train used "
                        "(its session options, recorded in the artifact, apply unless you "
                        "give others; a difference is warned about); warn if the service "
                        "runs another model")
    p.add_argument("--session-name", metavar="NAME",
                   help="listen to this session only; stop at its end-of-stream")
    p.add_argument("--json", action="store_true", help="one JSON object per prediction")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--count", type=int, help="stop after N predictions")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop after S seconds without a message (default: wait)")
    p.add_argument("--curve", metavar="DIR", help="CURVE keys directory (client key)")
    add_session_options(p)
    p.set_defaults(func=_cmd_listen)

    _register_dashboard(sub, CLIENT_PREDICTIONS)

    p = sub.add_parser("keys", help="create CURVE keys for serve/replay/listen")
    p.add_argument("directory")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_keys)


def _register_dashboard(sub: "argparse._SubParsersAction", predictions: str) -> None:
    from neurogrs.stream.dashboard import DEFAULT_PORT

    p = sub.add_parser("dashboard", help="a live page: latency, frame rate, predictions (no Grafana needed)",
                       description="Subscribe to a service's predictions and serve a local page "
                                   "with live latency, frame-rate and prediction plots (works "
                                   "offline). Prints one JSON 'ready' line with the page's URL.")
    p.add_argument("--predictions", default=predictions, help="service endpoint")
    p.add_argument("--session-name", metavar="NAME", help="show this session only")
    p.add_argument("--session", metavar="FILE",
                   help="recorded session: draw its labels beside the predictions and score "
                        "them online (read as listen reads it, with the options below)")
    p.add_argument("--artifact", metavar="DIR",
                   help="the artifact the service runs: the labels train used (as listen)")
    p.add_argument("--host", default="127.0.0.1", help="address the page listens on (default loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="page port (0: any free port)")
    p.add_argument("--history", type=int, default=20_000, help="predictions kept for the page")
    p.add_argument("--curve", metavar="DIR", help="CURVE keys directory (client key)")
    add_session_options(p)
    p.set_defaults(func=_cmd_dashboard)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from neurogrs.stream.dashboard import DashboardSettings, run

    settings = DashboardSettings(predictions=args.predictions, session=args.session_name,
                                 host=args.host, port=args.port, history=args.history,
                                 max_points=min(2_000, args.history), curve_dir=args.curve)
    return run(settings, scoring_labels(args))


def _cmd_serve(args: argparse.Namespace) -> int:
    import signal

    from neurogrs.errors import TransportError
    from neurogrs.inference import load_engine
    from neurogrs.stream.service import Service, ServiceSettings

    extra = {} if args.max_body_bytes is None else {"max_body_bytes": args.max_body_bytes}
    config = ServiceSettings(frames=args.frames, predictions=args.predictions,
                           deadline_s=args.deadline_ms / 1000.0, policy=args.policy,
                           sessions=tuple(args.session), curve_dir=args.curve,
                           session_idle_s=args.session_idle_s, clock=args.clock, **extra)
    engine = load_engine(args.artifact, args.engine)
    service = Service(engine, config)
    httpd = None
    metrics_url = None
    if args.metrics_port >= 0:
        from prometheus_client import start_http_server

        try:
            httpd, _ = start_http_server(args.metrics_port, addr=args.metrics_addr,
                                         registry=service.registry)
        except OSError as exc:
            raise TransportError(f"cannot bind metrics endpoint {args.metrics_addr}:"
                              f"{args.metrics_port}: {exc}") from exc
        metrics_url = f"http://{args.metrics_addr}:{httpd.server_port}/metrics"
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    try:
        endpoints = service.start()
        # everything allocated so far (imports, engine, sockets) lives as long as the
        # process: keep it out of the cyclic GC's full collections (shorter pauses)
        import gc

        gc.collect()
        gc.freeze()
        print(json.dumps({"event": "ready", **endpoints, "metrics": metrics_url,
                          "model": engine.model_hash, "engine": engine.name,
                          "policy": config.policy, "deadline_ms": args.deadline_ms}), flush=True)
        final = service.serve()
    finally:
        if httpd is not None:
            # shutdown() waits for serve_forever's next 0.5 s poll: let a daemon thread wait
            # for it, so SIGTERM exits within the loop's wake-up time
            import threading

            threading.Thread(target=httpd.shutdown, daemon=True).start()
        engine.close()
    print(json.dumps({"event": "stopped", **final}), file=sys.stderr, flush=True)
    return 0


def _cmd_listen(args: argparse.Namespace) -> int:
    from neurogrs.stream import protocol as P
    from neurogrs.stream.client import Subscriber
    from neurogrs.stream.listen import Tally, format_prediction, print_summary

    art = None
    if args.artifact:
        from neurogrs.artifact import load_artifact

        art = load_artifact(args.artifact)
    model_hash = None if art is None else art.hash
    tally = Tally(labels=scoring_labels(args, art))
    out = sys.stdout
    with Subscriber(args.predictions, args.session_name, curve_dir=args.curve) as sub:
        greeted = False
        try:
            while args.count is None or tally.count < args.count:
                msg = sub.recv(args.timeout)
                if msg is None:
                    break
                if isinstance(msg, P.Hello):
                    if not greeted:  # the service has our subscription: nothing is missed now
                        greeted = True
                        if model_hash is not None and msg.model != model_hash:
                            import warnings

                            warnings.warn(f"the service runs model {msg.model[:12]}, not "
                                          f"{args.artifact} ({model_hash[:12]}): its labels "
                                          "may not be the ones scored", stacklevel=1)
                        print(json.dumps({"event": "listening", "endpoint": sub.endpoint,
                                          "model": msg.model, "engine": msg.engine,
                                          "labels": list(msg.labels)}),
                              file=sys.stderr, flush=True)
                    continue
                tally.add(msg, sub.received_ns)
                if isinstance(msg, P.Prediction) and not args.quiet:
                    print(format_prediction(msg, sub.received_ns, args.json), file=out)
                elif isinstance(msg, P.EndOfStream) and (args.session_name or args.session):
                    break  # the one stream we score or follow has ended
        except KeyboardInterrupt:
            pass
    print_summary(tally.summary(), sys.stderr if not args.quiet else out)
    return 0


def scoring_labels(args: argparse.Namespace, art=None):
    """The labels `listen --session` scores against, or None without --session.

    Read with the session options on the command line; given the artifact (`art`, else
    --artifact) and no label option, with the options train recorded in it (so a model
    trained with --label-from-speed is scored against speed labels, not the file's own)."""
    given = any(getattr(args, k, None) is not None
                for k in (*LABEL_OPTIONS, "csv_id", "nwb_traces", "nwb_plane"))
    if not args.session:
        if given:
            raise ConfigError("session options apply to --session FILE: give it")
        return None
    if art is None and args.artifact:
        from neurogrs.artifact import load_artifact

        art = load_artifact(args.artifact)
    if art is not None:
        note = apply_recorded_label_options(args, art.doc.get("provenance"), str(art.path))
        if note:
            print(json.dumps({"event": "note", "message": note}), file=sys.stderr, flush=True)
    return session_from_args(args, args.session).labels


def _cmd_keys(args: argparse.Namespace) -> int:
    from neurogrs.stream.keys import create_keys

    d = create_keys(args.directory, overwrite=args.overwrite)
    print(f"CURVE keys written to {d}: server.key(_secret), client.key(_secret), "
          f"authorized_clients/ (copy other clients' public .key files there)")
    return 0
