"""Public mode: `FMNIST_PUBLIC=1` in the environment, or `FMNIST_PUBLIC = 1` (or true) in Streamlit's
secrets. No page then shows a control that starts or stops training or a study, the background jobs
refuse to start or stop anything, and every page carries one line saying so and how to train locally.
The environment decides when it is set; the secret otherwise."""
from __future__ import annotations

import os

import streamlit as st

VARIABLE = "FMNIST_PUBLIC"
OFF = {"", "0", "false", "no", "off"}
ON = {"1", "true", "yes", "on"}
NOTICE = ("**Public demo**: the shipped runs, with training and studies switched off. To train your own runs, "
          "run the explorer on your machine: clone the repository, then `bash scripts/start.sh`.")


def _setting() -> str | None:
    """The raw setting: the environment's, else the secret's, else None."""
    if VARIABLE in os.environ:
        return os.environ[VARIABLE]
    try:
        value = st.secrets.get(VARIABLE)
    except Exception:            # no secrets file (the usual local case), or an unreadable one
        return None
    return None if value is None else str(value)


def is_public() -> bool:
    """True in public mode. A value that is neither yes nor no counts as yes: a deployment that meant
    to be public stays public."""
    value = _setting()
    return value is not None and value.strip().lower() not in OFF


def notice() -> None:
    """In public mode, the one line that says so (the router shows it above every page)."""
    if not is_public():
        return
    value = (_setting() or "").strip()
    odd = "" if value.lower() in ON else f" (`{VARIABLE}={value}` is not 1/0 or true/false: taken as on)"
    st.info(NOTICE + odd, icon=":material/public:")
