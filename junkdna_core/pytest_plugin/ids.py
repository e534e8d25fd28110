"""Test ids and xdist group names of method variants, in characters ``pytest -k`` can select.

A variant's label (``nm[m=4]``, ``gptq[group_size=128,symmetric=true]``) has ``=``
and ``,``, which ``-k`` expressions cannot contain; in test ids they become ``:``
and ``+`` (``setting2-nm[m:4]-smollm2``, selected by ``-k "nm[m:4]"``). Group names
also drop the brackets: xdist takes what follows the last ``@`` of a node id as
its group only when no ``]`` follows it.
"""

from __future__ import annotations

import re

_NOT_IN_K_IDENT = re.compile(r"[^\w:+\-.\[\]/]+")


def method_id(label: str) -> str:
    """A method variant's label as it appears in test ids: ``magnitude[scope=global]`` -> ``magnitude[scope:global]``."""
    return _NOT_IN_K_IDENT.sub("-", label.replace("=", ":").replace(",", "+"))


def group_name(*parts: str) -> str:
    """An ``xdist_group`` name made of ``parts`` (labels or ids), joined by ``-``, without brackets or ``@``."""
    joined = "-".join(method_id(p) for p in parts)
    return joined.replace("[", "(").replace("]", ")").replace("@", "-")
