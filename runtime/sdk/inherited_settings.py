"""Settings a job takes from the model it runs: evaluate, inference and export use the train job's.

``skill_info.yaml`` declares the rule (``inherited_settings``): for which actions, which dotted keys
are taken from the *source* (the parent train job's spec, or the config a checkpoint stores), and
which of them decide the checkpoint's network (``network_keys``, each optionally only ``when`` the
source's other keys have given values). :func:`inherit_settings` applies it: a pure function, dict
in, dict out, called by the SDK while it builds a job's spec (before ``create_job`` records or
launches anything), so generated runners and ``skillbank run`` share it.

Rules, per key of the rule:

* the source does not hold it (or holds null): the spec's value stands;
* the user did not set it: the source's value replaces the template's, and is reported as inherited;
* the user set it: the user's value stands, except for a network key whose value differs from the
  source's: that is an :class:`InheritedSettingsError` naming both values (a silent run would load
  the weights into another network, or fail deep inside with tensor names).
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.skills import Skill
from skillbank.runtime.spec_builder import get_dotted, set_dotted

_ABSENT = object()


class InheritedSettingsError(SkillbankError, ValueError):
    """An explicit value that contradicts the network of the checkpoint the job runs."""


@dataclass(frozen=True)
class InheritanceRule:
    """``skill_info.yaml`` ``inherited_settings``, read: what an action takes from its model's source."""

    actions: tuple[str, ...]
    keys: tuple[str, ...]
    network_keys: tuple[tuple[str, dict[str, tuple[Any, ...]]], ...]  # (key, {other key: allowed values})

    @classmethod
    def from_info(cls, info: Mapping[str, Any] | None) -> InheritanceRule:
        """The rule of a skill_info ``inherited_settings`` block (an empty rule when absent)."""
        info = info or {}
        network = []
        for entry in info.get("network_keys") or []:
            entry = {"key": entry} if isinstance(entry, str) else dict(entry)
            when = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in (entry.get("when") or {}).items()}
            network.append((str(entry["key"]), when))
        return cls(actions=tuple(info.get("actions") or ()), keys=tuple(info.get("keys") or ()),
                   network_keys=tuple(network))

    def applies_to(self, action: str) -> bool:
        return action in self.actions and bool(self.keys)

    def network_keys_of(self, source: Mapping[str, Any]) -> list[str]:
        """The keys that decide the source's network (each ``when`` checked against the source's values)."""
        return [key for key, when in self.network_keys
                if all(get_dotted(dict(source), other, _ABSENT) in allowed for other, allowed in when.items())]


def inherit_settings(
    spec: Mapping[str, Any],
    source: Mapping[str, Any],
    *,
    keys: Iterable[str],
    network_keys: Iterable[str] = (),
    explicit: Iterable[str] = (),
    source_name: str = "the checkpoint",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(new spec, inherited)``: ``spec`` with ``keys`` taken from ``source`` where the user set none.

    ``explicit`` holds the dotted keys the user set; ``inherited`` maps each key taken to its value.
    Raises InheritedSettingsError for an explicit value of a ``network_keys`` key that differs from
    the source's, naming both values and ``source_name`` ("parent job <id>", "<checkpoint path>").
    """
    explicit = set(explicit)
    network = set(network_keys)
    out = copy.deepcopy(dict(spec))
    inherited: dict[str, Any] = {}
    conflicts = []
    for key in keys:
        theirs = get_dotted(dict(source), key, _ABSENT)
        if theirs is _ABSENT or theirs is None:
            continue
        if key in explicit:
            mine = get_dotted(out, key, _ABSENT)
            if key in network and mine != theirs:
                conflicts.append(f"{key}={mine!r} but the checkpoint's network has {key}={theirs!r}")
            continue
        set_dotted(out, key, theirs)
        inherited[key] = copy.deepcopy(theirs)
    if conflicts:
        raise InheritedSettingsError(
            f"{'; '.join(conflicts)} (from {source_name}); these settings come from the model: remove them "
            "from the overrides, or use a checkpoint trained with them"
        )
    return out, inherited


def model_source(
    skill: Skill, action: str, spec: Mapping[str, Any], parent: Mapping[str, Any] | None,
    parent_job_id: str | None, explicit: Iterable[str] = (),
) -> tuple[dict[str, Any] | None, str]:
    """``(source, name)``: where the model the job runs was trained, None when nothing says.

    The parent job's spec, unless the user set the checkpoint field (the one the ``parent_model``
    inference fills, ``evaluate.checkpoint`` ...) themselves: then, as without a parent, the config
    stored in that checkpoint (a TAO checkpoint stores none: the parent's spec, else None).
    """
    explicit = set(explicit)
    fields = [f for f, function in skill.spec_params(action).items() if function == "parent_model"]
    parent_spec = parent.get("spec") if parent is not None else None
    from_parent = (dict(parent_spec), f"parent job {parent_job_id}") if isinstance(parent_spec, Mapping) else None
    if from_parent and not any(f in explicit for f in fields):
        return from_parent
    from skillbank.runtime.sdk.stored_config import stored_config

    for field_name in fields:
        checkpoint = get_dotted(dict(spec), field_name)
        stored = stored_config(checkpoint) if isinstance(checkpoint, str) and checkpoint else None
        if stored:
            return stored, f"the config stored in {checkpoint}"
    return from_parent or (None, "")


def inherit_model_settings(
    skill: Skill,
    action: str,
    spec: dict[str, Any],
    overrides: Mapping[str, Any],
    parent: Mapping[str, Any] | None = None,
    parent_job_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SDK's step: ``(spec, record)`` after the skill's ``inherited_settings`` rule is applied.

    ``record`` is ``{"from": <source name>, "values": {key: value}}`` (empty when nothing was inherited):
    what the job record keeps and ``--dry-run`` shows. ``overrides`` are the user's, validated (flat dotted
    keys, shorthand expanded: ``ValidatedSpec.overrides``); their keys are the explicit ones.
    """
    rule = InheritanceRule.from_info(skill.info.get("inherited_settings"))
    if not rule.applies_to(action):
        return spec, {}
    explicit = dict(overrides)
    source, name = model_source(skill, action, spec, parent, parent_job_id, explicit)
    if not source:
        return spec, {}
    spec, values = inherit_settings(spec, source, keys=skill.inherited_keys(action),
                                    network_keys=rule.network_keys_of(source), explicit=explicit,
                                    source_name=name)
    return spec, ({"from": name, "values": values} if values else {})
