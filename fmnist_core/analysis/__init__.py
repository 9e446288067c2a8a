"""What a run's network learned, layer by layer: features (features.py), linear CKA (cka.py), probes
(probes.py), TensorBoard projector files (projector.py), attributions (attributions.py), and the
cached, store-level calls the CLI and the app make (represent.py)."""
