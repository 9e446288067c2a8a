"""The run store: one folder per run, each with its own manifest, lock and progress file.

    <root>/<run id>/manifest.json               spec, per-epoch history, data fingerprint, provenance
                                                (command, commit, device, wall time), sha256 of each file
    <root>/<run id>/weights.eNNN-x.safetensors  weights after epoch NNN; the manifest's roles say which
                                                file is `last`, `best` (best validation epoch) and
                                                `snap.eNNN` (autoencoder snapshots kept for the app)
    <root>/<run id>/optim.eNNN-x.safetensors    optimizer state, to resume (dropped once complete)
    <root>/<run id>/train.lock, progress.json   held and updated by the one process training the run
    <root>/cache/*.npz                          derived arrays (latent maps, test predictions), by weights digest

A run may ship as its history only: a complete run's manifest without its weights files (no roles,
no files), with `weights_left_out` saying why and which files it had; or without some roles' files
(the best epoch's, where its results report the last). Tables, curves and the Compare
page use it like any run; what needs weights says how to retrain it.

A run id is `<name>-<spec hash>` (spec.py). Every file is written to a temporary name, flushed and
renamed; the manifest is written last and is the only thing that says which files are current, so a
run killed at any moment leaves the previous manifest pointing at whole files.

A complete run is never written again: other settings make another run, and more epochs of a
complete run make a new run that starts from its weights. The default store reads the shipped
`checkpoints/` and the user folder together, and writes new runs to `checkpoints/` where it is
writable, else to the user folder (`$FMNIST_USER_RUNS`, default ~/.local/share/fmnist-explorer/runs).
A folder named explicitly (--checkpoints, $FMNIST_CHECKPOINTS) is the only one read and written.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .preset_runs import own_spec, preset_of, runs_of_preset
from .spec import RunSpec, SpecError
from .store import CheckpointError, atomic_write, optimizer_to_tensors, sha256_bytes, state_to_bytes

FORMAT_VERSION = 2
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
CHECKPOINT_ENV = "FMNIST_CHECKPOINTS"
USER_ENV = "FMNIST_USER_RUNS"
MANIFEST = "manifest.json"
LOCK = "train.lock"
PROGRESS = "progress.json"


class TrainingBusy(RuntimeError):
    """Another process is training this run."""


def user_dir() -> Path:
    if os.environ.get(USER_ENV):
        return Path(os.environ[USER_ENV])
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "fmnist-explorer" / "runs"


def is_writable(root: Path) -> bool:
    """True where files can be created in `root` (created if missing)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}-{secrets.token_hex(2)}"
        probe.write_bytes(b"ok")
        probe.unlink()
        return True
    except OSError:
        return False


# Manifests parsed once per file version: a page listing hundreds of runs rereads none unchanged.
_manifest_cache: dict[Path, tuple[int, int, dict]] = {}


def _read_manifest(path: Path) -> dict | None:
    try:
        st = path.stat()
    except OSError:
        return None
    hit = _manifest_cache.get(path)
    if hit and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
        return hit[2]
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); restore the file or delete its run folder") from e
    if not isinstance(m, dict) or m.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format {m.get('format_version') if isinstance(m, dict) else '?'}; "
                              f"this code reads {FORMAT_VERSION}")
    _manifest_cache[path] = (st.st_mtime_ns, st.st_size, m)
    return m


def selected_record(m: dict) -> dict | None:
    """The history record a run's results report: the last epoch, or the best validation epoch where
    its recipe selects it (`recipe.select = "best"`)."""
    h = m["history"]
    if not h:
        return None
    if (m["spec"].get("recipe") or {}).get("select") == "best" and m.get("best_epoch"):
        return h[m["best_epoch"] - 1]
    return h[-1]


def history_only(m: dict, reason: str, roles: tuple[str, ...] | None = None) -> dict:
    """A complete run's manifest without its weights: spec, history and provenance stay, and
    `weights_left_out` keeps the reason and the roles and sha256 of the files left out. `roles`
    leaves out only those (e.g. `("best",)`: the run keeps the weights its results report)."""
    if not m.get("complete"):
        raise CheckpointError(f"{m.get('id')} is not complete; only a complete run ships as its history")
    gone = set(m["roles"]) if roles is None else set(roles)
    if not gone <= set(m["roles"]):
        raise CheckpointError(f"{m['id']} has no {sorted(gone - set(m['roles']))} weights to leave out")
    kept = {r: f for r, f in m["roles"].items() if r not in gone}
    out = {k: v for k, v in m.items() if k not in ("roles", "files", "weights_left_out")}
    left = {r: f for r, f in m["roles"].items() if r in gone}
    out.update(roles=kept, files={f: h for f, h in m["files"].items() if f in kept.values()},
               weights_left_out={"reason": reason, "roles": left,
                                 "files": {f: h for f, h in m["files"].items() if f not in kept.values()}})
    return out


def is_locked(path: Path) -> bool:
    """Whether a live process holds the OS file lock at `path` (a lock frees itself when its holder dies)."""
    if not path.exists():
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:                    # a read-only folder: nobody can be training there
        return False
    lock.release()
    return False


class RunStore:
    def __init__(self, root: str | os.PathLike | None = None):
        explicit = root or os.environ.get(CHECKPOINT_ENV)
        self.explicit = bool(explicit)
        self.roots = [Path(explicit)] if explicit else [DEFAULT_DIR, user_dir()]
        self._write_root: Path | None = None
        self._by_hash: tuple[tuple, dict[str, list[str]]] = ((), {})

    def __repr__(self) -> str:
        return f"RunStore({', '.join(map(str, self.roots))})"

    @property
    def root(self) -> Path:
        """The first folder read: the explicit one, or the shipped checkpoints/."""
        return self.roots[0]

    @property
    def write_root(self) -> Path:
        """Where new runs go; CheckpointError where an explicit folder cannot be written."""
        if self._write_root is None:
            if self.explicit:
                if not is_writable(self.roots[0]):
                    raise CheckpointError(f"cannot write checkpoints to {self.roots[0]}: the folder is not "
                                          "writable. Choose a writable folder with --checkpoints.")
                self._write_root = self.roots[0]
            else:
                self._write_root = next((r for r in self.roots if is_writable(r)), None)
                if self._write_root is None:
                    raise CheckpointError(f"neither {self.roots[0]} nor the user folder {self.roots[1]} is "
                                          f"writable; set {USER_ENV} or pass --checkpoints DIR")
        return self._write_root

    def cache_path(self, name: str) -> Path:
        """A cache file: the first root holding it, else where new ones are written."""
        for r in self.roots:
            if (r / "cache" / name).is_file():
                return r / "cache" / name
        try:
            return self.write_root / "cache" / name
        except CheckpointError:
            return self.roots[0] / "cache" / name

    # ---- finding runs --------------------------------------------------------------------
    def folder(self, run_id: str) -> Path | None:
        for r in self.roots:
            if (r / run_id / MANIFEST).is_file():
                return r / run_id
        return None

    def run_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.roots:
            if r.is_dir():
                for p in sorted(r.glob(f"*/{MANIFEST}")):
                    seen.setdefault(p.parent.name, None)
        return list(seen)

    def manifest(self, run_id: str) -> dict | None:
        """The manifest as stored, or None where no such run exists."""
        folder = self.folder(run_id)
        return _read_manifest(folder / MANIFEST) if folder else None

    def _folders_by_hash(self) -> dict[str, list[str]]:
        """spec hash -> run folder names, rebuilt only when a root's listing changes (its mtime)."""
        key = tuple((str(r), r.stat().st_mtime_ns) for r in self.roots if r.is_dir())
        if key != self._by_hash[0]:
            index: dict[str, list[str]] = {}
            for r in self.roots:
                for entry in (os.scandir(r) if r.is_dir() else ()):
                    if entry.is_dir() and "-" in entry.name:
                        index.setdefault(entry.name.rsplit("-", 1)[1], []).append(entry.name)
            self._by_hash = (key, index)
        return self._by_hash[1]

    def find(self, spec: RunSpec) -> str | None:
        """The id of a stored run of this spec (any name), or None. Cheap: one stat per root and per
        candidate, so callers may ask it for every trial of every study."""
        if self.folder(spec.run_id):
            return spec.run_id
        # A folder is indexed when it is made; whether it holds a manifest yet is checked here.
        return next((rid for rid in sorted(self._folders_by_hash().get(spec.spec_hash, ())) if self.folder(rid)),
                    None)

    def resolve(self, ref: str) -> str:
        """A run id from an id; a preset's name (its own run, the preset's spec as is, under any name);
        a unique id prefix, or a name, or a preset's name with one run; CheckpointError naming the choices."""
        ids = self.run_ids()
        if ref in ids:
            return ref
        of_preset = runs_of_preset(self, ref)     # its own run first, where the store has it
        if of_preset and of_preset[0] == self.find(own_spec(ref)):
            return of_preset[0]
        matches = [i for i in ids if i.startswith(ref) or i.rsplit("-", 1)[0] == ref]
        matches += [i for i in of_preset if i not in matches]
        if len(matches) == 1:
            return matches[0]
        where = ", ".join(map(str, self.roots))
        if not matches:
            raise CheckpointError(f"no run {ref!r} in {where}; `python -m fmnist_core runs` lists them")
        raise CheckpointError(f"{ref!r} matches {len(matches)} runs ({', '.join(matches[:6])}); give the whole id")

    def spec(self, run_id: str, manifest: dict | None = None) -> RunSpec:
        m = manifest or self.require(run_id)
        try:
            return RunSpec.from_dict(m["spec"])
        except (SpecError, KeyError) as e:
            raise CheckpointError(f"{self.folder(run_id)}: its spec does not fit this code ({e})") from None

    def require(self, run_id: str) -> dict:
        m = self.manifest(run_id)
        if m is None:
            raise CheckpointError(f"no run {run_id} in {', '.join(map(str, self.roots))}; "
                                  "train it with `python -m fmnist_core train`")
        return m

    def is_read_only(self, run_id: str, manifest: dict | None = None) -> bool:
        """Complete runs, and runs in a folder this process cannot write, are never written."""
        m = manifest or self.require(run_id)
        folder = self.folder(run_id)
        return bool(m.get("complete")) or folder is None or not os.access(folder, os.W_OK)

    def summary(self, run_id: str) -> dict:
        """What `runs --json` prints for one run (no weights are read)."""
        m = self.require(run_id)
        spec = m["spec"]
        last = selected_record(m) or {}
        prov = m.get("provenance") or {}
        parent = spec.get("pretrained_from") or (prov.get("started_from") or {}).get("run")
        out = {"id": run_id, "name": m["name"], "preset": preset_of(spec), "kind": m["kind"],
               "status": "training" if self.is_training(run_id) else ("complete" if m["complete"] else "partial"),
               "epochs_done": len(m["history"]), "epochs": spec["epochs"],
               "read_only": self.is_read_only(run_id, m), "parent": parent,
               "best_epoch": m.get("best_epoch"), "folder": str(self.folder(run_id)),
               "selected_epoch": last.get("epoch"),
               "wall_time_s": prov.get("wall_time_s"), "has_weights": bool(m["roles"])}
        if m["kind"] == "classifier":
            out["test_accuracy"] = last.get("test_acc")
        else:
            out["test_mse"] = last.get("test_loss")
        out["spec"] = spec
        return out

    def summaries(self) -> list[dict]:
        out = []
        for rid in self.run_ids():
            try:
                out.append(self.summary(rid))
            except CheckpointError as e:
                out.append({"id": rid, "status": "damaged", "error": str(e)})
        return out

    # ---- reading weights -----------------------------------------------------------------
    def read_file(self, run_id: str, role: str, manifest: dict | None = None) -> dict[str, torch.Tensor]:
        """Tensors of one file named in the manifest (role: last, best, optim, snap.eNNN), verified."""
        m = manifest or self.require(run_id)
        fname = m["roles"].get(role)
        folder = self.folder(run_id)
        left_out = m.get("weights_left_out")
        if fname is None and left_out and not m["roles"]:
            raise CheckpointError(f"{run_id} ships its training history only: {left_out['reason']}. "
                                  f"Its weights are not in {folder}.")
        if fname is None and left_out and role in left_out["roles"]:
            raise CheckpointError(f"{run_id} ships without its {role!r} weights: {left_out['reason']}. "
                                  f"Its {', '.join(sorted(m['roles']))} weights are in {folder}.")
        if fname is None:
            raise CheckpointError(f"{run_id} has no {role!r} file in {folder}")
        path = folder / fname
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CheckpointError(f"{path} is missing or unreadable ({e.strerror}); retrain {run_id}") from e
        if sha256_bytes(data) != m["files"].get(fname):
            raise CheckpointError(f"{path} does not match its manifest (sha256 differs): the file was "
                                  f"changed or damaged. Nothing was loaded from it; retrain {run_id}.")
        try:
            return st_load(data)
        except (SafetensorError, ValueError) as e:
            raise CheckpointError(f"{path} is not a valid safetensors file ({e})") from e

    def load_model(self, run_id: str, which: str = "last", device: str | torch.device = "cpu") -> torch.nn.Module:
        """Rebuild a run's network from its spec and load verified weights, in eval mode."""
        m = self.require(run_id)
        return self._build(run_id, m, self.read_file(run_id, which, m)).to(device).eval()

    def _build(self, run_id: str, m: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
        from .models import build
        model = build(self.spec(run_id, m))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{self.folder(run_id)}: the weights do not fit the architecture in this "
                                  f"code ({str(e).splitlines()[0]}); retrain {run_id}") from e
        return model

    def verify(self, run_id: str) -> dict:
        """Check every file of a run against its manifest, and that its weights fit; returns the manifest."""
        m = self.require(run_id)
        for role in m["roles"]:
            state = self.read_file(run_id, role, m)
            if role != "optim":
                self._build(run_id, m, state)
        return m

    def add_history_only(self, m: dict, reason: str) -> Path:
        """Store complete run `m` (a manifest from another store) as its history only; refuses a run
        already stored here, since a stored run is never replaced."""
        if self.folder(m["id"]) is not None:
            raise CheckpointError(f"{m['id']} is already in {self.folder(m['id']).parent}; a stored run is "
                                  "never replaced")
        out = history_only(m, reason)
        folder = self.write_root / m["id"]
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / MANIFEST, json.dumps(out, indent=1).encode())
        return folder

    # ---- training state ------------------------------------------------------------------
    def lock(self, run_id: str) -> FileLock:
        """The run's training lock (an OS file lock: it frees itself when its holder dies)."""
        return FileLock(str(self.write_root / run_id / LOCK))

    def _run_folders(self, run_id: str) -> list[Path]:
        """Every folder of this id, with a manifest yet or not (a run in its first epoch has none)."""
        return [r / run_id for r in self.roots if (r / run_id).is_dir()]

    def is_training(self, run_id: str) -> bool:
        return any(is_locked(folder / LOCK) for folder in self._run_folders(run_id))

    def progress(self, run_id: str) -> dict | None:
        for folder in self._run_folders(run_id):
            try:
                return json.loads((folder / PROGRESS).read_text())
            except (OSError, ValueError):
                continue
        return None

    def training_now(self) -> list[str]:
        """Ids of the runs some live process is training, their first epoch included."""
        out = []
        for r in self.roots:
            for lock in sorted(r.glob(f"*/{LOCK}")) if r.is_dir() else []:
                if lock.parent.name not in out and is_locked(lock):
                    out.append(lock.parent.name)
        return out

    # ---- writing -------------------------------------------------------------------------
    def writable_folder(self, run_id: str) -> Path:
        """The run's folder in the write root, refusing complete runs and runs stored elsewhere."""
        existing = self.folder(run_id)
        target = self.write_root / run_id
        if existing is not None and existing != target:
            raise CheckpointError(f"{run_id} lives in {existing.parent}, which this process does not write")
        if existing is not None and (_read_manifest(existing / MANIFEST) or {}).get("complete"):
            raise CheckpointError(f"{run_id} is complete and is never modified; other settings make a new run")
        target.mkdir(parents=True, exist_ok=True)
        return target

    def save_epoch(self, spec: RunSpec, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                   history: list[dict], best_epoch: int, data_fingerprint: str, provenance: dict,
                   is_best: bool, snapshot: bool, old: dict | None) -> dict:
        """Record one finished epoch: write the new files, then the manifest, then drop stale files.

        `old`: the run's previous manifest (None for its first epoch).
        """
        run_id = spec.run_id
        folder = self.writable_folder(run_id)
        epoch = len(history)
        old = old or {"files": {}, "roles": {}}
        complete = epoch >= spec.epochs
        roles = {r: f for r, f in old["roles"].items() if r.startswith("snap.")}
        files = {f: old["files"][f] for f in roles.values()}

        def put(stem: str, data: bytes) -> str:
            # A fresh token per write: a file some manifest names is never overwritten.
            fname = f"{stem}.e{epoch:03d}-{secrets.token_hex(3)}.safetensors"
            atomic_write(folder / fname, data)
            files[fname] = sha256_bytes(data)
            return fname

        # One weights file per epoch; the roles last, best and snap.eNNN may all point at it.
        roles["last"] = put("weights", state_to_bytes(model.state_dict()))
        if is_best or "best" not in old["roles"]:
            roles["best"] = roles["last"]
        else:
            roles["best"] = old["roles"]["best"]
            files[roles["best"]] = old["files"][roles["best"]]
        if snapshot:
            roles[f"snap.e{epoch:03d}"] = roles["last"]
        opt_meta = None
        if optimizer is not None and not complete:
            tensors, opt_meta = optimizer_to_tensors(optimizer)
            roles["optim"] = put("optim", st_save({k: v.contiguous() for k, v in tensors.items()}))
        manifest = {
            "format_version": FORMAT_VERSION, "id": run_id, "name": spec.name, "kind": spec.kind,
            "spec": spec.to_dict(), "history": history, "best_epoch": best_epoch, "complete": complete,
            "data_fingerprint": data_fingerprint, "optimizer": opt_meta, "roles": roles, "files": files,
            "provenance": provenance, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
        for stale in folder.glob("*.safetensors"):
            if stale.name not in files:
                stale.unlink(missing_ok=True)
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)       # left by a run killed mid-write; no manifest names them
        return manifest

    def copy_weights_from(self, source_id: str, spec: RunSpec) -> dict:
        """Start run `spec` from complete run `source_id`'s files: its weights files, verified, copied
        into the new run's folder. Returns the source's roles and files for the new manifest."""
        src = self.require(source_id)
        if src.get("weights_left_out"):
            raise CheckpointError(f"cannot start from {source_id}: it ships its training history only "
                                  f"({src['weights_left_out']['reason']})")
        folder = self.writable_folder(spec.run_id)
        roles = {r: f for r, f in src["roles"].items() if r != "optim"}
        files = {}
        for fname in sorted(set(roles.values())):
            data = (self.folder(source_id) / fname).read_bytes()
            if sha256_bytes(data) != src["files"][fname]:
                raise CheckpointError(f"{self.folder(source_id) / fname} does not match its manifest; "
                                      f"nothing was copied from {source_id}")
            atomic_write(folder / fname, data)
            files[fname] = src["files"][fname]
        return {"roles": roles, "files": files}
