"""YAML reading and writing with PyYAML's C implementation when it is there (start-up and speed matter).

PyYAML follows YAML 1.1, where ``1e-4`` (no dot) is a string; specs and
overrides are written by people and agents who mean a number, as YAML 1.2
and JSON read it. The loader here resolves such exponent floats as floats.

The loader also refuses what would silently change or blow up a document:
a key given twice in one mapping (YAML would keep the last one), aliases
that expand beyond ``SKILLBANK_MAX_YAML_NODES`` values ("billion laughs"),
recursive aliases, and nesting deeper than ``SKILLBANK_MAX_NESTING``.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from skillbank.runtime.errors import SkillbankError
from skillbank.runtime.settings import MAX_NESTING, MAX_YAML_NODES, limit

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLLimitError(SkillbankError, yaml.YAMLError):
    """A document refused before it is built (too large after alias expansion, too deep, duplicate keys)."""


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader that also reads YAML 1.2 floats such as 1e-4 and 5E3, and refuses duplicate keys and bombs."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        check_expansion(node)
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # merged keys may be overridden on purpose (YAML's << rule)
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base constructor says so with its position
                    continue
                if duplicate:
                    line = key_node.start_mark.line + 1
                    raise YAMLLimitError(f"key {key!r} is given twice in one mapping (line {line}); give each key once")
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose values, with every alias expanded, pass the limits (computed without expanding).

    An alias is the same node object as its anchor, so the expanded size of a node is counted once and
    reused: the cost is linear in the document, whatever it would expand to.
    """
    max_nodes, max_depth = limit(MAX_YAML_NODES), limit(MAX_NESTING)
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            sizes[key] = total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > max_nodes:
                raise YAMLLimitError(
                    f"the document expands to more than {max_nodes} values through its aliases (line "
                    f"{node.start_mark.line + 1}); raise {MAX_YAML_NODES} if that is intended")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YAMLLimitError(f"a recursive alias (line {node.start_mark.line + 1}) would expand forever")
        if depth > max_depth:
            raise YAMLLimitError(f"values nested more than {max_depth} levels deep (line {node.start_mark.line + 1});"
                                 f" raise {MAX_NESTING} if that is intended")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node) if id(child) not in sizes)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a safe loader (CSafeLoader or SafeLoader)


def safe_dump(data: Any) -> str:
    """Block-style YAML keeping key order (specs read like TAO's templates)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000,
                     allow_unicode=True)
