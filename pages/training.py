"""Training: the chosen run's per-epoch curves, live progress of every run training, a form for new runs."""
import time

import altair as alt
import pandas as pd
import streamlit as st

from fmnist_app import cache, jobs, lib, picker

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


def draw_curves(run_id: str) -> None:
    st.subheader(f"Run `{run_id}`")
    m = cache.manifest(run_id)
    if not m or not m["history"]:
        st.info(f"No finished epochs of `{run_id}` yet. Train it with the form below or with "
                "`python -m fmnist_core train`.")
        return
    h, best = m["history"], m["best_epoch"]
    last = h[-1]
    cols = st.columns(4)
    cols[0].metric("epochs", f"{len(h)}/{m['spec']['epochs']}")
    if m["kind"] == "autoencoder":
        cols[1].metric("validation MSE", f"{last['val_loss']:.4f}")
        cols[2].metric("test MSE", f"{last['test_loss']:.4f}")
        st.altair_chart(curves_chart(h, CURVES, "MSE", best), width="stretch")
    else:
        ref = lib.REFERENCE_RESULTS.get(cache.label(run_id))
        cols[1].metric("validation acc.", f"{last['val_acc']:.4f}",
                       f"{last['val_acc'] - ref['val_acc']:+.4f} vs reference" if ref else None)
        cols[2].metric("test acc. (last)", f"{last['test_acc']:.4f}")
        cols[3].metric("test acc. (best val.)", f"{h[best - 1]['test_acc']:.4f}", f"epoch {best}",
                       delta_color="off")
        left, right = st.columns(2)
        left.altair_chart(curves_chart(h, CURVES, "cross-entropy", best), width="stretch")
        right.altair_chart(curves_chart(h, ACC, "accuracy", best), width="stretch")
    prov = m.get("provenance", {})
    st.caption(f"{last['seconds']:.1f} s per epoch on {prov.get('device', '?')}, "
               f"{last['train_images_per_s']:.0f} training images/s; total {prov.get('wall_time_s') or 0:.0f} s. "
               f"Command: `{prov.get('command', '?')}`.")


def draw_progress(p: dict) -> None:
    epochs = p.get("epochs") or 1
    frac = (p.get("epoch", 0) + (p.get("batch", 0) / p["batches"] if p.get("batches") else 0.0)) / epochs
    st.progress(min(frac, 1.0), text=f"Training **{p['run']}**: epoch {p.get('epoch', 0) + 1}/{epochs}, "
                                     f"batch {p.get('batch', 0)}/{p.get('batches', 0)}")
    elapsed = time.time() - p.get("started", time.time())
    left, right = st.columns([4, 1])
    if frac > 0.01:
        left.caption(f"Elapsed {elapsed / 60:.1f} min; about {elapsed * (1 - frac) / frac / 60:.1f} min left.")
    if p.get("pid") and jobs.allowed() and right.button("Stop", key=f"stop_{p['run']}",
                                                         help="Stops its process; finished epochs stay"):
        st.toast(jobs.stop_training(p["pid"]))


def live_section(run_id: str, running: bool) -> None:
    @st.fragment(run_every=2.0 if running else None)
    def live():
        training = jobs.training_runs()
        for p in training:
            draw_progress(p)
        draw_curves(run_id)
        if running and not training:
            st.rerun(scope="app")            # every run ended: redraw the form and the picker
    live()


def train_form() -> None:
    st.subheader("Train a new run")
    name = st.selectbox("preset", [jobs.REFERENCE_PROTOCOL, *lib.PRESETS],
                        help="`python -m fmnist_core runs --presets` lists them with their sources.")
    if name in lib.PRESETS:
        st.caption(f"{lib.PRESETS[name].source}. {lib.PRESETS[name].note}")
    d = jobs.preset_fields(name)
    with st.form("train"):
        st.markdown("The run goes on in the background, survives closing this page, and writes every "
                    "finished epoch. A finished or shipped run is never modified: other settings make a "
                    "new run, and more epochs of a finished run make a new run that starts from its weights.")
        c = st.columns(4)
        fields = {
            "epochs": c[0].number_input("epochs", 1, 500, d["epochs"], key=f"epochs_{name}"),
            "subset": c[1].number_input("training images (0 = all 50,000)", 0, 50_000, d["subset"] or 0,
                                        step=1000, key=f"subset_{name}") or None,
            "seed": c[2].number_input("seed", 0, 10**6, d["seed"], key=f"seed_{name}"),
            "batch_size": c[3].number_input("batch size", 1, 4096, d["batch_size"], key=f"bs_{name}"),
            "optimizer.name": c[0].selectbox("optimizer", ["adam", "adamw", "sgd"],
                                             ["adam", "adamw", "sgd"].index(d["optimizer.name"]), key=f"opt_{name}"),
            "optimizer.lr": c[1].number_input("learning rate", 1e-6, 10.0, d["optimizer.lr"], format="%g",
                                              key=f"lr_{name}"),
            "encoder.dropout": c[2].number_input("dropout", 0.0, 0.95, d["encoder.dropout"], step=0.05,
                                                 key=f"do_{name}"),
            "encoder.bottleneck": c[3].number_input("linear bottleneck (0 = none)", 0, 4096,
                                                    d["encoder.bottleneck"] or 0, key=f"bn_{name}") or None,
        }
        device = st.selectbox("device", ["auto", "cpu", "cuda"])
        start = st.form_submit_button("Start training", type="primary")
    if start:
        try:
            overrides, ids = jobs.plan(name, fields)
        except lib.SpecError as e:
            st.error(f"These settings do not make a valid run: {e}")
            return
        st.session_state["train_message"] = (jobs.start_training(name, overrides, device)
                                             + " Runs (complete ones are skipped): " + ", ".join(f"`{i}`" for i in ids))
        st.rerun()
    if "train_message" in st.session_state:
        st.info(st.session_state.pop("train_message"))


def training() -> None:
    st.title("Training")
    training_now = jobs.training_runs()
    if training_now:
        st.info(f"{len(training_now)} run(s) training; everyone who opens this page sees them. "
                "A second request for the same run fails at once.")
    live_section(picker.chosen_run(), bool(training_now))
    if jobs.allowed():                      # public mode: no form (the router's line says how to train)
        train_form()


training()
