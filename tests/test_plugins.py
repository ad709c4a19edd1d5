"""Custom layer types from an installed plugin (entry-point group `nnspec.layers`), no edits to nnspec."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
            return [Param("scale", (shapes[0][-1],))]
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
