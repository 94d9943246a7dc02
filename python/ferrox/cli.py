"""The ``ferrox`` command line: one subcommand per pipeline step (``ferrox serve``, ``ferrox rollback``).

Exit codes: 0 done, 1 the step failed (the reason on stderr), 2 bad arguments.

>>> from ferrox.cli import build_parser
>>> args = build_parser().parse_args(["serve", "--model", "flights=model.frx", "--http-port", "0"])
>>> args.command, args.model, args.http_port
('serve', ['flights=model.frx'], 0)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .exceptions import FerroxError

__all__ = ["main", "build_parser"]


def _port(text: str) -> int:
    v = int(text)
    if not -1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535 (0 = any free port, -1 = off), got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="ferrox", description="ferrox pipeline steps")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "serve",
        help="serve models over the Open Inference Protocol (REST and gRPC)",
        description="Serve ferrox models over the Open Inference Protocol (KServe v2), REST and gRPC. "
        "Prints one JSON line {\"event\": \"ready\", \"http\": URL, \"grpc\": ADDRESS} on stdout when ready; "
        "SIGTERM or SIGINT stops it after in-flight requests are answered.",
    )
    s.add_argument("--model", action="append", default=[], metavar="NAME=SOURCE",
                   help="a model to serve: a .frx path or an MLflow URI (models:/name@alias); repeatable")
    s.add_argument("--model-repository", metavar="DIR", help="serve DIR/<name>/<version>/model.frx")
    s.add_argument("--config", metavar="FILE", help="a TOML server configuration (flags override it)")
    s.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    s.add_argument("--http-port", type=_port, default=None, help="REST port (default 8080; 0 = any; -1 = off)")
    s.add_argument("--grpc-port", type=_port, default=None, help="gRPC port (default 8081; 0 = any; -1 = off)")
    s.add_argument("--max-batch-size", type=int, default=None, help="rows per model call (0 = no batching)")
    s.add_argument("--max-queue-delay-us", type=int, default=None, help="longest wait for a batch to fill")
    s.add_argument("--queue-size", type=int, default=None, help="requests per model before answering 429")
    s.add_argument("--threads", type=int, default=None, help="server threads (default: cores, at most 4)")
    s.add_argument("--auth-token-env", metavar="VAR", help="require the bearer token held by this variable")
    s.add_argument("--auth-token-file", metavar="PATH", help="require the bearer token held by this file")
    s.add_argument("--max-body-bytes", type=int, default=None, help="largest request body (413 beyond)")
    s.add_argument("--request-timeout-ms", type=int, default=None, help="default request deadline")
    s.add_argument("--log-requests", type=float, default=None, help="share of requests logged as JSON (0..1)")
    s.add_argument("--no-log-events", action="store_true", help="do not log model events")
    r = sub.add_parser(
        "rollback",
        help="move a registered model's alias back and make the server answer with that version",
        description="Roll registered model NAME back: the alias (default champion) moves to the version before "
        "the last promotion (or --to VERSION), the server at --server serves it (a pointer swap when it is still "
        "loaded), and one request is answered by it. Prints one JSON line with the versions and timings.",
    )
    r.add_argument("name", help="the registered model (and, unless --served-model, the served name)")
    r.add_argument("--to", default=None, help="the version to go to (default: the one before the last promotion)")
    r.add_argument("--alias", default="champion", help="the registry alias (default champion)")
    r.add_argument("--server", default=None, metavar="URL", help="the ferrox server, http://HOST:PORT")
    r.add_argument("--served-model", default=None, help="the model's name on the server (default NAME)")
    r.add_argument("--no-registry", action="store_true", help="swap the server only (--to is its version label)")
    r.add_argument("--auth-token-env", metavar="VAR", help="the server's bearer token is in this variable")
    r.add_argument("--probe", metavar="FILE", help="a JSON inference request to verify with")
    r.add_argument("--audit", metavar="FILE", help="append an audit entry (JSON line) to FILE")
    r.add_argument("--reason", default="", help="why, for the audit entry")
    return p


def _serve(args: argparse.Namespace) -> int:
    from .serving import Server

    models = {}
    for spec in args.model:
        name, sep, source = spec.partition("=")
        if not sep or not name or not source:
            print(f"ferrox serve: --model takes NAME=SOURCE, got {spec!r}", file=sys.stderr)
            return 2
        models[name] = source

    configured: dict = {}
    if args.config:
        import tomllib

        try:
            with open(args.config, "rb") as f:
                configured = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            print(f"ferrox serve: --config {args.config}: {e}", file=sys.stderr)
            return 2

    def port(v: int | None, key: str, default: int) -> int | None:
        if v is None:
            return configured.get(key, default)
        return None if v == -1 else v

    srv = Server(
        models,
        model_repository=args.model_repository,
        config=args.config,
        host=args.host or "127.0.0.1",
        port=port(args.http_port, "http_port", 8080),
        grpc_port=port(args.grpc_port, "grpc_port", 8081),
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        queue_size=args.queue_size,
        threads=args.threads,
        auth_token_env=args.auth_token_env,
        auth_token_file=args.auth_token_file,
        max_body_bytes=args.max_body_bytes,
        request_timeout_ms=args.request_timeout_ms,
        log_requests=args.log_requests,
        log_events=not args.no_log_events,
    )
    srv.start()
    try:
        ready = {
            "event": "ready",
            "http": srv.url if srv._handle.http_address else None,
            "grpc": srv.grpc_address if srv._handle.grpc_address else None,
            "models": srv.models(),
        }
        print(json.dumps(ready), flush=True)
        try:
            srv.wait()
        except KeyboardInterrupt:
            pass
    finally:
        srv.stop()
    print(json.dumps({"event": "stopped"}), flush=True)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    import os

    from .retrain import rollback

    token = None
    if args.auth_token_env:
        token = os.environ.get(args.auth_token_env)
        if token is None:
            print(f"ferrox rollback: the environment variable {args.auth_token_env} is not set", file=sys.stderr)
            return 2
    probe = None
    if args.probe:
        with open(args.probe, encoding="utf-8") as f:
            probe = json.load(f)
    answered: list[float | None] = []
    r = rollback(args.name, to=args.to, alias=args.alias, server=args.server, served_model=args.served_model,
                 registry=not args.no_registry, token=token, probe=probe, audit=args.audit, reason=args.reason,
                 on_verified=lambda: answered.append(_process_age()))
    out = r.to_dict()
    if answered and answered[0] is not None:
        # from the start of this process (the command) to the old version's verified answer
        out["timings"]["command_to_answer"] = answered[0]
    print(json.dumps(out), flush=True)
    return 0


def _process_age() -> float | None:
    """Seconds since this process started (Linux; None elsewhere)."""
    import os

    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a subcommand; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "rollback":
            return _rollback(args)
    except (FerroxError, OSError, ValueError) as e:
        print(f"ferrox {args.command}: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
