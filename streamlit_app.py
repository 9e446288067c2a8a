"""Entry point: `streamlit run streamlit_app.py`. Only the router; each page lives in pages/, the app's
side of the library in fmnist_app/."""
import streamlit as st

st.session_state["_via_router"] = True     # fmnist_app.routing.ROUTER_FLAG: this session runs through the router
from fmnist_app import public, routing  # noqa: E402

st.set_page_config(page_title="Fashion-MNIST representation explorer", page_icon="👕", layout="wide")
page = st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/training.py", title="Training", icon=":material/monitoring:"),
    st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
    st.Page("pages/latent_space.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("pages/confusion.py", title="Confusion", icon=":material/grid_on:"),
    st.Page("pages/classify.py", title="Classify", icon=":material/draw:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/stacked_line_chart:"),
    st.Page("pages/representations.py", title="Representations", icon=":material/layers:"),
])
routing.follow_deep_link()     # a deep link opened first on a fresh server: on to the page it named
public.notice()                # public mode: one line above every page
page.run()
