"""Settings: one YAML file, every value overridable from the environment.

Precedence: built-in defaults < YAML file (``--config`` or
``INCIDENT_BOT_CONFIG``) < environment.  Any leaf setting can be set with
``INCIDENT_BOT_<PATH>`` where the path is upper-cased and joined by ``__``
(``INCIDENT_BOT_BUDGETS__SEV1__NOTIFY=30``); the well-known names of
design.md (``SLACK_BOT_TOKEN``, ``PROMETHEUS_URL``, ...) are aliases.

A bad value stops the bot at start with one line naming the setting and what
was expected; secrets are ``SecretStr`` so they never appear in a repr or log.
Every variable may instead name a file holding the value (``NAME_FILE``, e.g.
``SLACK_BOT_TOKEN_FILE=/run/secrets/slack-bot-token``), as Kubernetes Secrets
and Docker secrets are mounted.  An ``INCIDENT_BOT_*`` variable that names no
setting is warned about and ignored: a stray variable in a pod's environment
must not keep the bot from starting in the middle of an incident.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.core.config.settings import Settings
from bot.core.errors import ConfigError

log = logging.getLogger(__name__)


# Names from design.md that map onto setting paths.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "INCIDENT_BOT_DATABASE_URL": ("database_url",),
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "SLACK_API_URL": ("slack", "api_url"),
    "KUBECONFIG": ("kubeconfig",),
    "PROMETHEUS_URL": ("prometheus_url",),
    "ALERTMANAGER_URL": ("alertmanager_url",),
    "INCIDENT_BOT_WEBHOOK_TOKEN": ("webhook_token",),
    "INCIDENT_BOT_API_TOKEN": ("api_token",),
}
ENV_PREFIX = "INCIDENT_BOT_"
_NOT_SETTINGS = {"INCIDENT_BOT_CONFIG"}
FILE_SUFFIX = "_FILE"


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _env_value(raw: str) -> Any:
    """Environment values are read as YAML scalars/flow collections ("30", "[a, b]")."""
    try:
        return yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return raw


def _read_files(environ: dict[str, str]) -> dict[str, str]:
    """``NAME_FILE=/path`` becomes ``NAME=<the file's content>`` (a trailing newline dropped).

    Only for names that are settings (aliases or ``INCIDENT_BOT_*``); setting
    both ``NAME`` and ``NAME_FILE`` is ambiguous and refused.
    """
    out = dict(environ)
    for name, path in environ.items():
        base = name[: -len(FILE_SUFFIX)]
        if not name.endswith(FILE_SUFFIX) or not (base in ENV_ALIASES or base.startswith(ENV_PREFIX)):
            continue
        if base in environ:
            raise ConfigError(f"{name}: {base} is set too; set one of them")
        try:
            out[base] = Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
        del out[name]
    return out


def _known_path(path: tuple[str, ...]) -> bool:
    """Does ``path`` name a setting (or lie inside a free-form mapping such as ``clusters``)?"""
    import types
    import typing

    node: Any = Settings
    for part in path:
        if node is Any:
            return True
        while typing.get_origin(node) in (typing.Union, types.UnionType):
            node = next((a for a in typing.get_args(node) if a is not type(None)), Any)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            if field is None:
                return False
            node = field.annotation
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        else:
            return False
    return True


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if name in ENV_ALIASES:
            path = ENV_ALIASES[name]
            value: Any = raw if path[-1] in {"database_url", "api_url"} or "token" in path[-1] or "secret" in path[-1] else _env_value(raw)
            _set_path(tree, path, value)
        elif name.startswith(ENV_PREFIX) and name not in _NOT_SETTINGS:
            path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__") if part)
            if path and not _known_path(path):
                log.warning("environment variable %s names no setting (%s); ignored", name, ".".join(path))
            elif path:
                _set_path(tree, path, _env_value(raw))
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(error: ErrorDetails) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown setting"
    return f"{path}: {msg}"


def load_settings(path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the YAML file (if any) and the environment into validated ``Settings``."""
    environ = _read_files(dict(os.environ if environ is None else environ))
    path = path or environ.get("INCIDENT_BOT_CONFIG")
    data: dict[str, Any] = {}
    if path:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {file}: not found")
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {file}: expected a mapping of settings at the top level")
        data = loaded
    data = _merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"bad setting {_describe(first)}{more}") from None
