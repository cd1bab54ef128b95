"""Who a throttle targets: parsing a subject and refusing the ones that must never be throttled.

Accepted forms: ``user:NAME``, ``group:NAME``, ``serviceaccount:NS/NAME``
(``sa:NS/NAME``), the apiserver's own ``system:serviceaccount:NS:NAME``, or a
bare user name as diagnosis reports it from the APF dump.  Refused:
``system:masters`` (exempt anyway), nodes, the control plane's own users,
kube-system service accounts, and groups that mean "everyone".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from integrations.clients.kubernetes.apf import RequestAttributes

FORBIDDEN_GROUPS = frozenset({
    "system:masters", "system:nodes", "system:authenticated", "system:unauthenticated",
    "system:serviceaccounts", "system:serviceaccounts:kube-system", "system:bootstrappers",
})
FORBIDDEN_USERS = frozenset({
    "system:kube-controller-manager", "system:kube-scheduler", "system:apiserver", "system:kube-proxy",
    "system:anonymous",
})
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        if self.kind == "ServiceAccount":
            return f"serviceaccount:{self.namespace}/{self.name}"
        return f"{self.kind.lower()}:{self.name}"

    def manifest(self) -> dict[str, Any]:
        if self.kind == "User":
            return {"kind": "User", "user": {"name": self.name}}
        if self.kind == "Group":
            return {"kind": "Group", "group": {"name": self.name}}
        return {"kind": "ServiceAccount", "serviceAccount": {"namespace": self.namespace, "name": self.name}}

    def probe_identity(self) -> tuple[str, tuple[str, ...]]:
        """A user (and groups) whose requests this subject matches: for impersonated verification."""
        if self.kind == "User":
            return self.name, ()
        if self.kind == "Group":
            return "incident-bot:throttle-probe", (self.name,)
        return f"system:serviceaccount:{self.namespace}:{self.name}", ()

    def request(self, **kwargs: Any) -> RequestAttributes:
        user, groups = self.probe_identity()
        return RequestAttributes.for_user(user, groups, **kwargs)


def parse_subject(text: str) -> Subject:
    """A Subject, or ValueError with a sentence saying what is accepted or why it is refused."""
    raw = (text or "").strip()
    low = raw.lower()
    if low.startswith("system:serviceaccount:"):
        parts = raw.split(":")
        if len(parts) != 4:
            raise ValueError(f"`{raw}` is not system:serviceaccount:NAMESPACE:NAME")
        subject = Subject("ServiceAccount", parts[3], parts[2])
    elif ":" in raw and low.split(":", 1)[0] in ("user", "group", "serviceaccount", "sa"):
        kind, _, rest = raw.partition(":")
        kind = kind.lower()
        if kind in ("serviceaccount", "sa"):
            ns, _, name = rest.partition("/")
            if not ns or not name:
                raise ValueError(f"a service account is serviceaccount:NAMESPACE/NAME, not `{raw}`")
            subject = Subject("ServiceAccount", name, ns)
        else:
            subject = Subject("User" if kind == "user" else "Group", rest)
    elif raw and " " not in raw:
        subject = Subject("User", raw)
    else:
        raise ValueError("expected user:NAME, group:NAME or serviceaccount:NAMESPACE/NAME")
    refuse(subject)
    return subject


def refuse(subject: Subject) -> None:
    if not subject.name or subject.name == "*":
        raise ValueError(f"`{subject}` would throttle every client of its kind; name one client")
    if subject.kind == "Group" and subject.name in FORBIDDEN_GROUPS:
        raise ValueError(f"the group {subject.name} must never be throttled (the control plane or everyone "
                         f"depends on it)")
    if subject.kind == "User" and (subject.name in FORBIDDEN_USERS or subject.name.startswith("system:node:")):
        raise ValueError(f"the user {subject.name} is part of the control plane and must never be throttled")
    if subject.kind == "ServiceAccount":
        if subject.namespace == "kube-system":
            raise ValueError("kube-system service accounts run the control plane and must never be throttled")
        for part in (subject.namespace, subject.name):
            if not _DNS.match(part):
                raise ValueError(f"`{part}` is not a valid namespace or service account name")


def normalise(text: Any) -> str:
    """For ``Param.check``: the canonical text form of a subject."""
    return str(parse_subject(str(text)))
