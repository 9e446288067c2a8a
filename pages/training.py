"""Training: per-epoch curves for every model, and a background run with live progress."""
import time

import altair as alt
import pandas as pd
import streamlit as st

import app_state as app

CURVES = {"train_loss_running": "train (while training)", "train_loss": "train (eval mode)",
          "val_loss": "validation", "test_loss": "test"}
ACC = {"train_acc": "train (eval mode)", "val_acc": "validation", "test_acc": "test"}


def curves_chart(history: list[dict], metrics: dict[str, str], title: str, best_epoch: int | None) -> alt.Chart:
    df = pd.DataFrame(history)
    long = df.melt(id_vars="epoch", value_vars=[m for m in metrics if m in df], var_name="metric")
    long["metric"] = long["metric"].map(metrics)
    line = alt.Chart(long).mark_line(point=len(df) < 60).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
        color=alt.Color("metric:N", sort=list(metrics.values())),
        tooltip=["epoch", "metric", alt.Tooltip("value:Q", format=".4f")])
    if best_epoch:
        rule = alt.Chart(pd.DataFrame({"epoch": [best_epoch], "label": [f"best val. epoch {best_epoch}"]}))
        line = line + rule.mark_rule(strokeDash=[4, 4], color="gray").encode(x="epoch:Q", tooltip=["label"])
    return line.properties(height=260)


def draw_curves() -> None:
    names = [app.AUTOENCODER, *app.CLASSIFIERS]
    tabs = st.tabs(names)
    for name, tab in zip(names, tabs):
        with tab:
            m = app.manifest(name)
            if not m or not m["history"]:
                st.info(f"No epochs of {name} yet.")
                continue
            h, best = m["history"], m["best_epoch"]
            last = h[-1]
            cols = st.columns(4)
            cols[0].metric("epochs", f"{len(h)}/{m['train_config']['epochs']}")
            if name == app.AUTOENCODER:
                cols[1].metric("validation MSE", f"{last['val_loss']:.4f}")
                cols[2].metric("test MSE", f"{last['test_loss']:.4f}")
                st.altair_chart(curves_chart(h, CURVES, "MSE", best), width="stretch")
            else:
                cols[1].metric("validation acc.", f"{last['val_acc']:.4f}",
                               f"{last['val_acc'] - app.REFERENCE_RESULTS[name]['val_acc']:+.4f} vs reference")
                cols[2].metric("test acc. (last)", f"{last['test_acc']:.4f}")
                cols[3].metric("test acc. (best val.)", f"{h[best - 1]['test_acc']:.4f}", f"epoch {best}",
                               delta_color="off")
                left, right = st.columns(2)
                left.altair_chart(curves_chart(h, CURVES, "cross-entropy", best), width="stretch")
                right.altair_chart(curves_chart(h, ACC, "accuracy", best), width="stretch")
            prov = m.get("provenance", {})
            st.caption(f"{last['seconds']:.1f} s per epoch on {prov.get('device', '?')}, "
                       f"{last['train_images_per_s']:.0f} training images/s; total {prov.get('wall_time_s', 0):.0f} s.")


def draw_progress(state: dict) -> None:
    p = state["progress"] or {}
    if not state["running"]:
        if p.get("status") and p["status"] != "running":
            st.caption(f"Last run: {p['status']}.")
        return
    model, epochs = p.get("model"), p.get("epochs", 1)
    done_models = len(p.get("finished_models", []))
    total_models = len(p.get("models", [])) or 5
    frac_epoch = (p.get("batch", 0) / p["batches"]) if p.get("batches") else 0.0
    frac = (done_models + (p.get("epoch", 0) + frac_epoch) / epochs) / total_models
    st.progress(min(frac, 1.0), text=f"Training **{model}**: epoch {p.get('epoch', 0) + 1}/{epochs}, "
                                     f"batch {p.get('batch', 0)}/{p.get('batches', 0)} (model {done_models + 1}/{total_models})")
    elapsed = time.time() - p.get("started", time.time())
    if frac > 0.01:
        st.caption(f"Elapsed {elapsed / 60:.1f} min; about {elapsed * (1 - frac) / frac / 60:.1f} min left.")


def live_section(running: bool) -> None:
    @st.fragment(run_every=2.0 if running else None)
    def live():
        state = app.training_state()
        draw_progress(state)
        draw_curves()
        if running and not state["running"]:
            st.rerun(scope="app")            # the run ended: redraw the form
    live()


def training() -> None:
    st.title("Training")
    state = app.training_state()
    with st.form("train"):
        st.markdown("Train (or resume) the autoencoder and the four classifiers. The run goes on in the "
                    "background, survives closing this page, and writes every finished epoch.")
        c1, c2, c3 = st.columns(3)
        epochs = c1.number_input("epochs", 1, 500, 50)
        device = c2.selectbox("device", ["auto", "cpu", "cuda"])
        subset = c3.number_input("training images (0 = all 60,000)", 0, 60_000, 0, step=1000)
        start = st.form_submit_button("Start training", disabled=state["running"], type="primary")
    if start:
        st.toast(app.start_training(int(epochs), device, int(subset) or None))
        time.sleep(1.0)
        st.rerun()
    if state["running"]:
        st.info("A run is training. Everyone who opens this page sees it; a second run cannot start.")
        if st.button("Stop the run"):
            st.toast(app.stop_training())
    live_section(state["running"])


training()
