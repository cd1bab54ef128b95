"""Schema validation of manifests with kubernetes-validate (no apiserver needed).

``kubernetes_validate.validate(data, desired_version, strict)`` checks a
manifest against the OpenAPI-derived JSON schema of one Kubernetes minor
version.  It does not know server-side rules (e.g. matchingPrecedence range):
the playbooks add their own semantic checks.  A missing schema (kind or
apiVersion not served by that version, e.g. flowcontrol v1beta3 on 1.32) is a
failure here, not a warning.

kubernetes-validate carries the schemas of every Kubernetes version (over
100 MB), so it is an extra (``incident-bot[validate]``).  Without it the
schema step is skipped and said so (``SCHEMA_UNCHECKED``); the semantic checks
still run and the apiserver's server-side dry run, a step of every playbook
that writes, still refuses an invalid object before anything changes.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from bot.core.errors import BadInput

SCHEMA_UNCHECKED = "not checked here (pip install 'incident-bot[validate]'); the server-side dry run checks it"


def _field_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def validate_manifest(manifest: Mapping[str, Any], kubernetes_version: str, *, strict: bool = True) -> str:
    """Validate; return the schema version used ("1.30"), or raise ``BadInput`` naming the field."""
    if not isinstance(manifest, Mapping):
        raise BadInput("a manifest must be a mapping", field="manifest")
    for key in ("apiVersion", "kind"):
        if not manifest.get(key):
            raise BadInput(f"the manifest has no {key}", field=key)
    version = str(kubernetes_version).lstrip("v")
    m = re.match(r"^(\d+)\.(\d+)", version)
    if not m:
        raise BadInput(f"{kubernetes_version!r} is not a Kubernetes version like 1.30", field="kubernetes_version")
    version = f"{m.group(1)}.{m.group(2)}"
    name = (manifest.get("metadata") or {}).get("name", "?")
    what = f"{manifest['kind']} {name} ({manifest['apiVersion']})"
    try:
        import kubernetes_validate
    except ImportError:
        return SCHEMA_UNCHECKED
    try:
        return kubernetes_validate.validate(dict(manifest), version, strict=strict)
    except kubernetes_validate.ValidationError as e:
        path = _field_path(e.path)
        raise BadInput(f"{what} is invalid for Kubernetes {version}: {path}: {e.message}", field=path) from e
    except kubernetes_validate.SchemaNotFoundError as e:
        raise BadInput(f"{what}: Kubernetes {version} has no schema for kind {manifest['kind']} "
                       f"in {manifest['apiVersion']}", field="apiVersion") from e
    except kubernetes_validate.utils.VersionNotSupportedError as e:
        raise BadInput(f"{what}: kubernetes-validate has no schemas for Kubernetes {version}",
                       field="kubernetes_version") from e
