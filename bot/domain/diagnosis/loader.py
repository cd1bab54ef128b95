"""The procedure grammar: one SOP's YAML text becomes a ``Procedure``, or every problem with its line.

Everything wrong in a file is reported at once — unknown keys, missing fields, wrong types,
unknown check kinds, branches to nowhere, cycles in the tree, jinja2 syntax errors — through
the collecting validator of ``validation``; the files and the choice among procedures are in
``library``.

Format (one procedure per file, ``sop/<name>.yaml``)::

    name: apiserver-overload            # default: the file name
    title: Apiserver overloaded by one client
    priority: 0                         # breaks ties between procedures that fit equally
    applies_to: {alerts: [..], labels: {k: v}, components: [..], fallback: false}
    vars: {threshold: 1}                # constants for templates
    checks:                             # run in this order
      - {id: rejected, kind: promql, query: "sum(rate(...[1m]))", timeout: 5}
    tree:
      start: rejecting
      nodes:
        rejecting: {when: "checks.rejected.sum > vars.threshold", then: .., else: .., unknown: ..}
    conclusions:
      throttle: {cause: "{{ checks.top.top.user }} floods the apiserver",
                 playbook: {name: throttle-client, params: {user: "{{ checks.top.top.user }}"}}}
      escalate: {cause: "no single client stands out", escalate: true}
"""

from __future__ import annotations

from typing import Any

import yaml

from bot.domain.diagnosis import templating
from bot.domain.diagnosis.checks import COMMON_FIELDS, KINDS
from bot.domain.diagnosis.model import AppliesTo, Check, Conclusion, Node, PlaybookBinding, Procedure, Repeat
from bot.domain.diagnosis.validation import Composed, Path_, Problem, ProcedureError, Validator, brackets_problem, kind_of

TOP_KEYS = ("name", "title", "description", "priority", "applies_to", "vars", "checks", "tree", "conclusions")


def parse(text: str, file: str, *, default_name: str | None = None) -> Procedure:
    """Validate one procedure's YAML text; raises ``ProcedureError`` listing every problem."""
    composer = Composed()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise ProcedureError([Problem(file, line, f"not valid YAML: {reason}")]) from None
    if node is None:
        raise ProcedureError([Problem(file, 1, "the file is empty; a procedure needs checks, a tree and conclusions")])
    data = composer.value(node, ())
    v = Validator(file, composer.lines)
    for line, message in composer.problems:
        v.problems.append(Problem(file, line, message))
    doc = v.mapping(data, (), "a procedure")
    v.keys(doc, (), TOP_KEYS, ("checks", "tree", "conclusions"))
    name = doc.get("name", default_name)
    if name is not None and v.typed(name, ("name",), "str") and not str(name).strip():
        v.fail(("name",), "`name` must not be empty")
    for key in ("title", "description"):
        if key in doc:
            v.typed(doc[key], (key,), "str")
    priority = doc.get("priority", 0)
    if not v.typed(priority, ("priority",), "int"):
        priority = 0

    applies = _applies_to(v, doc.get("applies_to", {}))
    vars_ = v.mapping(doc.get("vars", {}) or {}, ("vars",), "name: value")
    v.template(vars_, ("vars",))
    checks = _checks(v, doc.get("checks"))
    check_ids = [c.id for c in checks]
    conclusions = _conclusions(v, doc.get("conclusions"), set(check_ids))
    start, nodes = _tree(v, doc.get("tree"), check_ids, set(conclusions))
    for c in checks:  # a check's templates may only use checks that ran before it
        for used in templating.referenced_checks_in(c.params):
            if used not in check_ids:
                v.fail(("checks", check_ids.index(c.id)), f"check `{c.id}` uses `checks.{used}`, which is not a check")
            elif check_ids.index(used) >= check_ids.index(c.id):
                v.fail(("checks", check_ids.index(c.id)),
                       f"check `{c.id}` uses `checks.{used}`, which runs after it; order the checks")
    if v.problems:
        v.problems.sort(key=lambda p: p.line)
        raise ProcedureError(v.problems)
    return Procedure(name=str(name or "unnamed"), title=str(doc.get("title") or name), path=file,
                     applies_to=applies, checks=tuple(checks), start=start, nodes=nodes, conclusions=conclusions,
                     vars=vars_, priority=int(priority), description=str(doc.get("description") or ""))


def _applies_to(v: Validator, raw: Any) -> AppliesTo:
    path = ("applies_to",)
    data = v.mapping(raw or {}, path, "alerts, labels, components, fallback")
    v.keys(data, path, ("alerts", "labels", "components", "fallback"))
    alerts = data.get("alerts", [])
    components = data.get("components", [])
    labels = v.mapping(data.get("labels", {}) or {}, path + ("labels",), "label: value")
    fallback = data.get("fallback", False)
    ok_alerts = v.typed(alerts, path + ("alerts",), "names")
    ok_components = v.typed(components, path + ("components",), "names")
    v.typed(fallback, path + ("fallback",), "bool")
    for key, value in labels.items():
        if not isinstance(value, (str, int, float, bool)):
            v.fail(path + ("labels", key), f"label `{key}` must be a plain value")
    if not (alerts or components or labels or fallback is True):
        v.fail(path, "`applies_to` must name alerts, labels or components (or say `fallback: true`)")
    return AppliesTo(tuple(alerts) if ok_alerts else (), {str(k): str(x) for k, x in labels.items()},
                     tuple(components) if ok_components else (), fallback is True)


def _checks(v: Validator, raw: Any) -> list[Check]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        v.fail(("checks",), "`checks` must be a non-empty list of checks")
        return []
    out: list[Check] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        path = ("checks", i)
        data = v.mapping(item, path, "a check with id and kind")
        if not data:
            continue
        cid, kind = data.get("id"), data.get("kind")
        if not isinstance(cid, str) or not cid.isidentifier():
            v.fail(path + ("id",), f"check #{i + 1} needs an `id` that is a word (letters, digits, _), "
                                   f"not {kind_of(cid)}")
            cid = f"check{i + 1}"
        elif cid in seen:
            v.fail(path + ("id",), f"check id `{cid}` is used twice")
        seen.add(cid)
        if kind not in KINDS:
            v.fail(path + ("kind",) if "kind" in data else path,
                   f"check `{cid}`: unknown kind {kind!r}; expected one of: {', '.join(KINDS)}"
                   if kind is not None else f"check `{cid}`: missing field `kind` ({', '.join(KINDS)})")
            continue
        spec = KINDS[kind]
        v.keys(data, path, COMMON_FIELDS + tuple(spec.fields),
               [f for f, d in spec.fields.items() if d.required])
        params: dict[str, Any] = {}
        for fname, fdef in spec.fields.items():
            if fname not in data:
                continue
            value = data[fname]
            if v.typed(value, path + (fname,), fdef.type) and fdef.choices and not templating.is_template(value) \
                    and value not in fdef.choices:
                v.fail(path + (fname,), f"check `{cid}`: `{fname}` must be one of {', '.join(fdef.choices)}, "
                                        f"not {value!r}")
            v.template(value, path + (fname,))
            params[fname] = value
        op = params.get("op")
        if spec.ops and isinstance(op, str) and op in spec.ops:
            for needed in spec.ops[op]:
                if needed not in params:
                    v.fail(path, f"check `{cid}`: op `{op}` needs the field `{needed}`")
        if kind == "promql" and isinstance(params.get("query"), str):
            unbalanced = brackets_problem(params["query"])
            if unbalanced:
                v.fail(path + ("query",), f"check `{cid}`: the PromQL query {unbalanced}")
        if kind == "http" and "url" not in params and "urls" not in params:
            v.fail(path, f"check `{cid}`: an http check needs `url` or `urls`")
        for dur in ("range", "step"):
            if isinstance(params.get(dur), str) and not templating.is_template(params[dur]):
                try:
                    templating.parse_duration(params[dur])
                except ValueError:
                    v.fail(path + (dur,), f"check `{cid}`: `{dur}` must be a duration like 30s, 5m or 1h")
        timeout = data.get("timeout")
        if timeout is not None and (not v.typed(timeout, path + ("timeout",), "number") or timeout <= 0):
            if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
                v.fail(path + ("timeout",), f"check `{cid}`: `timeout` must be more than 0 seconds")
            timeout = None
        description = data.get("description", "")
        if description:
            v.typed(description, path + ("description",), "str")
        repeat = _repeat(v, data.get("repeat"), path + ("repeat",), cid) if "repeat" in data else None
        out.append(Check(cid, kind, params, str(description or ""), float(timeout) if timeout else None,
                         v.line(path), repeat))
    return out


def _repeat(v: Validator, raw: Any, path: Path_, cid: str) -> Repeat | None:
    body = v.mapping(raw, path, "until, times, every")
    if not body:
        return None
    v.keys(body, path, ("until", "times", "every"), ("until",))
    until, times, every = body.get("until"), body.get("times", 3), body.get("every", "1s")
    ok = isinstance(until, str) and v.typed(times, path + ("times",), "int")
    if isinstance(until, str):
        v.template(until, path + ("until",), expression=True)
    elif "until" in body:
        v.fail(path + ("until",), f"check `{cid}`: `repeat.until` must be an expression over `result`")
    if isinstance(times, int) and not isinstance(times, bool) and not 1 <= times <= 30:
        v.fail(path + ("times",), f"check `{cid}`: `repeat.times` must be between 1 and 30")
        ok = False
    try:
        seconds = templating.parse_duration(str(every))
    except ValueError:
        v.fail(path + ("every",), f"check `{cid}`: `repeat.every` must be a duration like 500ms or 1s")
        ok = False
    return Repeat(str(until), int(times), seconds) if ok else None


def _conclusions(v: Validator, raw: Any, check_ids: set[str]) -> dict[str, Conclusion]:
    if raw is None:
        return {}
    path = ("conclusions",)
    data = v.mapping(raw, path, "conclusion id: {cause, playbook | escalate}")
    out: dict[str, Conclusion] = {}
    for cid, item in data.items():
        cpath = path + (cid,)
        body = v.mapping(item, cpath, "cause and playbook or escalate")
        if not body:
            continue
        v.keys(body, cpath, ("cause", "playbook", "escalate"), ("cause",))
        cause = body.get("cause", "")
        if "cause" in body:
            v.typed(cause, cpath + ("cause",), "str")
            v.template(cause, cpath + ("cause",))
        escalate = body.get("escalate", False)
        v.typed(escalate, cpath + ("escalate",), "bool")
        binding = None
        if "playbook" in body:
            pb = v.mapping(body["playbook"], cpath + ("playbook",), "name and params")
            v.keys(pb, cpath + ("playbook",), ("name", "params"), ("name",))
            name = pb.get("name")
            params = v.mapping(pb.get("params", {}) or {}, cpath + ("playbook", "params"), "name: value")
            v.template(params, cpath + ("playbook", "params"))
            if isinstance(name, str) and name:
                binding = PlaybookBinding(name, params)
            elif "name" in pb:
                v.fail(cpath + ("playbook", "name"), f"conclusion `{cid}`: the playbook name must be a word")
        if binding is not None and escalate is True:
            v.fail(cpath, f"conclusion `{cid}` binds a playbook and escalates; choose one")
        elif binding is None and escalate is not True and "playbook" not in body:
            v.fail(cpath, f"conclusion `{cid}` needs `playbook` (name and params) or `escalate: true`")
        for used in templating.referenced_checks_in(body.get("cause")) | templating.referenced_checks_in(body.get("playbook")):
            if used not in check_ids:
                v.fail(cpath, f"conclusion `{cid}` uses `checks.{used}`, which is not a check")
        out[str(cid)] = Conclusion(str(cid), str(cause or ""), binding, escalate is True, v.line(cpath))
    if not out and not v.problems:
        v.fail(path, "`conclusions` must list at least one conclusion")
    return out


def _tree(v: Validator, raw: Any, check_ids: list[str], conclusions: set[str]) -> tuple[str, dict[str, Node]]:
    if raw is None:
        return "", {}
    path = ("tree",)
    data = v.mapping(raw, path, "start and nodes")
    v.keys(data, path, ("start", "nodes"), ("start", "nodes"))
    raw_nodes = v.mapping(data.get("nodes", {}) or {}, path + ("nodes",), "node id: {when, then, else, unknown}")
    nodes: dict[str, Node] = {}
    for nid, item in raw_nodes.items():
        npath = path + ("nodes", nid)
        body = v.mapping(item, npath, "when, then, else, unknown")
        if not body:
            continue
        v.keys(body, npath, ("when", "then", "else", "unknown", "description"), ("when", "then", "else", "unknown"))
        if nid in conclusions:
            v.fail(npath, f"`{nid}` is both a node and a conclusion; give them different names")
        when = body.get("when")
        used: set[str] = set()
        if isinstance(when, (str, bool)):
            when = str(when).lower() if isinstance(when, bool) else when
            v.template(when, npath + ("when",), expression=True)
            used = templating.referenced_checks(when, expression=True)
            for ref in sorted(used - set(check_ids)):
                v.fail(npath + ("when",), f"node `{nid}` uses `checks.{ref}`, which is not a check")
        elif "when" in body:
            v.fail(npath + ("when",), f"node `{nid}`: `when` must be an expression (a string)")
        targets = {}
        for branch in ("then", "else", "unknown"):
            target = body.get(branch)
            if target is None:
                continue
            if not isinstance(target, str):
                hint = " (YAML reads yes/no/on/off as true/false: quote the name)" if isinstance(target, bool) else ""
                v.fail(npath + (branch,), f"node `{nid}`: `{branch}` must name a node or a conclusion{hint}")
            elif target not in raw_nodes and target not in conclusions:
                v.fail(npath + (branch,), f"node `{nid}`: `{branch}` goes to `{target}`, which is neither a node "
                                          f"nor a conclusion")
            targets[branch] = str(target)
        nodes[str(nid)] = Node(str(nid), str(when or "false"), targets.get("then", ""), targets.get("else", ""),
                               targets.get("unknown", ""), tuple(sorted(used)), v.line(npath))
    start = data.get("start")
    if "start" in data:
        if not isinstance(start, str) or (start not in raw_nodes and start not in conclusions):
            v.fail(path + ("start",), f"`tree.start` is {start!r}, which is neither a node nor a conclusion")
    cycle = _find_cycle(nodes, str(start or ""))
    if cycle:
        v.fail(path + ("nodes", cycle[0]), "the tree loops: " + " → ".join(cycle))
    return str(start or ""), nodes


def _find_cycle(nodes: dict[str, Node], start: str) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(nid: str, trail: list[str]) -> list[str] | None:
        if nid not in nodes:
            return None
        if state.get(nid) == 1:
            return trail[trail.index(nid):] + [nid]
        if state.get(nid) == 2:
            return None
        state[nid] = 1
        for target in (nodes[nid].then, nodes[nid].else_, nodes[nid].unknown):
            found = visit(target, trail + [nid])
            if found:
                return found
        state[nid] = 2
        return None

    for nid in [start] + list(nodes):
        found = visit(nid, [])
        if found:
            return found
    return None
