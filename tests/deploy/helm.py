"""Rendering the chart with the helm built from its Go module (scripts/build-go.sh), for the tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from bot.core import binaries

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "incident-bot"
# the chart refuses an open /api/* unless told, and has no default image (it is built and pushed by the operator)
REQUIRED = {"api.existingSecret": "incident-bot-api", "image.repository": "registry.example.com/incident-bot"}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binaries.require("helm"), *args], capture_output=True, text=True, timeout=120)


def set_args(values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        out += ["--set-json", f"{key}={json.dumps(value)}"]
    return out


def render(values: dict[str, Any] | None = None, *, namespace: str = "incident-bot",
           required: bool = True, release: str = "ib") -> list[dict[str, Any]]:
    """The chart's manifests as dicts; a refusal raises AssertionError with helm's message."""
    merged = {**(REQUIRED if required else {}), **(values or {})}
    done = helm("template", release, str(CHART), "--namespace", namespace, *set_args(merged))
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def refusal(values: dict[str, Any], *, required: bool = True) -> str:
    merged = {**(REQUIRED if required else {}), **values}
    done = helm("template", "ib", str(CHART), *set_args(merged))
    assert done.returncode != 0, "helm rendered values it should refuse"
    return done.stderr


def one(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]
