"""The torch GPU paths, checked where they can be: on the CPU the captured step function (the one
CUDA graphs record) and the batched ensemble must train exactly as the eager loop and one-by-one
members do; on a CUDA machine the real capture, fused optimisers and cuDNN recurrent kernels run
too (those tests skip cleanly elsewhere). Small real subsets of Fashion-MNIST."""

from __future__ import annotations

import numpy as np
import pytest

import nnspec
from nnspec.training.control import LearningRate
from nnspec.training.progress import Progress
from nnspec.training.run import as_data
from nnspec.training.settings import resolve

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SMALL = """
name: small_step
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 4, kernel_size: 3, activation: relu}
  - batch_norm
  - max_pool2d: {pool_size: 2}
head:
  - flatten
  - dropout: {rate: 0.3}
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
data: {dataset: fashion_mnist, test_limit: 200}
"""


class Sink:
    """The smallest :class:`~nnspec.backends.base.EpochSink`: keeps each epoch's logs, records nothing."""

    def __init__(self, settings: dict, steps: int):
        self.lr = LearningRate(settings.schedule, settings.lr, settings.epochs)
        self.progress = Progress(None, settings.epochs)
        self.total = steps * settings.epochs
        self.logs: list[dict] = []

    def lr_for_epoch(self, epoch: int) -> float:
        return self.lr.for_epoch(epoch)

    def lr_for_step(self, global_step: int) -> float:
        return self.lr.step_lr(global_step, self.total)

    def epoch_begin(self, epoch: int) -> None:
        pass

    def epoch_end(self, epoch: int, logs: dict, seconds: float, lr: float) -> bool:
        self.logs.append(dict(logs))
        return False


def _setup(write_spec, train_yaml: str, limit: int = 200, device: str = "cpu", base: str = SMALL):
    from nnspec.data import load_data

    spec = nnspec.load(write_spec(base + train_yaml))
    settings = resolve(spec, "torch", {"limit": limit, "device": device})
    splits = load_data(spec, limit=limit, seed=settings.seed, validation_split=0.0)
    return spec, settings, as_data(spec, splits.train, settings)


def _fit(loop, settings, n: int):
    import math

    sink = Sink(settings, math.ceil(n / settings.batch_size))
    loop.fit(0, settings.epochs, sink)
    return sink.logs, loop.get_weights()


@pytest.mark.parametrize("train_yaml", [
    # one-cycle: a new rate every step; 200 examples / 48 leaves a last batch of 8
    "train: {epochs: 2, batch_size: 48, seed: 3, optimizer: adam, lr: 0.01, schedule: {type: one_cycle}}\n",
    # decoupled weight decay and momentum, gradient clipping
    "train: {epochs: 2, batch_size: 64, seed: 1, optimizer: {type: sgd, momentum: 0.9, weight_decay: 0.01},"
    " lr: 0.05, gradient_clip: 0.5}\n",
    "train: {epochs: 1, batch_size: 50, seed: 2, optimizer: {type: rmsprop, weight_decay: 0.004}}\n",
])
def test_the_captured_step_function_trains_as_the_eager_loop(write_spec, fashion_mnist_dir, train_yaml):
    """The function CUDA graphs record (batch gathered by a device counter, rate read from a device
    tensor, sums and step losses on the device) run eagerly on the CPU gives the eager loop's result."""
    from nnspec.backends.torch.graphs import CapturedEpoch
    from nnspec.backends.torch.loop import Loop

    spec, settings, data = _setup(write_spec, train_yaml)
    eager = Loop(spec, settings, data, None)
    assert eager.graph_mode == "off" and eager.lr_tensor is None
    logs_eager, weights_eager = _fit(eager, settings, len(data))

    stepped = Loop(spec, settings, data, None)
    stepped.optimizer = stepped._optimizer(settings.optimizer, tensor_lr=True)
    stepped.graph = CapturedEpoch(stepped, len(data), settings.batch_size, capture=False)
    stepped.graph_mode = "auto"
    logs_graph, weights_graph = _fit(stepped, settings, len(data))

    assert stepped.graph.steps == -(-len(data) // settings.batch_size)
    assert int(stepped.graph.counter) == stepped.graph.steps  # the step function advanced its own counter
    for a, b in zip(logs_eager, logs_graph, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    for name, value in weights_eager.items():
        np.testing.assert_allclose(weights_graph[name], value, rtol=1e-4, atol=2e-5, err_msg=name)  # fused vs foreach Adam rounding


def test_the_captured_step_names_the_first_non_finite_step(write_spec, fashion_mnist_dir):
    from nnspec.backends.torch.graphs import CapturedEpoch
    from nnspec.backends.torch.loop import Loop
    from nnspec.training.errors import NonFiniteLoss

    spec, settings, data = _setup(write_spec, "train: {epochs: 1, batch_size: 100, lr: 1.0e+30}\n")
    loop = Loop(spec, settings, data, None)
    loop.optimizer = loop._optimizer(settings.optimizer, tensor_lr=True)
    graph = CapturedEpoch(loop, len(data), 100, capture=False)
    graph.run(torch.arange(len(data)), [1e30] * graph.steps)
    with pytest.raises(NonFiniteLoss, match=r"at epoch 1, step [12] \(of 2\)"):
        graph.results(0)


def test_cuda_graphs_true_without_a_gpu_is_a_clear_error(write_spec, fashion_mnist_dir):
    from nnspec.backends.torch.loop import Loop
    from nnspec.training.errors import TrainingError

    spec, settings, data = _setup(write_spec, "train: {epochs: 1, cuda_graphs: true}\n")
    assert settings.cuda_graphs is True
    with pytest.raises(TrainingError, match="cuda_graphs: true needs a CUDA device"):
        Loop(spec, settings, data, None)


@cuda
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_a_captured_gpu_epoch_matches_an_eager_gpu_epoch(write_spec, fashion_mnist_dir, optimizer):
    """Real capture on the GPU: same losses and weights as eager GPU steps (no dropout, so no RNG)."""
    from nnspec.backends.torch.loop import Loop

    yaml = f"train: {{epochs: 2, batch_size: 32, seed: 0, optimizer: {optimizer}, schedule: {{type: one_cycle}}}}\n"
    spec, settings, data = _setup(write_spec, yaml, device="cuda", base=SMALL.replace("rate: 0.3", "rate: 0.0"))
    settings = settings.replace(cuda_graphs=False)
    logs_eager, w_eager = _fit(Loop(spec, settings, data, None), settings, len(data))
    settings = settings.replace(cuda_graphs=True)
    captured = Loop(spec, settings, data, None)
    logs_graph, w_graph = _fit(captured, settings, len(data))
    assert captured.graph is not None and captured.graph.graphs[0] is not None and captured.capture_seconds > 0
    for a, b in zip(logs_eager, logs_graph, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3)
    for name, value in w_eager.items():
        np.testing.assert_allclose(w_graph[name], value, rtol=1e-3, atol=1e-4, err_msg=name)


RECURRENT = [
    ("lstm", {"units": 5, "activation": "tanh", "use_bias": True, "return_sequences": True}),
    ("lstm", {"units": 4, "activation": "tanh", "use_bias": False, "return_sequences": False, "go_backwards": True}),
    ("gru", {"units": 5, "activation": "tanh", "use_bias": True, "return_sequences": True, "reset_after": True}),
    ("gru", {"units": 3, "activation": "tanh", "use_bias": False, "return_sequences": False, "reset_after": True}),
    ("simple_rnn", {"units": 4, "activation": "tanh", "use_bias": True, "return_sequences": True}),
    ("simple_rnn", {"units": 4, "activation": "relu", "use_bias": True, "return_sequences": False}),
]


def _recurrent(kind: str, attrs: dict, features: int = 3, device: str = "cpu"):
    from nnspec.backends.torch.layers import Recurrent

    a = {"return_sequences": False, "go_backwards": False, "dropout": 0.0, "recurrent_activation": "sigmoid", **attrs}
    torch.manual_seed(0)
    layer = Recurrent(kind, features, a)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-0.5, 0.5)
    return layer.to(device)


@pytest.mark.parametrize(("kind", "attrs"), RECURRENT, ids=[f"{k}-{i}" for i, (k, _) in enumerate(RECURRENT)])
def test_fused_recurrent_kernels_compute_kerass_recurrence(kind, attrs):
    """The fused kernel (Keras's one bias + a constant zero recurrent bias, gates re-ordered) gives the
    step-by-step recurrence's outputs and gradients; the layer's parameters stay Keras's three."""
    layer = _recurrent(kind, attrs)
    assert layer.fused
    assert [n for n, _ in layer.named_parameters()] == ["kernel", "recurrent_kernel"] + (["bias"] if attrs["use_bias"] else [])
    assert not list(layer.buffers())
    x = torch.randn(6, 7, 3, requires_grad=True)
    fused = layer(x)
    fused.square().sum().backward()
    grads_fused = [p.grad.clone() for p in layer.parameters()] + [x.grad.clone()]
    layer.zero_grad()
    x.grad = None
    stepwise = layer._stepwise(x.flip(1) if attrs.get("go_backwards") else x)
    stepwise.square().sum().backward()
    grads_step = [p.grad for p in layer.parameters()] + [x.grad]
    torch.testing.assert_close(fused, stepwise, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads_fused, grads_step, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_grus_reset_before_and_unusual_activations_stay_step_by_step():
    assert not _recurrent("gru", {"units": 3, "activation": "tanh", "use_bias": True, "reset_after": False}).fused
    assert not _recurrent("lstm", {"units": 3, "activation": "relu", "use_bias": True}).fused
    assert not _recurrent("lstm", {"units": 3, "activation": "tanh", "use_bias": True,
                                   "recurrent_activation": "hard_sigmoid"}).fused
    assert not _recurrent("simple_rnn", {"units": 3, "activation": "elu", "use_bias": True}).fused


@cuda
@pytest.mark.parametrize(("kind", "attrs"), RECURRENT, ids=[f"{k}-{i}" for i, (k, _) in enumerate(RECURRENT)])
def test_cudnn_recurrent_kernels_compute_kerass_recurrence(kind, attrs):
    layer = _recurrent(kind, attrs, device="cuda")
    x = torch.randn(6, 7, 3, device="cuda")
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False), torch.no_grad():
        fused = layer(x)
        stepwise = layer._stepwise(x.flip(1) if attrs.get("go_backwards") else x)
    torch.testing.assert_close(fused, stepwise, atol=1e-5, rtol=1e-4)


MEMBERS = """
name: members
inputs:
  img: {shape: [28, 28, 1]}
encoder:
  - conv2d: {filters: 4, kernel_size: 3, activation: relu}
  - batch_norm
  - max_pool2d: {pool_size: 2}
head:
  - flatten
  - dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
data: {dataset: fashion_mnist, test_limit: 200}
train: {epochs: 2, batch_size: 32, seed: 5, validation_split: 0.2, gradient_clip: 1.0,
        schedule: {type: cosine}, early_stopping: {patience: 1}}
"""


def _member_files(run_dir: str, i: int) -> set[str]:
    import os

    root = os.path.join(run_dir, "members", str(i))
    return {os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names}


def test_members_trained_together_equal_members_trained_one_by_one(write_spec, fashion_mnist_dir, tmp_path):
    """Same seeds, no dropout: the batched ensemble's members are the one-by-one members (float rounding
    aside), with the same run directory, history, checkpoints and test scores."""
    import json
    import os

    from nnspec.backends.weights import read_weights
    from nnspec.training.run import train

    runs = {}
    for together in (False, True):
        spec = nnspec.load(write_spec(MEMBERS.replace("early_stopping: {patience: 1}}",
                                                      f"early_stopping: {{patience: 1}}, "
                                                      f"parallel_ensemble: {str(together).lower()}}}")))
        runs[together] = train(spec, backend="torch", limit=200, ensemble=2, out=str(tmp_path / str(together)),
                               progress=False)
    one, batched = runs[False], runs[True]
    assert batched.ensemble["members"] == 2
    assert len({m.history[0]["seconds"] for m in batched.members}) == 1  # one batched epoch for all members
    for i in range(2):
        assert _member_files(one.run_dir, i) == _member_files(batched.run_dir, i)
        a = read_weights(os.path.join(one.run_dir, "members", str(i), "weights", "last.safetensors"))
        b = read_weights(os.path.join(batched.run_dir, "members", str(i), "weights", "last.safetensors"))
        for name in a:
            np.testing.assert_allclose(b[name], a[name], rtol=1e-3, atol=1e-4, err_msg=f"member {i} {name}")
        ha, hb = one.members[i].history, batched.members[i].history
        assert [r["epoch"] for r in ha] == [r["epoch"] for r in hb]
        for ra, rb in zip(ha, hb, strict=True):
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
                assert rb[key] == pytest.approx(ra[key], rel=1e-3, abs=1e-4), (i, key)
        assert batched.members[i].metrics["test_accuracy"] == pytest.approx(one.members[i].metrics["test_accuracy"],
                                                                             abs=1 / 200 + 1e-9)
        record = json.load(open(os.path.join(batched.run_dir, "members", str(i), "settings.json")))
        assert record["seed"] == 5 + i and record["member"] == i
    assert batched.ensemble["ensemble_test_accuracy"] == pytest.approx(one.ensemble["ensemble_test_accuracy"],
                                                                       abs=2 / 200)


def test_a_batched_members_optimizer_file_loads_into_a_one_member_loop(write_spec, fashion_mnist_dir, tmp_path):
    """Checkpoints of members trained together have the one-member format, so either way resumes them."""
    import os

    from nnspec.backends.torch.ensemble import EnsembleLoop
    from nnspec.backends.torch.loop import Loop

    spec, settings, data = _setup(write_spec, "train: {epochs: 1, batch_size: 64, seed: 0}\n",
                                  base=SMALL.replace("rate: 0.3", "rate: 0.0"))
    members = [settings.replace(seed=s, member=s) for s in range(2)]
    ensemble = EnsembleLoop(spec, members, data, None)
    ensemble.fit(0, 1, [Sink(m, -(-len(data) // 64)) for m in members])
    path = str(tmp_path / "opt.pt")
    ensemble.member(1).save_optimizer(path)
    single = Loop(spec, members[1], data, None)
    single.set_weights(ensemble.member(1).get_weights())
    single.load_optimizer(path)
    state = single.optimizer.state_dict()["state"]
    stacked = ensemble.optimizer.state_dict()["state"]
    assert state.keys() == stacked.keys() and os.path.getsize(path) > 0
    for idx in state:
        torch.testing.assert_close(state[idx]["exp_avg"], stacked[idx]["exp_avg"][1])
    ensemble.load_member_optimizers([path, path])
    torch.testing.assert_close(ensemble.optimizer.state_dict()["state"][0]["exp_avg"][0], state[0]["exp_avg"])


@cuda
def test_a_captured_batched_ensemble_matches_the_eager_batched_ensemble(write_spec, fashion_mnist_dir):
    from nnspec.backends.torch.ensemble import EnsembleLoop

    spec, settings, data = _setup(write_spec, "train: {epochs: 2, batch_size: 32, seed: 0}\n", device="cuda",
                                  base=SMALL.replace("rate: 0.3", "rate: 0.0"))
    weights = {}
    for graphs in (False, True):
        members = [settings.replace(seed=s, member=s, cuda_graphs=graphs) for s in range(3)]
        ensemble = EnsembleLoop(spec, members, data, None)
        ensemble.fit(0, 2, [Sink(m, -(-len(data) // 32)) for m in members])
        assert (ensemble.graph is not None) == graphs
        weights[graphs] = [ensemble.member(i).get_weights() for i in range(3)]
    for eager, captured in zip(weights[False], weights[True], strict=True):
        for name, value in eager.items():
            np.testing.assert_allclose(captured[name], value, rtol=1e-3, atol=1e-4, err_msg=name)
