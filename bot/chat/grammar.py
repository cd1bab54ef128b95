"""The chat grammar, declared once: parsing, usage lines and help come from here.

The same words work in Slack (``/incident …``) and in the console.  A verb
declares its positional arguments, its options and whether it takes an
incident reference; the parser turns a line into a ``Command`` or raises
``BadInput`` carrying the verb's usage line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from bot.core.errors import BadInput

INC_RE = re.compile(r"^INC-\d+$", re.IGNORECASE)
RUN_RE = re.compile(r"^(?:RUN-)?\d+$", re.IGNORECASE)
MENTION_RE = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$|^@([\w.\-]+)$")
PARAM_RE = re.compile(r"^([A-Za-z_][\w.\-]*)=(.*)$")


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str = "word"  # word | text (rest of the line) | user | params (k=v ...) | run | incident (INC-n)
    required: bool = True

    def usage(self) -> str:
        shown = {"text": f"<{self.name}>", "user": "<@user>", "params": "[k=v ...]", "run": "<RUN>",
                 "incident": "<INC>"}.get(
            self.kind, f"<{self.name}>"
        )
        if self.kind == "params":
            return shown
        return shown if self.required else f"[{shown.strip('<>')}]"


@dataclass(frozen=True)
class Option:
    name: str
    metavar: str
    choices: tuple[str, ...] = ()
    flag: bool = False  # takes no value (``--all``)

    def usage(self) -> str:
        if self.flag:
            return f"[--{self.name}]"
        return f"[--{self.name} {'|'.join(self.choices) if self.choices else self.metavar}]"


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str
    args: tuple[Arg, ...] = ()
    options: tuple[Option, ...] = ()
    takes_incident: bool = True
    details: str = ""

    def usage(self) -> str:
        parts = [f"/incident {self.name}"]
        parts += [a.usage() for a in self.args]
        if self.takes_incident:
            parts.append("[INC]")
        parts += [o.usage() for o in self.options]
        return " ".join(parts)


SEVERITY = Option("severity", "SEV", ("sev1", "sev2", "sev3"))
FORMAT = Option("format", "FMT", ("md", "json", "html"))

VERBS: tuple[Verb, ...] = (
    Verb("declare", "open an incident (pages the on-call commander)", (Arg("title", "text"),),
         (SEVERITY, Option("cluster", "NAME")), takes_incident=False),
    Verb("list", "active incidents; --all adds finished ones, the rest filter (text searches titles, causes, notes)",
         (Arg("text", "text", False),),
         (Option("all", "", flag=True), Option("since", "7d|YYYY-MM-DD"), Option("cluster", "NAME"),
          Option("state", "STATE")), takes_incident=False),
    Verb("status", "state, roles and the three clocks (time left, met, breached)"),
    Verb("timeline", "everything that happened, in order"),
    Verb("help", "this help, or one verb's usage", (Arg("verb", "word", required=False),), takes_incident=False),
    Verb("ack", "take the incident: you become its commander"),
    Verb("assign", "give someone a role", (Arg("role", "word"), Arg("user", "user")),
         details="roles: commander, scribe, responder"),
    Verb("note", "add a note to the timeline", (Arg("text", "text"),)),
    Verb("cause", "record the root cause (-> diagnosed)", (Arg("text", "text"),)),
    Verb("action", "add a post-incident action item (`action done N` closes one)", (Arg("text", "text"),),
         details="owner, due date and priority go after the text: `/incident action add an etcd fsync alert "
                 "@dave due 2026-12-15 p1` (priority p1, p2 (default) or p3)"),
    Verb("impact", "post-mortem: who or what was affected, and how long", (Arg("text", "text"),)),
    Verb("factor", "post-mortem: a contributing factor", (Arg("text", "text"),)),
    Verb("went-well", "post-mortem: something that went well", (Arg("text", "text"),)),
    Verb("lesson", "post-mortem: a lesson learned", (Arg("text", "text"),)),
    Verb("diagnose", "run (or re-run) the diagnosis procedures", options=(Option("sop", "NAME"), Option("cluster", "NAME"))),
    Verb("evidence", "what the control plane looked like at T0, and what changed in the 30 minutes before"),
    Verb("plan", "dry-run a playbook: what would change", (Arg("playbook", "word"), Arg("params", "params", False)),
         (Option("cluster", "NAME"),), details="--cluster picks one cluster of a fleet incident (default: its first)"),
    Verb("run", "plan a playbook and ask for approval", (Arg("playbook", "word"), Arg("params", "params", False)),
         (Option("cluster", "NAME"),), details="--cluster picks one cluster of a fleet incident (default: its first)"),
    Verb("approve", "approve a planned run", (Arg("run", "run"),), (Option("plan", "HASH"),), takes_incident=False,
         details="--plan names the plan you read (its hash, as the request shows it): if the plan changed since, "
                 "nothing is approved"),
    Verb("reject", "reject a planned run", (Arg("run", "run"), Arg("reason", "text", False)), takes_incident=False),
    Verb("abort", "stop a running playbook at the next step boundary", (Arg("run", "run"),), takes_incident=False),
    Verb("mitigated", "recovery verified (-> mitigated)", (Arg("text", "text", False),)),
    Verb("resolve", "the incident is over (-> resolved)"),
    Verb("reopen", "it came back (-> diagnosing)", (Arg("reason", "text", False),)),
    Verb("cancel", "a false positive (-> cancelled)", (Arg("reason", "text", False),)),
    Verb("close", "the review is done (-> closed)"),
    Verb("export", "the post-mortem document", options=(FORMAT, Option("tz", "ZONE")),
         details="times in UTC unless --tz names an IANA zone, e.g. --tz Europe/Berlin"),
    Verb("severity", "change the severity (the clocks' budgets follow)", (Arg("severity", "word"),),
         details="severity: sev1, sev2 or sev3"),
    Verb("title", "change the title", (Arg("text", "text"),)),
    Verb("merge", "merge an incident into another (its timeline joins; it closes as merged)",
         (Arg("into", "incident"), Arg("incident", "incident", False)), takes_incident=False,
         details="`/incident merge INC-3` inside INC-5 folds INC-5 into INC-3; elsewhere `/incident merge INC-3 INC-5`"),
    Verb("link", "record that two incidents are related", (Arg("other", "incident"), Arg("incident", "incident", False)),
         takes_incident=False),
    Verb("split", "move a cluster of a fleet incident out into an incident of its own", (Arg("cluster", "word"),)),
    Verb("cluster", "one cluster of a fleet incident reached a stage on its own",
         (Arg("cluster", "word"), Arg("stage", "word"), Arg("text", "text", False)),
         details="stage: diagnosed (with the cause) or mitigated, e.g. `/incident cluster prod-eu-2 diagnosed etcd disk full`"),
    Verb("oncall", "who is on call now and next (a team, this incident's team, or every team)",
         (Arg("team", "word", False),), takes_incident=False),
    Verb("slo", "error budget left per cluster and objective (pod creation, availability, API latency)",
         options=(Option("cluster", "NAME"), Option("window", "30d")), takes_incident=False),
    Verb("freeze", "global kill switch: refuse new playbook runs, halt running ones",
         (Arg("reason", "text", False),), takes_incident=False),
    Verb("unfreeze", "lift the freeze", takes_incident=False),
    Verb("guard", "the admission guard: `status`, `allow <@user> <30m> [rule|*] [reason]` (an exception to the "
         "change freeze), `approve <N>`, `lift` (the mass-deletion breaker)",
         (Arg("action", "word"), Arg("rest", "text", False)),
         details="Exceptions are for one user on the incident's cluster for a time window; a critical rule needs "
                 "two approvers, never the excepted user. Only the commander lifts the breaker."),
)
BY_NAME = {v.name: v for v in VERBS}


@dataclass
class Command:
    verb: str
    args: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    incident: str | None = None
    raw: str = ""


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: fall back to plain words
        return text.split()


def strip_prefix(line: str) -> str:
    line = line.strip()
    if line.lower().startswith("/incident"):
        line = line[len("/incident"):].strip()
    return line


def parse(line: str) -> Command:
    """Parse one line of the grammar (with or without the ``/incident`` prefix)."""
    text = strip_prefix(line)
    tokens = _tokens(text)
    if not tokens:
        return Command("help", raw=line)
    name = tokens[0].lower()
    verb = BY_NAME.get(name)
    if verb is None:
        raise BadInput(f"unknown command `{tokens[0]}`. Try `/incident help`.", field="verb",
                       usage="/incident help [VERB]")
    command = Command(verb.name, raw=line)
    remaining = _take_options(verb, tokens[1:], command)  # options first (they may appear anywhere)

    # an incident reference: first or last token
    if verb.takes_incident and remaining:
        if INC_RE.match(remaining[-1]):
            command.incident = remaining.pop().upper()
        elif INC_RE.match(remaining[0]):
            command.incident = remaining.pop(0).upper()

    for arg in verb.args:
        if arg.kind == "text":
            value = " ".join(remaining)
            remaining = []
            if not value and arg.required:
                raise BadInput(f"`/incident {verb.name}` needs {arg.name}.", field=arg.name, usage=verb.usage())
            if value:
                command.args[arg.name] = value
        elif arg.kind == "params":
            for tok in remaining:
                match = PARAM_RE.match(tok)
                if not match:
                    raise BadInput(f"`{tok}` is not a parameter; write key=value.", field="params", usage=verb.usage())
                command.params[match.group(1)] = match.group(2)
            remaining = []
        elif remaining:
            command.args[arg.name] = _word(verb, arg, remaining.pop(0))
        elif arg.required:
            raise BadInput(f"`/incident {verb.name}` needs {arg.usage()}.", field=arg.name, usage=verb.usage())
    if remaining:
        raise BadInput(f"unexpected `{' '.join(remaining)}`.", usage=verb.usage())
    return command


def _take_options(verb: Verb, rest: list[str], command: Command) -> list[str]:
    """Store the ``--option value`` / ``--option=value`` / ``--flag`` tokens in ``command``; return the others."""
    remaining: list[str] = []
    i = 0
    while i < len(rest):
        tok = rest[i]
        if tok.startswith("--") and len(tok) > 2:
            key, _, inline = tok[2:].partition("=")
            option = next((o for o in verb.options if o.name == key), None)
            if option is None:
                raise BadInput(f"`/incident {verb.name}` has no option `--{key}`.", field=key, usage=verb.usage())
            if option.flag:
                command.options[key] = "yes"
                i += 1
                continue
            if inline:
                value = inline
            elif i + 1 < len(rest):
                value = rest[i + 1]
                i += 1
            else:
                raise BadInput(f"`--{key}` needs a value.", field=key, usage=verb.usage())
            if option.choices and value.lower() not in option.choices:
                raise BadInput(f"`--{key}` must be one of {', '.join(option.choices)}, not `{value}`.",
                               field=key, usage=verb.usage())
            command.options[key] = value.lower() if option.choices else value
        else:
            remaining.append(tok)
        i += 1
    return remaining


def _word(verb: Verb, arg: Arg, tok: str) -> str:
    """One positional word checked against its kind: ``@name`` for a person, ``INC-n``, ``RUN-n``."""
    if arg.kind == "user":
        match = MENTION_RE.match(tok)
        if not match:
            raise BadInput(f"`{tok}` is not a person; write @name.", field=arg.name, usage=verb.usage())
        return match.group(1) or match.group(2)
    if arg.kind == "incident":
        if not INC_RE.match(tok):
            raise BadInput(f"`{tok}` is not an incident; write INC-<number>.", field=arg.name, usage=verb.usage())
        return tok.upper()
    if arg.kind == "run":
        if not RUN_RE.match(tok):
            raise BadInput(f"`{tok}` is not a run; write RUN-<number>.", field=arg.name, usage=verb.usage())
        return str(int(tok.upper().removeprefix("RUN-")))
    return tok


def help_lines(verb: str | None = None) -> list[str]:
    if verb:
        found = BY_NAME.get(verb.lower().lstrip("/"))
        if found is None:
            raise BadInput(f"unknown command `{verb}`. Try `/incident help`.", field="verb")
        lines = [found.usage(), f"  {found.summary}"]
        if found.details:
            lines.append(f"  {found.details}")
        if found.takes_incident:
            lines.append("  INC is implicit inside an incident's channel or thread (or the console's current incident).")
        return lines
    width = max(len(v.name) for v in VERBS)
    return [f"{v.name.ljust(width)}  {v.summary}" for v in VERBS]
