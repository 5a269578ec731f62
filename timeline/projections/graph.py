"""The graph of models: found in the rule modules, ordered by the inputs their SELECTs name.

Every module of `timeline.projections.rules` is a rule module; a module that makes tables declares
`MODELS` (a tuple of `Model`) and may declare `CHECKS` (data-quality checks, gathered into the
`data_queries` table), a shared rule that is not a table (mrd) only its `Parameters` and SQL fragments. Nothing lists the modules or their dependencies by hand: adding a module with a model adds
the table, and its `ref(...)`s place it in the build.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from types import ModuleType

from .checks import Check
from .model import VISIBLE_EVENTS, Model, ModelError

RULES_PACKAGE = "timeline.projections.rules"


@cache
def rule_modules() -> tuple[ModuleType, ...]:
    """The rule modules, by name."""
    package = importlib.import_module(RULES_PACKAGE)
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
    return tuple(importlib.import_module(f"{RULES_PACKAGE}.{name}") for name in names)


@cache
def checks() -> tuple[Check, ...]:
    """Every data-quality check of the rule modules (`CHECKS`), by module."""
    return tuple(replace(c, module=module) for module in rule_modules() for c in getattr(module, "CHECKS", ()))


@cache
def models() -> dict[str, Model]:
    """Every model by table name, in build order (each after the models it refers to); `data_queries`
    gathers the checks of every rule module."""
    found: dict[str, Model] = {}
    for module in rule_modules():
        for m in getattr(module, "MODELS", ()):
            if m.name in found:
                raise ModelError(f"table {m.name} is defined twice ({found[m.name].module} and {module})")
            found[m.name] = replace(m, module=module)
    if checks():
        import timeline.projections.checks as checks_module

        found["data_queries"] = replace(checks_module.model(checks()), module=checks_module)
    return _ordered(found)


def _ordered(found: dict[str, Model]) -> dict[str, Model]:
    ordered: dict[str, Model] = {}
    visiting: set[str] = set()

    def visit(name: str, by: str) -> None:
        if name in ordered or name == VISIBLE_EVENTS:
            return
        if name not in found:
            raise ModelError(f"model {by} refers to ref('{name}'), which no rule module defines")
        if name in visiting:
            raise ModelError(f"models refer to each other in a cycle through {name}")
        visiting.add(name)
        for dep in found[name].refs:
            visit(dep, name)
        visiting.discard(name)
        ordered[name] = found[name]

    for name in sorted(found):
        visit(name, name)
    return ordered


def upstream(names: Iterable[str]) -> dict[str, Model]:
    """The models `names` and every model they read, in build order."""
    all_models = models()
    unknown = sorted(set(names) - set(all_models))
    if unknown:
        raise ValueError(f"unknown projection table(s): {', '.join(unknown)}; known: {', '.join(all_models)}")
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in wanted and name != VISIBLE_EVENTS:
            wanted.add(name)
            stack.extend(all_models[name].refs)
    return {n: m for n, m in all_models.items() if n in wanted}
