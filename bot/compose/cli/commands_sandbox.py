"""``incident-bot sandbox`` and ``incident-bot drill SCENARIO``.

``sandbox`` starts a local control plane and the bot watching it, then gives
you the console chat on stdin (Ctrl-D, ``/quit``, Ctrl-C or SIGTERM ends it
and removes everything).  ``drill`` rehearses one fault end to end and prints
the scorecard; ``--keep`` leaves the sandbox up afterwards, with the console,
so you can look around.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
from pathlib import Path
from typing import Any

from bot.core.errors import ConfigError


class _Terminated(Exception):
    """SIGTERM, turned into an exception so every ``finally`` (cleanup) runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _console(sandbox: Any, *, user: str | None) -> int:
    from bot.chat.console import Console

    bot = sandbox.bot
    console = Console(bot.dispatcher, user=user or getpass.getuser() or "operator", deliver=False)
    if sys.stdin.isatty():
        print("Console chat: `/incident help`; `/as <user>` to speak as someone else; Ctrl-D to stop the sandbox.")
    return console.run(sys.stdin)


def _terminal_deliverer(bot: Any) -> Any:
    from bot.chat.console import ConsoleDeliverer

    return ConsoleDeliverer(bot.dispatcher, sys.stdout)


def _banner(sandbox: Any) -> None:
    print(f"sandbox up in {sandbox.root} (removed on exit)", flush=True)
    for line in sandbox.plane.describe():
        print("  " + line)
    print(f"  bot:               {sandbox.runtime.url} (webhook, /metrics, /api/incidents)")
    print(f"  bot settings:      {sandbox.settings_path}")
    print(f"  another console:   incident-bot --config {sandbox.settings_path} console --user NAME")
    print("  try a fault from another terminal, or: incident-bot drill etcd-member-down", flush=True)


# ---------------------------------------------------------------- sandbox
SANDBOX_EXTRA = ("cryptography",)  # what `pip install 'incident-bot[sandbox]'` adds (the sandbox's TLS PKI)


def require_sandbox_extra(command: str) -> None:
    """A wheel installed without the extra gets one line saying how to get it, not a traceback."""
    import importlib.util

    missing = [name for name in SANDBOX_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"`incident-bot {command}` needs the sandbox extra: pip install 'incident-bot[sandbox]' "
                          f"(missing: {', '.join(missing)}); it also runs etcd, kube-apiserver and helm built by "
                          "scripts/build-go.sh, and Debian's haproxy, prometheus and prometheus-alertmanager")


def _sandbox_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", default=None, help="who you are in the console chat (default: $USER)")


def _sandbox(args: argparse.Namespace) -> int:
    require_sandbox_extra("sandbox")
    from bot.compose.sandbox.sandbox import Sandbox

    from bot.compose.sandbox.settings import DEFAULT_ROTA

    user = args.user or getpass.getuser() or "operator"
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    # whoever sits at the console may approve runs, besides the sandbox's rota
    sandbox = Sandbox(deliverer_factory=_terminal_deliverer,
                      overrides={"approvers": {"users": [*DEFAULT_ROTA, user]}})
    try:
        print("starting the sandbox: etcd x3, apiservers behind HAProxy, Prometheus, Alertmanager, the bot ...")
        sandbox.start()
        _banner(sandbox)
        return _console(sandbox, user=user)
    except (_Terminated, KeyboardInterrupt):
        return 130
    finally:
        sandbox.close()
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- drill
def _drill_args(p: argparse.ArgumentParser) -> None:
    try:
        from bot.compose.sandbox.scenarios import SCENARIOS

        names = "one of: " + ", ".join(f"{n} ({s.expectation})" for n, s in SCENARIOS.items())
    except ImportError:  # installed without the sandbox extra: `drill` itself says what to install
        names = "a scenario name (install incident-bot[sandbox] to run drills)"
    p.add_argument("scenario", help=names)
    p.add_argument("--out", default=None, help="where the scorecard and post-mortem go "
                                                "(default ./drills/<timestamp>-<scenario>/)")
    p.add_argument("--keep", action="store_true", help="keep the sandbox up after the drill, with the console chat")
    p.add_argument("--cluster", default=None, help="the drill target (default: the sandbox); "
                                                    "refused unless clusters.NAME.drill_target is true")
    p.add_argument("--user", default=None, help="who you are in the console chat with --keep")


def _drill(args: argparse.Namespace) -> int:
    require_sandbox_extra("drill")
    from bot.compose.sandbox.drill import Drill
    from bot.compose.sandbox.scenarios import scenario

    scenario(args.scenario)  # an unknown name is refused before anything starts
    if args.cluster and args.cluster != "sandbox":
        from bot.compose.cli.loading import settings_from
        from bot.compose.sandbox.drill import check_drill_target

        check_drill_target(settings_from(args), args.cluster)
        raise ConfigError(f"drills: cluster `{args.cluster}` is a drill target, but this build injects faults only "
                          f"into the local sandbox (omit --cluster).")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        drill = Drill(args.scenario, out_dir=Path(args.out) if args.out else None,
                      echo=lambda line: print(line, flush=True))
        def keep_open(sandbox: Any) -> None:  # --keep: the banner, then the console on the live sandbox
            _banner(sandbox)
            _console(sandbox, user=args.user)

        result = drill.run(keep=keep_open if args.keep else None)
        for kind, path in sorted(result.files.items()):
            print(f"  {kind:<16}{path}")
        return 0 if result.passed else 1
    except (_Terminated, KeyboardInterrupt):
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(commands: dict[str, Any]) -> None:
    commands["sandbox"] = ("a local control plane (etcd, apiservers, HAProxy, Prometheus, Alertmanager) "
                           "and the bot, with the console chat", _sandbox_args, _sandbox)
    commands["drill"] = ("inject a fault into a fresh sandbox and score the 1-5-10 end to end",
                         _drill_args, _drill)
