"""API Priority and Fairness shortcuts, written once over the generic object operations.

Both the real client and its fake provide ``flowcontrol_api_version`` and the
generic ``list_objects``/``get_object``/``create_object``/``delete_object``; the
FlowSchema and PriorityLevelConfiguration calls are the same thin layer on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FLOW_SCHEMA = "FlowSchema"
PRIORITY_LEVEL = "PriorityLevelConfiguration"


class ApfShortcuts:
    """Mixin: FlowSchema / PriorityLevelConfiguration in the flowcontrol version the cluster serves."""

    @property
    def flowcontrol_api_version(self) -> str:
        """``flowcontrol.apiserver.k8s.io/<version>``: the version the cluster serves (each client asks its way)."""
        raise NotImplementedError

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None,
                     label_selector: str | None = None) -> list[dict]:
        raise NotImplementedError

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        raise NotImplementedError

    def create_object(self, manifest: Mapping[str, Any], *, exist_ok: bool = False,
                      dry_run: bool = False) -> dict:
        raise NotImplementedError

    def delete_object(self, api_version: str, kind: str, name: str, namespace: str | None = None,
                      *, missing_ok: bool = True) -> bool:
        raise NotImplementedError

    def _apf_body(self, kind: str, body: Mapping[str, Any]) -> dict:
        """``body`` with apiVersion/kind set to the served flowcontrol version."""
        return {**body, "apiVersion": self.flowcontrol_api_version, "kind": kind}

    def list_flow_schemas(self, label_selector: str | None = None) -> list[dict]:
        return self.list_objects(self.flowcontrol_api_version, FLOW_SCHEMA, label_selector=label_selector)

    def get_flow_schema(self, name: str) -> dict | None:
        return self.get_object(self.flowcontrol_api_version, FLOW_SCHEMA, name)

    def create_flow_schema(self, body: Mapping[str, Any], *, exist_ok: bool = False,
                           dry_run: bool = False) -> dict:
        return self.create_object(self._apf_body(FLOW_SCHEMA, body), exist_ok=exist_ok, dry_run=dry_run)

    def delete_flow_schema(self, name: str, *, missing_ok: bool = True) -> bool:
        return self.delete_object(self.flowcontrol_api_version, FLOW_SCHEMA, name, missing_ok=missing_ok)

    def list_priority_levels(self, label_selector: str | None = None) -> list[dict]:
        return self.list_objects(self.flowcontrol_api_version, PRIORITY_LEVEL, label_selector=label_selector)

    def get_priority_level(self, name: str) -> dict | None:
        return self.get_object(self.flowcontrol_api_version, PRIORITY_LEVEL, name)

    def create_priority_level(self, body: Mapping[str, Any], *, exist_ok: bool = False,
                              dry_run: bool = False) -> dict:
        return self.create_object(self._apf_body(PRIORITY_LEVEL, body), exist_ok=exist_ok, dry_run=dry_run)

    def delete_priority_level(self, name: str, *, missing_ok: bool = True) -> bool:
        return self.delete_object(self.flowcontrol_api_version, PRIORITY_LEVEL, name, missing_ok=missing_ok)
