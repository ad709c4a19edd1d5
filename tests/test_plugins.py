"""Custom layer types from an installed plugin (entry-point group `nnspec.layers`), no edits to nnspec."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

PLUGIN = textwrap.dedent('''
    from nnspec.layers import Attr, LayerType, Param

    class Scale(LayerType):
        """Multiplies each channel by a learned factor."""
        name = "channel_scale"
        keras_class = "ChannelScale"
        summary = "Learned per-channel scale."
        attributes = {"init": Attr("float", "Initial factor.", default=1.0)}

        def param_shapes(self, shapes, a):
            return [Param("scale", (shapes[0][-1],), initializer="ones")]
''')

SPEC = """
inputs: {x: {shape: [4, 4, 3]}}
encoder:
  - channel_scale: {init: 0.5}
  - channel_scale: {nit: 0.5}
"""


def test_plugin_layer_is_found_validated_and_counted(tmp_path):
    (tmp_path / "my_layers.py").write_text(PLUGIN)
    dist = tmp_path / "my_layers-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-layers\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nnspec.layers]\nchannel_scale = my_layers:Scale\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    code = (
        f"import nnspec; d = nnspec.check({str(spec)!r}); print([x.message for x in d]);"
        "from nnspec.layers import registry; print(registry.canonical('channel_scale'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    messages, canonical = proc.stdout.strip().splitlines()
    assert "channel_scale has no attribute `nit`" in messages and canonical == "channel_scale"


BUILDING_PLUGIN = PLUGIN + textwrap.indent(textwrap.dedent('''
        @classmethod
        def build_torch(cls, node, input_shapes):
            import torch

            class ChannelScale(torch.nn.Module):
                def __init__(self, channels):
                    super().__init__()
                    self.scale = torch.nn.Parameter(torch.ones(channels))

                def forward(self, x):
                    return x * self.scale

                def keras_weights(self):
                    return {"scale": self.scale.detach().cpu().numpy()}

                def load_keras_weights(self, weights):
                    with torch.no_grad():
                        self.scale.copy_(torch.as_tensor(weights["scale"]))

            return ChannelScale(input_shapes[0][-1])

        @classmethod
        def build_keras(cls, node):
            import keras

            class ChannelScale(keras.layers.Layer):
                def build(self, shape):
                    self.scale = self.add_weight(shape=(shape[-1],), initializer="ones", name="scale")

                def call(self, x):
                    return x * self.scale

            return ChannelScale()
'''), "    ")

BUILD_PROBE = """
import numpy as np, torch, nnspec
from nnspec.backends import get_backend
spec = nnspec.load(%r)
tm = get_backend("torch").build(spec, seed=1)
km = get_backend("keras").build(spec, seed=1)
w = get_backend("keras").get_weights(km, spec)
w["channel_scale/scale"] = np.arange(1, 4, dtype=np.float32)
get_backend("keras").set_weights(km, spec, w)
get_backend("torch").set_weights(tm, spec, w)
x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
tm.eval()
diff = np.abs(tm(torch.from_numpy(x)).detach().numpy() - np.asarray(km(x))).max()
print(km.count_params(), sum(p.numel() for p in tm.parameters()), spec.total_params, float(diff))
"""


@pytest.mark.torch
@pytest.mark.keras
def test_plugin_layer_builds_on_both_backends_with_the_same_outputs(tmp_path):
    (tmp_path / "my_layers.py").write_text(BUILDING_PLUGIN)
    dist = tmp_path / "my_layers-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-layers\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nnspec.layers]\nchannel_scale = my_layers:Scale\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("inputs: {x: {shape: [4, 4, 3]}}\nencoder:\n  - channel_scale\n  - conv2d: {filters: 2, kernel_size: 3}\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{ROOT}", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", BUILD_PROBE % str(spec)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    keras_count, torch_count, nnspec_count, diff = proc.stdout.split()
    assert int(keras_count) == int(torch_count) == int(nnspec_count) == 3 + 3 * 3 * 3 * 2 + 2
    assert float(diff) < 1e-5
