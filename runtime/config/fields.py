"""Field declarations for experiment-config dataclasses.

Every fact about a spec field (default, bounds, enum, description, the TAO
AutoML metadata) is declared once here, on the dataclass field, and the schema
generator reads it back from ``dataclasses.fields(...)[i].metadata``.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

# Metadata keys copied verbatim into the JSON schema next to the standard keywords.
TAO_METADATA_KEYS = (
    "title",
    "description",
    "minimum",
    "maximum",
    "exclusive_minimum",
    "exclusive_maximum",
    "enum",
    "option_weights",
    "math_cond",
    "depends_on",
    "parent_param",
    "valid_min",
    "valid_max",
    "popular",
    "automl_enabled",
)

MISSING_VALUE = "???"
"""TAO's (OmegaConf's) marker for a mandatory value the user must fill in."""


def spec_field(
    default: Any = None,
    *,
    description: str = "",
    title: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    enum: list | None = None,
    option_weights: list[float] | None = None,
    math_cond: str | None = None,
    depends_on: str | None = None,
    parent_param: str | None = None,
    popular: bool = False,
    automl_enabled: bool | None = None,
    mandatory: bool = False,
    example: Any = None,
    example_actions: tuple[str, ...] = (),
    omit_default: bool = False,
    nullable: bool = False,
) -> Any:
    """Declare one spec field.

    ``mandatory`` marks fields TAO writes as ``???`` in its templates;
    ``example`` (with ``example_actions``) is a value shown in the templates of
    those actions for a field that has no default (TAO's train template shows a
    two-class ``label_map``); ``omit_default`` keeps a field out of the
    generated defaults altogether. ``nullable`` marks TAO's ``Optional[...]``
    fields: a spec may set them to ``null``, which means "unset" (the field's
    default, ``''`` for paths), as tao-core writes them.
    """
    meta: dict[str, Any] = {
        "description": description,
        "mandatory": mandatory,
        "example": example,
        "example_actions": tuple(example_actions),
        "omit_default": omit_default,
        "nullable": nullable,
    }
    for key, value in (
        ("title", title),
        ("minimum", minimum),
        ("maximum", maximum),
        ("enum", enum),
        ("option_weights", option_weights),
        ("math_cond", math_cond),
        ("depends_on", depends_on),
        ("parent_param", parent_param),
        ("automl_enabled", automl_enabled),
    ):
        if value is not None:
            meta[key] = value
    if popular:
        meta["popular"] = True
    if mandatory:
        default = MISSING_VALUE
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, *, description: str = "", automl_enabled: bool | None = False, popular: bool = False,
            in_template: bool = True) -> Any:
    """Declare a nested config section (a dataclass-typed field).

    ``in_template: False`` keeps the section in the schemas (so it is documented and validated) but out
    of the generated defaults and spec templates (tao-core sections that TAO's own templates lack).
    """
    meta: dict[str, Any] = {"description": description, "section": True, "in_template": in_template}
    if automl_enabled is not None:
        meta["automl_enabled"] = automl_enabled
    if popular:
        meta["popular"] = True
    return dataclasses.field(default_factory=cls, metadata=meta)
