"""The wheel as a user installs it: a fresh virtual environment, outside the source tree.

What the container image runs is exactly this (the Dockerfile installs the
same wheel with the same pinned dependencies, ``deploy/docker/requirements.txt``),
so these tests stand in for building the image where no Docker engine runs:
the install uses the image's pins, the service is started with the image's
environment, and the image's HEALTHCHECK command is run against it.  The
fresh environment resolves the wheel's declared dependencies from the
package index (pip's cache makes a second run quick): a dependency used but
not declared, or not pinned for the image, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.slack.test_serve_acceptance import free_port, serving, wait

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / "deploy" / "docker" / "requirements.txt"
DOCKERFILE = REPO / "Dockerfile"
SKIP_DIRS = {".venv", ".git", "__pycache__", ".pytest_cache", "build", "drills", "out", "test-artifacts"}


@dataclass
class Installed:
    venv: Path
    workdir: Path  # an empty directory far from the source tree

    @property
    def cli(self) -> str:
        return str(self.venv / "bin" / "incident-bot")

    def env(self, **extra: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("INCIDENT_BOT_", "SLACK_", "PYTHON")) and k != "VIRTUAL_ENV"}
        return {**clean, "INCIDENT_BOT_DATABASE_URL": f"sqlite:///{self.workdir / 'bot.db'}", **extra}

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.cli, *args], cwd=self.workdir, env=self.env(**extra),
                              capture_output=True, text=True, timeout=120)


def build_wheel(out: Path) -> Path:
    """Build from a copy of the working tree, so the build leaves nothing behind in it."""
    source = out / "src"
    shutil.copytree(REPO, source, symlinks=True,
                    ignore=lambda d, names: [n for n in names if n in SKIP_DIRS or n.endswith((".egg-info", ".db"))])
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    str(source), "-w", str(out / "dist")], check=True, capture_output=True, timeout=300)
    return next((out / "dist").glob("incident_bot-*.whl"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(PINS), str(wheel)],
                   check=True, capture_output=True, timeout=900)
    workdir = root / "elsewhere"
    workdir.mkdir()
    yield Installed(venv, workdir)


def test_version_names_the_release(installed: Installed) -> None:
    answer = installed.run("--version")
    assert answer.returncode == 0 and answer.stdout.strip() == "incident-bot 0.1.0"


def test_the_shipped_procedures_are_found_and_valid(installed: Installed) -> None:
    answer = installed.run("sop", "validate")
    assert answer.returncode == 0, answer.stderr
    shipped = len(list((REPO / "sop").glob("*.yaml")))
    assert answer.stdout.startswith(f"ok: {shipped} procedure(s) valid")
    assert str(installed.venv) in installed.run("sop", "list").stdout  # read from site-packages, not a checkout


def test_only_runtime_dependencies_come_with_it(installed: Installed) -> None:
    probe = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import importlib.util as u, importlib.resources as r;"
         "print(sorted(m for m in ('kubernetes_validate', 'kmock', 'cryptography', 'jsonschema', 'pytest') if u.find_spec(m)));"
         "print((r.files('bot.compose.sandbox') / 'data' / 'rules-fast.yml').is_file());"
         "print((r.files('bot.domain.export') / 'templates' / 'postmortem.html.j2').is_file())"],
        capture_output=True, text=True, cwd=installed.workdir, env=installed.env())
    assert probe.stdout.split("\n")[:3] == ["[]", "True", "True"], probe.stderr


def test_serve_answers_health_from_the_installed_wheel(installed: Installed) -> None:
    port = free_port()
    log = installed.workdir / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([installed.cli, "serve", "--port", str(port)], cwd=installed.workdir,
                                env=installed.env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait(lambda: serving(f"http://127.0.0.1:{port}") or proc.poll() is not None, timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert "incident_bot_build_info" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert f"incident-bot listening on http://127.0.0.1:{port}" in log.read_text()


def test_drill_without_the_sandbox_extra_says_what_to_install(installed: Installed) -> None:
    answer = installed.run("drill", "apiserver-down")
    assert answer.returncode == 2
    assert answer.stderr.strip().startswith(
        "incident-bot: `incident-bot drill` needs the sandbox extra: pip install 'incident-bot[sandbox]' "
        "(missing: cryptography)")
    assert "Traceback" not in answer.stderr


def pins() -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in PINS.read_text().splitlines()]
    return {name.lower().replace("_", "-"): version for name, _, version in
            (line.partition("==") for line in lines if line)}


def test_the_image_pins_every_package_the_wheel_needs(installed: Installed) -> None:
    frozen = subprocess.run([str(installed.venv / "bin" / "python"), "-m", "pip", "freeze", "--exclude", "incident-bot"],
                            capture_output=True, text=True, check=True).stdout
    resolved = dict(line.lower().replace("_", "-").split("==") for line in frozen.split() if "==" in line)
    pinned = pins()
    assert set(resolved) <= set(pinned), f"installed but not pinned for the image: {sorted(set(resolved) - set(pinned))}"
    assert all(resolved[name] == pinned[name] for name in resolved)


def test_the_image_s_healthcheck_passes_against_the_service_started_as_the_image_starts_it(
        installed: Installed) -> None:
    dockerfile = DOCKERFILE.read_text()
    env = dict(re.findall(r"(INCIDENT_BOT_\w+)=(\S+)", dockerfile.split("ENV PATH", 1)[1].split("WORKDIR")[0]))
    assert env["INCIDENT_BOT_HOST"] == "0.0.0.0"
    port = free_port()
    env.update(INCIDENT_BOT_PORT=str(port), INCIDENT_BOT_API_TOKEN="image-test-token",
               INCIDENT_BOT_DATABASE_URL=f"sqlite:///{installed.workdir / 'image.db'}")
    log = installed.workdir / "image.log"
    with log.open("w") as out:
        proc = subprocess.Popen([installed.cli, "serve"], cwd=installed.workdir, env=installed.env(**env),
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait(lambda: serving(f"http://127.0.0.1:{port}") or proc.poll() is not None, timeout=60)
        healthcheck = json.loads(re.search(r"HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])", dockerfile).group(1))
        healthcheck[0] = str(installed.venv / "bin" / "python")
        assert subprocess.run(healthcheck, env=installed.env(**env), timeout=30).returncode == 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    first = json.loads(next(line for line in log.read_text().splitlines() if "listening on" in line))
    assert first["message"].startswith(f"incident-bot listening on http://0.0.0.0:{port}")  # JSON logs, as in the image


def test_the_dockerfile_builds_in_stages_and_runs_as_non_root() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) == 2 and "AS build" in dockerfile
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", dockerfile, re.M)
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)  # numeric: runAsNonRoot can verify it
    assert "-r /tmp/requirements.txt" in dockerfile and "--no-deps" in dockerfile
    assert "HEALTHCHECK" in dockerfile
