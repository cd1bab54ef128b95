"""Kubernetes apiserver client (official ``kubernetes`` package), APF helpers, validation, fake."""

from integrations.clients.kubernetes.apf import (
    ApfRequest,
    RequestAttributes,
    UserLoad,
    flow_schema_conditions,
    is_dangling,
    matching_flow_schema,
    parse_dump_requests,
    top_users,
)
from integrations.clients.kubernetes.client import Classification, KubernetesClient, Timed, WriteProbeResult, connect
from integrations.clients.kubernetes.transport import Health, KubernetesApiError, KubernetesTimeout
from integrations.clients.kubernetes.fake import FakeKubernetes
from integrations.clients.kubernetes.validate import validate_manifest

__all__ = [
    "apf",  # the APF module itself: its shortcuts and parsing are used by the throttle-client playbook
    "ApfRequest", "Classification", "FakeKubernetes", "Health", "KubernetesApiError", "KubernetesClient",
    "KubernetesTimeout", "RequestAttributes", "Timed", "UserLoad", "WriteProbeResult", "connect",
    "flow_schema_conditions", "is_dangling", "matching_flow_schema", "parse_dump_requests", "top_users",
    "validate_manifest",
]
