"""``python -m emulators up|down|status|env|reset|token|sweep``: the local stack."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from emulators.config import LocalStack
from emulators.processes import StackError
from emulators.stack import Stack, check_prerequisites


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start every piece that is not running (idempotent)")
    commands.add_parser("down", help="stop exactly the processes `up` started")
    commands.add_parser("status", help="show each piece: running, pid, memory, log")
    commands.add_parser("env", help="print export lines for the local stack")
    commands.add_parser("reset", help="empty Firestore and the buckets, drop queued messages")
    commands.add_parser("check", help="check for Java, the gcloud emulators and fake-gcs-server")
    commands.add_parser("demo", help="up, then a spoken file through gsutil cp to its results")
    sweep = commands.add_parser(
        "sweep", help="call the sweep function as Cloud Scheduler does (re-publish lost messages)"
    )
    # By hand, the sweep is run right after an outage: everything waiting then is stuck.
    # (Cloud Scheduler's periodic call keeps the function's default of 900 s.)
    sweep.add_argument(
        "--older-than-s",
        type=int,
        default=0,
        help="only jobs waiting longer than this (default 0: every waiting job; duplicates "
        "are harmless, every handler is idempotent)",
    )
    token = commands.add_parser("token", help="print a bearer token for the local API")
    token.add_argument("--subject", required=True, help="the caller (the token's sub claim)")
    token.add_argument("--ttl", type=int, default=24 * 3600, help="seconds it stays valid")
    args = parser.parse_args(argv)

    stack = Stack(LocalStack.from_env())
    try:
        if args.command == "up":
            seconds = stack.up()
            running = [n for n, s in stack.status().items() if s["running"]]
            print(f"local stack ready in {seconds:.1f}s: {', '.join(running)}", file=sys.stderr)
            print('next: eval "$(python -m emulators env)"', file=sys.stderr)
        elif args.command == "down":
            stopped = stack.down()
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)
        elif args.command == "status":
            report = stack.status()
            print(json.dumps(report, indent=2))
            total = sum(float(str(s["rss_mb"] or 0)) for s in report.values())
            print(f"total RSS: {total:.0f} MB", file=sys.stderr)
        elif args.command == "env":
            for key, value in stack.local.environment().items():
                print(f"export {key}={shlex.quote(value)}")
        elif args.command == "demo":
            from emulators.demo import main as demo

            return demo()
        elif args.command == "token":
            from common.edge.auth import issue_hs256

            settings = stack.local.settings
            assert settings.auth.jwt_secret is not None
            print(
                issue_hs256(
                    settings.auth.jwt_secret.get_secret_value(),
                    args.subject,
                    ttl_s=args.ttl,
                    audience=settings.auth.audience,
                )
            )
        elif args.command == "sweep":
            print(json.dumps(_sweep(stack, args.older_than_s), indent=2))
        elif args.command == "check":
            pre = check_prerequisites()
            print(f"prerequisites ok: {pre.java}, {pre.pubsub_jar.name}, {pre.fake_gcs.name}")
        elif args.command == "reset":
            stack.reset()
            print("reset: Firestore and buckets emptied, subscriptions drained", file=sys.stderr)
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _sweep(stack: Stack, older_than_s: int) -> object:
    """POST to the local sweep function, the way Cloud Scheduler's HTTP target does."""
    import urllib.request

    body = {"older_than_s": older_than_s}
    request = urllib.request.Request(
        stack.local.function_url("sweep"),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())
    except OSError as exc:
        raise StackError(f"the sweep function did not answer ({exc}); is the stack up?") from exc


if __name__ == "__main__":
    sys.exit(main())
