"""The JSON Schema of a spec: a section skeleton, plus one fragment per layer type.

The skeleton is written here; each layer's fragment comes from its catalog entry. The
published file ``nnspec/schemas/nnspec.schema.json`` (shipped in the wheel, ``nnspec schema --path``;
``schemas/nnspec.schema.json`` links to it) is :func:`full_schema` written out (``nnspec schema``);
a test fails when the committed file is stale.
"""

from __future__ import annotations

from nnspec import choices

SCHEMA_ID = "https://nnspec.dev/schemas/nnspec.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

LOSSES = tuple(choices.LOSSES)  # the registries of nnspec.choices are the one list of each kind
METRICS = tuple(choices.METRICS)
OPTIMIZERS = tuple(choices.OPTIMIZERS)
SCHEDULES = tuple(choices.SCHEDULES)
DATASETS = ("fashion_mnist", "npz", "csv", "image_folder")
SECTION_LISTS = ("encoder", "backbone", "decoder", "head")

_pos_int = {"type": "integer", "minimum": 1}
_pos_num = {"type": "number", "exclusiveMinimum": 0}
_unit = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
# A model name, possibly with `${...}` parts filled in from `vars` (`resnet${depth}`); once filled in it
# must match MODEL_NAME.
MODEL_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
MODEL_NAME_TEMPLATE = r"^(?:[A-Za-z_]|\$\{[^{}]*\})(?:[A-Za-z0-9_.-]|\$\{[^{}]*\})*$"


def _obj(props: dict, description: str, required: tuple = ()) -> dict:
    s = {"type": "object", "description": description, "properties": props, "additionalProperties": False}
    if required:
        s["required"] = list(required)
    return s


LOSS_ONE = {
    "anyOf": [
        {"enum": list(LOSSES)},
        _obj(
            {
                "type": {"enum": list(LOSSES), "description": "Loss function."},
                "weight": {"type": "number", "minimum": 0, "description": "Weight in the total loss. Default: 1."},
                **choices.option_schema(choices.LOSSES),
            },
            "A loss with options.",
            ("type",),
        ),
    ]
}

OPTIMIZER = {
    "anyOf": [
        {"enum": list(OPTIMIZERS)},
        _obj(
            {
                "type": {"enum": list(OPTIMIZERS), "description": "Optimiser."},
                "lr": {**_pos_num, "description": "Learning rate. Default: " + ", ".join(
                    f"{o.name} {o.default_lr:g}" for o in choices.OPTIMIZERS.values()) + "."},
                **choices.option_schema(choices.OPTIMIZERS),
            },
            "An optimiser with settings.",
            ("type",),
        ),
    ]
}

SCHEDULE = _obj(
    {
        "type": {"enum": list(SCHEDULES),
                 "description": "Learning-rate schedule, applied per epoch (one_cycle: per step)."},
        **choices.option_schema(choices.SCHEDULES),
    },
    "A learning-rate schedule.",
    ("type",),
)

EARLY_STOPPING = {
    "anyOf": [
        {"type": "boolean"},
        _obj(
            {
                "monitor": {"type": "string", "description": "Metric watched. Default: val_loss."},
                "patience": {"type": "integer", "minimum": 0, "description": "Epochs without improvement. Default: 5."},
                "min_delta": {"type": "number", "minimum": 0, "description": "Smallest change that counts. Default: 0."},
                "mode": {"enum": ["min", "max", "auto"], "description": "Default: auto (max for accuracy)."},
                "restore_best_weights": {"type": "boolean", "description": "Go back to the best epoch. Default: true."},
            },
            "Stop when the monitored metric stops improving.",
        ),
    ]
}

TRAIN = _obj(
    {
        "epochs": {**_pos_int, "description": "Passes over the training data. Default: 10."},
        "batch_size": {**_pos_int, "description": "Examples per step. Default: 64."},
        "optimizer": OPTIMIZER,
        "lr": {**_pos_num, "description": "Learning rate (shortcut for optimizer.lr)."},
        "schedule": SCHEDULE,
        "early_stopping": EARLY_STOPPING,
        "metrics": {
            "type": "array",
            "items": {"enum": list(METRICS)},
            "description": "Metrics reported per epoch. Default: accuracy for classification, mae for regression.",
        },
        "top_k": {**_pos_int, "description": "k for top_k_accuracy. Default: 5."},
        "gradient_clip": {**_pos_num, "description": "Clip the global gradient norm to this value."},
        "label_smoothing": {**_unit, "description": "Label smoothing for categorical/binary cross-entropy "
                            "(a loss's own label_smoothing wins). Default: 0."},
        "seed": {"type": "integer", "minimum": 0, "description": "Seed for weights, shuffling and splits. Default: 0."},
        "ensemble": {**_pos_int, "description": "Train this many members with different seeds and average them."},
        "validation_split": {**_unit, "description": "Fraction of training data held out. Default: 0.1."},
        "device": {"anyOf": [{"enum": ["auto", "cpu", "cuda"]}, {"type": "string", "pattern": "^cuda:[0-9]+$"}],
                   "description": "Where to train: auto, cpu, cuda or one GPU by index (cuda:1). Default: auto."},
        "precision": {"enum": ["fp32", "bf16", "fp16"],
                      "description": "Autocast on GPUs: bf16, or fp16 with loss scaling (the CPU trains in fp32). "
                      "Default: fp32 (bf16 with mixed_precision)."},
        "mixed_precision": {"type": "boolean",
                            "description": "bf16 autocast on GPUs (ignored on the CPU); same as precision: bf16. "
                            "Default: false."},
        "steps_per_execution": {
            "anyOf": [_pos_int, {"enum": ["auto"]}],
            "description": "keras: training steps per host round trip. Default: auto (16 on the CPU, 32 on GPUs).",
        },
        "compile": {"type": "boolean", "description": "Compile the training step (torch.compile / XLA). Default: false."},
        "sync_batch_norm": {"type": "boolean",
                            "description": "With several data-parallel replicas, batch norm uses the statistics of "
                            "the global batch. Default: true when replicas > 1."},
        "cuda_graphs": {
            "anyOf": [{"type": "boolean"}, {"enum": ["auto"]}],
            "description": "torch on a GPU: capture the whole training step once as a CUDA graph and replay it "
                           "(true: required, false: eager steps). Default: auto (on GPUs, eager if capture fails).",
        },
        "parallel_ensemble": {
            "anyOf": [{"type": "boolean"}, {"enum": ["auto"]}],
            "description": "torch: train ensemble members together as one batched model (vmap) instead of one "
                           "after another. Default: auto (on GPUs).",
        },
        "log": {
            "type": "array",
            "items": {"enum": ["tensorboard", "mlflow"]},
            "description": "Experiment trackers that get each epoch's scalars, the settings, the summary, the "
            "diagram and the plots (optional packages: pip install tensorboard / mlflow).",
        },
    },
    "How to train: optimiser, schedule, batch size, epochs, early stopping, seed, ensemble.",
)

AUGMENT = _obj(
    {
        "flip_horizontal": {"type": "boolean", "description": "Random left-right flips."},
        "flip_vertical": {"type": "boolean", "description": "Random up-down flips."},
        "translate": {"type": "number", "minimum": 0, "maximum": 0.5, "description": "Random shifts, as a fraction of size."},
    },
    "Random augmentation of training images.",
)

_array_names = {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1}

DATA = _obj(
    {
        "dataset": {
            "enum": list(DATASETS),
            "description": "Where examples come from. Default: from path (.npz, .csv, a folder), else fashion_mnist.",
        },
        "path": {
            "type": "string",
            "description": "File or folder for npz, csv and image_folder data (relative to the spec); for fashion_mnist, "
            "a folder searched first for its IDX files.",
        },
        "test_path": {"type": "string", "description": "Separate test file or folder (same layout as path)."},
        "target": {
            "anyOf": [
                {"type": "string"},
                {**_array_names, "description": "Head name -> array (npz) or column (csv)."},
            ],
            "description": "The targets: csv column (default: target) or npz array (default: y); a mapping for several heads.",
        },
        "features": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {**_array_names, "description": "Input name -> npz array, for several inputs."},
            ],
            "description": "npz: the feature array (default: x), or a mapping per input. csv: the feature columns "
            "(default: every column but the target).",
        },
        "image_size": {
            "type": "array",
            "items": _pos_int,
            "minItems": 2,
            "maxItems": 2,
            "description": "image_folder: resize images to [height, width]. Default: the input's height and width.",
        },
        "validation_split": {
            **_unit,
            "description": "Fraction of training data held out for validation (seeded). Default: train.validation_split, else 0.1.",
        },
        "test_split": {**_unit, "description": "Fraction held out as test set when the data has none."},
        "limit": {**_pos_int, "description": "Use only the first N training examples."},
        "test_limit": {**_pos_int, "description": "Use only the first N test examples."},
        "scale": {
            "type": "number",
            "description": "Multiply inputs by this. Default: 1/255 for uint8 data (images), else 1.",
        },
        "normalize": {
            "anyOf": [
                {"enum": [True], "description": "Use the training split's own mean and standard deviation."},
                _obj(
                    {
                        "mean": {"type": "number", "description": "Subtracted from every input value. Default: 0."},
                        "std": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "description": "Divides every input value. Default: 1.",
                        },
                    },
                    "Fixed mean and standard deviation.",
                ),
            ],
            "description": "Subtract a mean and divide by a standard deviation (after scale).",
        },
        "labels": {
            "enum": ["one_hot", "integer", "auto"],
            "description": "Label encoding. Default: auto (integer labels; training one-hot encodes them when the loss needs it).",
        },
        "augment": AUGMENT,
        "rotate": _obj(
            {
                "range": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 180,
                    "description": "Angles drawn uniformly in [-range, +range] degrees (counter-clockwise).",
                },
                "target": {
                    "type": "boolean",
                    "description": "true: the angle (degrees) is the regression target; false: random rotation as training augmentation. "
                    "Default: true when head is given.",
                },
                "head": {
                    "type": "string",
                    "description": "Head that receives the angle in a multi-head spec; the others keep the class label.",
                },
            },
            "Rotate images by a random angle.",
            ("range",),
        ),
    },
    "Training data: a named data set or user files, splits, transforms and augmentation.",
)

EXPRESSION = {
    "type": "string",
    "pattern": r"^\$",
    "description": "A computed value: `$name` or `${2 * base}` using vars, block parameters, repeat_index, block_index, "
    "block_count and layer outputs (`${channels(input)}`, `${input.shape[-1] * 6}`, `${stride == 2}`).",
}

CONDITION = {
    "anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}],
    "description": "Include this only when the condition holds, e.g. `\"${stride == 2 and not last}\"`.",
}

_use_name = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 100}

BLOCK_USE = _obj(
    {
        "use": {"type": "string", "description": "Name of a block in `blocks:`."},
        "repeat": {"anyOf": [_pos_int, {"$ref": "#/$defs/expression"}], "description": "How many times. Default: 1."},
        "with": {"type": "object", "description": "Values for the block's parameters, evaluated in the caller's "
                 "scope (with this repetition's repeat_index and block_index)."},
        "name": {"anyOf": [_use_name, {"type": "array", "items": _use_name, "minItems": 1, "maxItems": 16}],
                 "description": "A name for the block's output (the last repetition's), read like a layer's: `inputs: [branch_a, branch_b]`. Also the base of the default prefix (NAME1_, "
                 "NAME2_, ...). A list names each of the outputs the block declares (`name: [x, p]`)."},
        "prefix": {"type": "string", "description": "Name template put in front of every named layer inside, "
                   "per repetition, e.g. `block2${letter(repeat_index)}_` gives block2a_expand_conv, "
                   "block2b_expand_conv. Default: BLOCK1_, BLOCK2_, ..."},
        "inputs": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                   "description": "The layer the block reads, or one per input the block declares. Default: the "
                   "previous layer."},
        "when": {"$ref": "#/$defs/condition"},
    },
    "Use a reusable block, optionally repeated.",
    ("use",),
)

GROUP = _obj(
    {
        "when": {"$ref": "#/$defs/condition"},
        "name": {"type": "string", "description": "A name for the group's output (its input when skipped)."},
        "layers": {"type": "array", "items": {"$ref": "#/$defs/layer"}, "minItems": 1,
                   "description": "The layers, applied in order."},
    },
    "Layers included together only when a condition holds.",
    ("layers",),
)


def skeleton() -> dict:
    """The section skeleton; layer items are checked separately, by type."""
    layer_list = {"type": "array", "items": {"$ref": "#/$defs/layer"}, "description": "Layers, applied in order."}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["inputs"],
        "properties": {
            "name": {"type": "string", "pattern": MODEL_NAME_TEMPLATE,
                     "description": "Model name (Keras's model name); `${...}` parts are filled in from `vars`, "
                     "e.g. `resnet${depth}`."},
            "description": {"type": "string"},
            "vars": {
                "type": "object",
                "description": "Named values usable as `$name` or `${expr}` in attributes.",
                "additionalProperties": {"type": ["number", "string", "boolean"]},
            },
            "require": {
                "type": "array",
                "description": "Conditions the `vars` must meet, each with the message a user gets when it fails: "
                "`- {check: \"${depth in [50, 101, 152]}\", message: \"depth is 50, 101 or 152\"}`.",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["check", "message"],
                    "properties": {
                        "check": {"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}],
                                  "description": "A condition on vars: `${size in [0, 1, 2]}`."},
                        "message": {"type": "string", "minLength": 1,
                                    "description": "What must hold, in words (the vars' values are added)."},
                    },
                },
            },
            "inputs": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "description": "Named graph inputs.",
                "additionalProperties": {"$ref": "#/$defs/layers/$defs/input"},
            },
            "blocks": {
                "type": "object",
                "description": "Reusable blocks with parameters.",
                "additionalProperties": _obj(
                    {
                        "params": {"type": "object", "description": "Parameters and their defaults; a default may "
                                   "use vars, earlier parameters, repeat_index, block_index and `input`."},
                        "inputs": {"type": "array", "minItems": 1, "maxItems": 16,
                                   "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                   "description": "Names for the layers the block reads, when it reads several "
                                   "(`[x, skip]`): references and layer outputs in expressions inside "
                                   "(`channels(skip)`); a use passes them with `inputs: [a, b]`. Default: one, `$input`."},
                        "outputs": {"type": "array", "minItems": 1, "maxItems": 16, "items": {"type": "string"},
                                    "description": "What the block gives, when it gives several (`[$prev, x]`: its "
                                    "last layer and its input `x`); a repeated use feeds them to the next "
                                    "repetition's inputs, and a use's `name: [a, b]` names them. Default: `[$prev]`."},
                        "layers": {**layer_list, "minItems": 1},
                    },
                    "A reusable block: `$input` names the block's (first) input inside it (`input` in expressions).",
                    ("layers",),
                ),
            },
            "encoder": layer_list,
            "backbone": layer_list,
            "decoder": layer_list,
            "head": layer_list,
            "heads": {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                "description": "Several named outputs, each a list of layers.",
                "additionalProperties": layer_list,
            },
            "loss": {
                "anyOf": [
                    {"$ref": "#/$defs/loss"},
                    {"type": "object", "additionalProperties": {"$ref": "#/$defs/loss"}},
                ],
                "description": "One loss, or one per head (with weights).",
            },
            "train": TRAIN,
            "data": DATA,
        },
    }


def layer_item_schema(types: dict) -> dict:
    """A layer item: `- flatten`, `- dense: 64`, `- conv2d: {filters: 8, ...}` or `- block: {...}`."""
    props = {}
    for name, cls in types.items():
        if name == "input":
            continue
        ref = {"$ref": f"#/$defs/layers/$defs/{name}"}
        options: list[dict] = [ref, {"type": "null"}]
        main = cls.main_attribute()
        if main:
            shorthand = {"anyOf": [cls.attributes[main].schema(), {"$ref": "#/$defs/expression"}]}
            options.insert(1, shorthand | {"description": f"Shorthand for {main}."})
        props[name] = {"anyOf": options, "description": cls.summary}
        for alias in cls.aliases:
            props[alias] = {"anyOf": options, "description": f"Alias of {name}."}
    props["block"] = {"$ref": "#/$defs/block_use"}
    props["group"] = {"$ref": "#/$defs/group"}
    no_required = sorted(n for n, c in types.items() if n != "input" and not any(a.required for a in c.attributes.values()))
    return {
        "anyOf": [
            {"enum": no_required},
            {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": props, "additionalProperties": False},
        ]
    }


def full_schema() -> dict:
    """The published schema: skeleton + every layer's fragment (expressions allowed)."""
    from nnspec.layers.base import initializer_schema
    from nnspec.layers.registry import all_types

    types = all_types(include_plugins=False)
    s = {"$schema": DRAFT, "$id": SCHEMA_ID, "title": "nnspec network spec", **skeleton()}
    s["$defs"] = {
        "layer": layer_item_schema(types),
        # Nested under $defs so that layer names which are JSON Schema keywords (maximum, minimum)
        # stay names: the container itself must be a valid schema.
        "layers": {"$defs": {name: cls.schema(strict=False) for name, cls in types.items()}},
        "loss": LOSS_ONE,
        "block_use": BLOCK_USE,
        "group": GROUP,
        "condition": CONDITION,
        "expression": EXPRESSION,
        "initializer": initializer_schema(),
    }
    return s
