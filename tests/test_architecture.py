"""spec.py's layer arithmetic (a spec is checked without building its network) agrees with the network."""
from __future__ import annotations

import pytest

from fmnist_core.models import layer_shapes
from fmnist_core.presets import PRESETS
from fmnist_core.spec import RunSpec, SpecError, _build, conv_output_shape, decoder_output_shape, latent_shape

DECODERS = [
    [{"channels": 8, "kernel": 4, "stride": 2, "padding": 1, "output_padding": 0},
     {"channels": 1, "kernel": 4, "stride": 2, "padding": 1, "output_padding": 0}],
    [{"channels": 16, "kernel": 3, "stride": 3, "padding": 0, "output_padding": 2},
     {"channels": 1, "kernel": 5, "stride": 2, "padding": 3, "transposed": False}],
    [{"channels": 4, "kernel": 2, "stride": 1, "padding": 0, "output_padding": 0, "transposed": False},
     {"channels": 1, "kernel": 3, "stride": 2, "padding": 0, "output_padding": 1}],
]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_arithmetic_gives_the_shapes_of_every_presets_network(name):
    spec = PRESETS[name].spec
    shapes = [s for _, s in layer_shapes(spec)]
    if spec.kind == "autoencoder":
        assert shapes[-1] == decoder_output_shape(spec) == (1, 28, 28)
    assert latent_shape(spec) in shapes
    assert conv_output_shape(spec) in shapes


@pytest.mark.parametrize("layers", DECODERS)
def test_the_arithmetic_follows_torchs_size_rules_for_any_decoder(layers):
    d = RunSpec().to_dict()
    d["decoder"]["layers"] = layers
    raw = _build(RunSpec, d, "")                 # the dict as a spec, unchecked: it need not give 28x28
    out = decoder_output_shape(raw)
    assert out == layer_shapes(raw)[-1][1]
    if out == (1, 28, 28):
        RunSpec.from_dict(d)
    else:
        with pytest.raises(SpecError, match=rf"the decoder gives \({out[0]}, {out[1]}, {out[2]}\), not"):
            RunSpec.from_dict(d)


@pytest.mark.parametrize("layer, message", [
    ({"channels": 1, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 2}, "output_padding"),
    ({"channels": 1, "kernel": 9, "stride": 1, "padding": 0, "transposed": False}, "shrinks"),
    ({"channels": 1, "kernel": 3, "stride": 1, "padding": 5, "output_padding": 0}, "shrinks"),
])
def test_a_decoder_layer_torch_would_refuse_is_refused_by_name(layer, message):
    with pytest.raises(SpecError, match=rf"decoder.layers\[0\]: .*{message}"):
        RunSpec().with_overrides({"decoder.layers": [layer]})
