"""Secrets out of what is shown and audited: a connector's ``SecretStr`` options become a mask.

Which options are secret is read from the plugin's pydantic ``Config`` (a ``SecretStr`` field,
at any depth of nested models); when the options do not validate, names that look secret
(password, secret, token...) are masked instead. A mask sent back unchanged keeps the stored value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from gateway.errors import ConfigError
from gateway.registry import connector_registry

MASK = "**********"
_SECRET_NAME = re.compile(r"secret|passw|token|api_?key|private|credential", re.IGNORECASE)


def _mask(model: BaseModel | None, raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        known = model is not None and key in type(model).model_fields
        attr = getattr(model, key) if known else None
        if isinstance(attr, SecretStr) or (not known and _SECRET_NAME.search(str(key)) and isinstance(value, str)):
            out[key] = MASK
        elif isinstance(attr, BaseModel) or (not known and isinstance(value, Mapping)):
            out[key] = _mask(attr if isinstance(attr, BaseModel) else None, value)
        else:
            out[key] = value
    return out


def mask_options(type_name: str, options: Any) -> Any:
    model: BaseModel | None = None
    try:
        model = connector_registry().get(type_name).config_model.model_validate(options)
    except (ConfigError, ValidationError, ImportError):
        model = None
    return _mask(model, options)


def mask_connector(config: Mapping[str, Any]) -> dict[str, Any]:
    """A connector's settings (as JSON) with its secret options masked."""
    out = dict(config)
    if "options" in out:
        out["options"] = mask_options(str(out.get("type")), out["options"])
    return out


def restore_masked(incoming: Any, stored: Any) -> Any:
    """``incoming`` with every value still equal to the mask replaced by the stored one."""
    if isinstance(incoming, Mapping) and isinstance(stored, Mapping):
        return {k: stored[k] if v == MASK and k in stored else restore_masked(v, stored.get(k))
                for k, v in incoming.items()}
    return incoming
