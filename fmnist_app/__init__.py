"""The Streamlit app's side of the explorer: the only bridge between the pages and `fmnist_core`.

One module per job; pages import the ones they need and never import torch or fmnist_core:

- `routing`: pages go through `streamlit_app.py`'s router, deep links included (checked on import, below);
- `public`: public mode (`FMNIST_PUBLIC`): no control that starts or stops training or studies;
- `cache`: the run store and everything loaded from it: the only module with `st.cache_*`;
- `picker`: the sidebar's run picker, its choice in session state and the URL;
- `jobs`: training runs and studies started and stopped as background processes;
- `images`: small image helpers (mosaics, thumbnails);
- `compare_views`: the Compare page's charts (gains, curves, factor views, parallel coordinates);
- `lib`: the library's names the pages use (class names, presets, pure functions).
"""
from fmnist_app import routing

routing.use_the_router()        # a page file run alone on a fresh server: on to the router before torch loads
