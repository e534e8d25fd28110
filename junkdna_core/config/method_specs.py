"""The ``--jd-methods`` syntax: methods with options, ``magnitude[scope=global],nm[m=4],wanda[m=4]``.

A *method spec* is a registered method name (or ``package.module:Class``),
optionally followed by ``[key=value,...]``. Values are kept as the text given;
:mod:`junkdna_core.compress.variants` types them by the method's parameter
dataclass. This module only reads the syntax, so it is pure and torch-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from junkdna_core.config.errors import ConfigError

SYNTAX = "NAME or NAME[KEY=VALUE,...], e.g. magnitude[scope=global]"
_NAME = re.compile(r"[^\[\],=\s]+")
_KEY = re.compile(r"[A-Za-z_]\w*")
_VALUE = re.compile(r"[^\[\],=]+")


@dataclass(frozen=True)
class MethodSpec:
    """One method as written on the command line: its name and its options, values as text.

    ``text`` is the spec in canonical form (options in the order given, no spaces).
    """

    name: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        """``name`` or ``name[key=value,...]``."""
        if not self.options:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in self.options)}]"


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets; ConfigError on unbalanced brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
            if depth > 1:
                raise ConfigError(f"nested '[' in method list {text!r}; expected {SYNTAX}")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"unmatched ']' in method list {text!r}; expected {SYNTAX}")
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ConfigError(f"unclosed '[' in method list {text!r}; expected {SYNTAX}")
    parts.append(text[start:])
    return parts


def parse_method_spec(text: str) -> MethodSpec:
    """One spec, ``name`` or ``name[key=value,...]`` (keys are identifiers, each given once)."""
    raw = str(text).strip()
    name, bracket, rest = raw.partition("[")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise ConfigError(f"method spec {raw!r} does not start with a method name; expected {SYNTAX}")
    if not bracket:
        return MethodSpec(name)
    if not rest.endswith("]") or "[" in rest or "]" in rest[:-1]:
        raise ConfigError(f"method spec {raw!r} must end with its ']' after the options; expected {SYNTAX}")
    options: list[tuple[str, str]] = []
    for pair in rest[:-1].split(","):
        if not pair.strip():
            continue
        key, eq, value = (p.strip() for p in pair.partition("="))
        if not eq or not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
            raise ConfigError(f"option {pair.strip()!r} in method spec {raw!r} is not KEY=VALUE "
                              f"(KEY a Python identifier, VALUE without ',', '=', '[' or ']')")
        if key in dict(options):
            raise ConfigError(f"method spec {raw!r} sets option {key!r} twice")
        options.append((key, value))
    return MethodSpec(name, tuple(options))


def parse_method_specs(text: str) -> tuple[MethodSpec, ...]:
    """A comma-separated list of specs (commas inside brackets separate options); none may repeat another."""
    specs = tuple(parse_method_spec(part) for part in _split_top_level(str(text)) if part.strip())
    if not specs:
        raise ConfigError(f"expected a comma-separated list of methods ({SYNTAX}); got {text!r}")
    seen = set()
    for spec in specs:
        key = (spec.name, frozenset(spec.options))
        if key in seen:
            raise ConfigError(f"method list {text!r} names {spec.text!r} twice")
        seen.add(key)
    return specs
