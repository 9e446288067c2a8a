"""Entry point: `streamlit run streamlit_app.py`. Only the router; each page lives in pages/."""
import streamlit as st

st.set_page_config(page_title="Fashion-MNIST representation explorer", page_icon="👕", layout="wide")
st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/training.py", title="Training", icon=":material/monitoring:"),
    st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:"),
    st.Page("pages/latent_space.py", title="Latent space", icon=":material/scatter_plot:"),
    st.Page("pages/confusion.py", title="Confusion", icon=":material/grid_on:"),
    st.Page("pages/classify.py", title="Classify", icon=":material/draw:"),
]).run()
