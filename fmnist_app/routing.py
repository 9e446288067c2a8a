"""Every page runs through `streamlit_app.py`'s router, deep links opened first on a fresh server included."""
from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlparse

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent     # the repository: streamlit_app.py and pages/
ROUTER_FLAG = "_via_router"      # set in session state by streamlit_app.py, the router
DEEP_LINK = "_deep_link"         # (page file, query params) that a page run without the router asked for


def use_the_router() -> None:
    """Send a page file run on its own, on a fresh server, through `streamlit_app.py`'s router.

    Streamlit starts in its legacy pages/-directory mode when a `pages/` folder sits beside the
    entry file, and leaves it for good once `st.navigation` has run. So a deep link such as
    /confusion opened first on a fresh server runs the page file alone: no page config, and the
    folder's file names as navigation. `fmnist_app` is first imported during that run and calls
    this. Without the router's mark in session state, remember the page and its query parameters
    and switch to the router, which switches on to them (`follow_deep_link`).
    """
    if not st.runtime.exists() or st.session_state.get(ROUTER_FLAG):    # bare imports (tests, scripts)
        return
    page = _calling_page() or Path(urlparse(st.context.url or "").path).name
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    st.session_state[DEEP_LINK] = (f"pages/{page}.py" if page and (ROOT / "pages" / f"{page}.py").is_file()
                                   else None, params)
    st.switch_page("streamlit_app.py", query_params=params)


def _calling_page() -> str | None:
    """The name of the pages/ file whose run imported this module (found on the stack), or None."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.parent == ROOT / "pages":
            return path.stem
        frame = frame.f_back
    return None


def follow_deep_link() -> None:
    """In the router: go on to the page a deep link asked for before it came through here."""
    page, params = st.session_state.pop(DEEP_LINK, (None, None))
    if page:
        st.switch_page(page, query_params=params)
