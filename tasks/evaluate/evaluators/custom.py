"""Custom evaluators: ``module:Class`` loaded, checked and wrapped."""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Mapping
from typing import Any

from models.evals import EvalContext, EvalResult
from tasks.common.errors import ReplayError
from tasks.common.text import error_text
from tasks.common.usercode import user_exit
from tasks.evaluate.evaluators.base import finite

# --------------------------------------------------------------------------- loading


class EvaluatorLoadError(ReplayError, ValueError):
    """A custom evaluator reference that cannot be used (one-line message)."""


def coerce_result(result: Any, name: str = "evaluator") -> EvalResult:
    """An evaluator's return value as an EvalResult: EvalResult, dict of its fields, bool
    (passed; value 1/0) or a finite number (value). Anything else raises TypeError."""
    if isinstance(result, EvalResult):
        return result
    if isinstance(result, bool):
        return EvalResult(value=1.0 if result else 0.0, passed=result)
    if finite(result):
        return EvalResult(value=float(result))
    if isinstance(result, Mapping):
        return EvalResult(**result)
    raise TypeError(f"{name} returned {type(result).__name__}, not an EvalResult")


class CustomEvaluator:
    """A loaded custom evaluator: delegates to it, gives its results source ``custom``
    unless they set one, and accepts bool/number/dict results."""

    source = "custom"

    def __init__(self, inner: Any, ref: str) -> None:
        self.inner = inner
        self.ref = ref
        self.name = str(inner.name)
        self.version = str(inner.version)
        self.level = getattr(inner, "level", None) or "chat"
        self.spec = getattr(inner, "spec", None)  # how its scores become a metric, when it says

    def evaluate(self, ctx: EvalContext) -> EvalResult:
        result = coerce_result(self.inner.evaluate(ctx), self.name)
        if "source" not in result.model_fields_set:
            result.source = "custom"
        return result

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def _user_call(fn: Callable[[], Any], failed: Callable[[str], str]) -> Any:
    """``fn()``; anything it raises (an import error, ``sys.exit``) -> EvaluatorLoadError(failed(why))."""
    try:
        return fn()
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - any failure is the user's to fix, sys.exit too
        raise EvaluatorLoadError(failed(user_exit(e, "it") or error_text(e))) from None


def load_evaluator(ref: str) -> CustomEvaluator:
    """A custom evaluator from ``module:Class`` (the class is instantiated without
    arguments; an instance or a factory function also works). Raises EvaluatorLoadError
    with a one-line reason."""
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(p.strip() for p in ref.split(":")):
        raise EvaluatorLoadError(f"evaluator {ref!r} is not 'module:Class' (e.g. my_evals:Polite)")
    mod_name, attr = (p.strip() for p in ref.split(":"))
    module = _user_call(lambda: importlib.import_module(mod_name),
                        lambda why: f"evaluator {ref!r}: cannot import {mod_name!r} ({why})")
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EvaluatorLoadError(f"evaluator {ref!r}: {mod_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "evaluate")):
        obj = _user_call(obj, lambda why: f"evaluator {ref!r}: {attr}() failed ({why}); "
                                          "it must build without arguments")
    missing = [a for a in ("name", "version") if not getattr(obj, a, None)]
    if not callable(getattr(obj, "evaluate", None)):
        missing.append("evaluate()")
    if missing:
        raise EvaluatorLoadError(f"evaluator {ref!r} lacks {', '.join(missing)}; an evaluator "
                                 "has name, version and evaluate(ctx)")
    level = getattr(obj, "level", None) or "chat"
    if level not in ("turn", "chat"):
        raise EvaluatorLoadError(f"evaluator {ref!r}: level {level!r} is not 'turn' or 'chat'")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", str(obj.name)):
        raise EvaluatorLoadError(f"evaluator {ref!r}: name {obj.name!r} must be 1-64 letters, "
                                 "digits, '_', '-' or '.'")
    return CustomEvaluator(obj, ref)
