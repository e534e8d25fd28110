"""Run records of schema 1 (untyped claim dicts) read as schema 2, so ``junkdna compare OLD NEW`` spans the change.

Schema 1 kept claims and free-form records in one ``records`` list, each claim
flat (``statistic_name``, ``statistic``, ``threshold``, ``direction``, ``holds``,
``low``, ``high``, ``details``). The upgrade maps each claim to the conditions
its code decided on (difficulty: the ordering and the slope gap's interval;
irreversible: the growth and every level's gap, by their Student-t intervals;
the random control's ``>=`` becomes the ``>`` that decided), marks the
quantized method's own ``monotonic`` curve of ``test_quantization`` as
informational, and reads a configuration's family and strength off its level
parameter (``sparsity``, ``n``/``m``, ``bits``, ``rank_fraction``); schema 1
recorded neither, nor what was measured after compression, nor the parameter
count. Numbers are kept as recorded; intervals schema 1 did not record stay
absent.
"""

from __future__ import annotations

from typing import Any

from junkdna_core.compress.strength import strength
from junkdna_core.results import claims as names
from junkdna_core.results.schema import ClaimRecord, RecordError, load

_CLAIM_KEYS = ("claim", "setting", "method", "model", "statistic_name", "statistic", "threshold", "direction",
               "holds", "details")
_CONFIGURATION_KEYS = ("method", "version", "params")
SCHEMA_1_BOOTSTRAP = {"resamples": 1000, "seed": 0}  # what schema 1's bootstrap always used, unrecorded
OLD_RANDOM_CONTROL = "slope-ratio(hard/easy) magnitude - random"


def _need(data: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(data, dict):
        raise RecordError(where, f"expected an object; got {data!r}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise RecordError(where, f"lacks {', '.join(missing)}")


def _family_and_strength(params: dict[str, Any]) -> tuple[str, float | None]:
    if "sparsity" in params:
        return "pruning", float(params["sparsity"])
    if {"n", "m"} <= set(params):
        return "pruning", 1 - params["n"] / params["m"]
    for family, level in (("quantization", "bits"), ("lowrank", "rank_fraction")):
        if level in params:
            return family, strength(family, float(params[level]))
    return "other", None


def _configuration(config: Any, where: str) -> dict[str, Any]:
    _need(config, _CONFIGURATION_KEYS, where)
    _, value = _family_and_strength(config["params"])
    return {**config, "version": str(config["version"]), "strength": value}


def _study(study: Any, where: str) -> dict[str, Any]:
    _need(study, ("method", "configurations"), where)
    configurations = [_configuration(c, f"{where}.configurations[{i}]") for i, c in enumerate(study["configurations"])]
    families = {_family_and_strength(c["params"])[0] for c in study["configurations"]}
    return {**study, "configurations": configurations, "family": families.pop() if len(families) == 1 else "other"}


def _provenance(provenance: Any, options: dict[str, Any], where: str) -> dict[str, Any]:
    _need(provenance, ("model_fingerprint", "setting_version", "levels"), where)
    body = {k: v for k, v in provenance.items() if k not in ("method", "seeds", "studies")}
    if "studies" in provenance:
        studies = provenance["studies"]
    else:  # a fine-tuning claim: one configuration, and the training seeds
        _need(provenance, ("method",), where)
        studies = [{"method": provenance["method"]["method"], "configurations": [provenance["method"]],
                    "calibration": None}]
        body["training_seeds"] = provenance.get("seeds")
    body["studies"] = [_study(s, f"{where}.studies[{i}]") for i, s in enumerate(studies)]
    body.setdefault("items", {})
    body["seed"] = options.get("seed")
    return body


def _interval(low: Any, high: Any, method: str) -> dict[str, Any] | None:
    if low is None or high is None:
        return None
    bootstrap = SCHEMA_1_BOOTSTRAP if method.startswith("bootstrap") else {}
    return {"low": low, "high": high, "confidence": 0.95, "method": method, **bootstrap}


def _condition(name: str, statistic: Any, direction: str, threshold: float, interval: dict[str, Any] | None = None,
               decided_by: str = "estimate", pvalue: Any = None) -> dict[str, Any]:
    if statistic is None:
        return {"name": name, "statistic": None, "direction": direction, "threshold": threshold,
                "decided_by": decided_by}
    return {"name": name, "statistic": statistic, "direction": direction, "threshold": threshold,
            "decided_by": decided_by, "interval": interval, "pvalue": pvalue}


def _conditions(record: dict[str, Any], undefined: bool, levels: list[str]) -> list[dict[str, Any]]:
    """The conditions the schema-1 code decided a claim on."""
    claim, details, threshold = record["claim"], record["details"] or {}, record["threshold"]
    value = None if undefined else record["statistic"]
    items = "bootstrap over items"
    seeds = "Student t over seeds"
    if claim in ("monotonic", "lowrank"):
        return [_condition(names.CURVE_SPEARMAN, value, "<=", threshold, pvalue=record.get("pvalue"))]
    if claim.startswith("difficulty"):
        gap = details.get("hard_minus_easy")
        gap_value = None if undefined or gap is None else gap["difference"]
        gap_interval = None if gap is None else _interval(gap["low"], gap["high"], items)
        slope_gap = _condition(names.SLOPE_GAP, gap_value, "<", 0.0, gap_interval, "interval",
                               None if gap is None else gap["pvalue"])
        if len(levels) < 3:
            return [slope_gap]
        return [_condition(names.ORDERING, value, ">=", threshold, pvalue=record.get("pvalue")), slope_gap]
    if claim == "quantization":
        return [_condition(names.QUANTIZATION_GAP, value, ">=", threshold)]
    if claim == "random":
        return [_condition(OLD_RANDOM_CONTROL, value, ">", threshold)]
    if claim == "irreversible":
        gaps = details.get("gap") or {}
        per_level = [_condition(f"gap({lv})", None if undefined else gaps[lv]["mean"], ">", threshold,
                                None if undefined else _interval(gaps[lv]["low"], gaps[lv]["high"], seeds),
                                "interval") for lv in (gaps or levels)]
        growth = _interval(record.get("low"), record.get("high"), seeds)
        return [_condition(names.TRANSFER_GROWTH, value, ">", threshold, growth, "interval"), *per_level]
    if claim == "lmc":
        growth = _interval(record.get("low"), record.get("high"), seeds)
        return [_condition(names.BARRIER_GROWTH, value, ">", threshold, growth, "interval")]
    return [_condition(record["statistic_name"], value, record["direction"], threshold,
                       _interval(record.get("low"), record.get("high"), items), pvalue=record.get("pvalue"))]


def _details(claim: str, details: dict[str, Any]) -> dict[str, Any] | None:
    if not details:
        return None
    if claim in ("monotonic", "lowrank"):
        return {"kind": "curve", **details}
    if claim.startswith("difficulty"):
        return {"kind": "slopes", **details}
    if claim == "quantization":
        notes = [details["note"]] if details.get("note") else []
        return {"kind": "quantization", **{k: v for k, v in details.items() if k != "note"}, "notes": notes}
    if claim == "irreversible":
        return {"kind": "transfer-gap", **details}
    if claim == "lmc":
        return {"kind": "barrier", **details}
    return {"kind": "legacy", "data": details}


def _claim(record: dict[str, Any], options: dict[str, Any], where: str) -> dict[str, Any]:
    _need(record, _CLAIM_KEYS, where)
    reason = record.get("reason")
    undefined = record["statistic_name"] == "undefined" or str(reason or "").startswith("undefined")
    if undefined:
        reason = str(reason or "recorded as undefined").removeprefix("undefined").lstrip(": ") or "undefined"
    provenance = _provenance(record.get("provenance"), options, f"{where}.provenance")
    levels = [lv.get("name") for lv in provenance["levels"] if isinstance(lv, dict)]
    quantized_curve = record["claim"] == "monotonic" and "test_quantization" in str(record.get("test") or "")
    body = {
        "claim": record["claim"], "setting": record["setting"], "method": record["method"], "model": record["model"],
        "verdict": "undefined" if undefined else ("holds" if record["holds"] else "fails"),
        "conditions": _conditions(record, undefined, levels),
        "details": _details(record["claim"], record["details"]),
        "provenance": provenance, "asserted": not quantized_curve, "reason": reason, "test": record.get("test"),
    }
    load(ClaimRecord, body, where)  # names the schema-1 record (records[i]) that does not fit
    return body


def upgrade_schema_1(body: dict[str, Any]) -> dict[str, Any]:
    """The schema-2 body of a schema-1 run record (claims split from free-form records); RecordError naming the field."""
    _need(body, ("run_id", "created", "options", "records"), "")
    if not isinstance(body["records"], list) or not isinstance(body["options"], dict):
        raise RecordError("records", "must be a list, and options an object")
    claims, others = [], []
    for i, record in enumerate(body["records"]):
        if isinstance(record, dict) and "claim" in record:
            claims.append(_claim(record, body["options"], f"records[{i}]"))
        else:
            others.append(record)
    return {"schema": 2, "run_id": str(body["run_id"]), "created": body["created"], "options": body["options"],
            "environment": body.get("environment", {}), "claims": claims, "records": others, "extra": {}}
