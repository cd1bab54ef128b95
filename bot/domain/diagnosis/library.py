"""The procedure library: files found in directories, loaded together, and the choice of one for an incident.

Loading the library is where a bad procedure stops the bot's start (every problem named at
once) and where two files claiming the same name are caught; ``Library.choose`` is the one
place that decides which procedure diagnoses an incident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

from bot.domain.diagnosis.loader import parse
from bot.domain.diagnosis.model import Procedure
from bot.domain.diagnosis.validation import Problem, ProcedureError


BUILTIN_DIR = Path(__file__).resolve().parents[3] / "sop"


def load_file(path: str | Path) -> Procedure:
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ProcedureError([Problem(str(file), 0, f"cannot read: {exc.strerror or exc}")]) from None
    return parse(text, str(file), default_name=file.stem)


def procedure_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
        else:
            files.append(p)
    return files


def validate(paths: Iterable[str | Path]) -> tuple[list[Procedure], list[Problem]]:
    """Load every file; return the good procedures and every problem (also duplicate names)."""
    procedures: list[Procedure] = []
    problems: list[Problem] = []
    for file in procedure_files(paths):
        try:
            procedures.append(load_file(file))
        except ProcedureError as exc:
            problems += exc.problems
    seen: dict[str, Procedure] = {}
    for proc in procedures:
        if proc.name in seen:
            problems.append(Problem(proc.path, 1, f"procedure name `{proc.name}` is also used by {seen[proc.name].path}"))
        seen.setdefault(proc.name, proc)
    return procedures, problems


class Library:
    """The loaded procedures, and the choice of one for an incident."""

    def __init__(self, procedures: Iterable[Procedure]) -> None:
        self.procedures = {p.name: p for p in procedures}

    @classmethod
    def load(cls, dirs: Iterable[str | Path] = ()) -> "Library":
        """Load (and validate) every procedure; any problem stops the start with all problems named."""
        dirs = list(dirs) or [BUILTIN_DIR]
        procedures, problems = validate(dirs)
        if problems:
            raise ProcedureError(problems)
        return cls(procedures)

    def get(self, name: str) -> Procedure:
        from bot.core.errors import NotFound

        if name not in self.procedures:
            known = ", ".join(sorted(self.procedures)) or "none"
            raise NotFound(f"there is no procedure `{name}`; known procedures: {known}.")
        return self.procedures[name]

    def choose(self, alert_names: set[str], alert_labels: Sequence[Mapping[str, str]],
               component: str | None) -> Procedure | None:
        """The best fit: alert name > labels > component > fallback; then priority, then name."""
        scored = [(p.applies_to.score(alert_names, alert_labels, component), p.priority, p.name, p)
                  for p in self.procedures.values()]
        scored = [s for s in scored if s[0] >= 0]
        if not scored:
            return None
        scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
        return scored[0][3]
