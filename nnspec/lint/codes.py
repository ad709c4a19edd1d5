"""The registry of warning codes: code -> what it flags and the one-line fix.

Messages are constants here (as mypy's ``errorcodes`` and ``message_registry``), so the
rules, the tests, ``nnspec check --list-warnings`` and the README cannot drift apart.
Each message and hint is a ``str.format`` template filled by the rule that fires it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WarningCode:
    """One kind of warning: its code, what it flags, and how to fix it (in general)."""

    code: str
    what: str  # one line for --list-warnings and the README
    fix: str  # one line: the usual fix


LOSS_ACTIVATION = WarningCode(
    "loss-activation", "the loss does not fit the output's activation (probabilities vs logits vs other values)",
    "end a classification head in softmax (sigmoid for yes/no) or say `from_logits: true`")
LOSS_UNITS = WarningCode(
    "loss-units", "the loss does not fit the number of output units",
    "categorical losses need one unit per class; binary_crossentropy one sigmoid unit per label")
FROM_LOGITS = WarningCode(
    "from-logits", "`from_logits` contradicts the head (it already applies softmax/sigmoid) or has no effect",
    "remove `from_logits: true`, or end the head in `activation: linear`")
SOFTMAX_ONE_UNIT = WarningCode(
    "softmax-one-unit", "softmax over a single unit always outputs 1.0",
    "use `activation: sigmoid` for one yes/no output, or one unit per class")
DENSE_DOMINATES = WarningCode(
    "dense-dominates", "a dense layer right after a large flatten holds > 90 % of the parameters",
    "shrink the feature map first (pooling, strides) or use global_avg_pool2d instead of flatten")
DROPOUT_OUTPUT = WarningCode(
    "dropout-output", "dropout with no weighted layer after it: it zeroes the predictions themselves",
    "move the dropout before the last dense layer, or remove it")
REDUNDANT_BIAS = WarningCode(
    "redundant-bias", "a bias next to batch normalisation does nothing (BN subtracts it, or BN's beta duplicates it)",
    "set `use_bias: false` on the layer beside the batch_norm")
EARLY_COLLAPSE = WarningCode(
    "early-collapse", "pooling/strides shrink a spatial dimension to 1 while windowed layers still follow",
    "remove a pooling layer, use fewer strides, or pad with `padding: same`")
UNUSED_VAR = WarningCode(
    "unused-var", "a `vars` entry no attribute or block uses",
    "use it (`$name`) or remove it")
UNUSED_BLOCK = WarningCode(
    "unused-block", "a block defined under `blocks:` that no `- block: {use: ...}` uses",
    "use it or remove it")
CLASS_COUNT = WarningCode(
    "class-count", "a classification head's units differ from the data set's number of classes",
    "give the last layer one unit per class (fashion_mnist: 10)")

#: Every warning code, in the order ``--list-warnings`` and the README show them.
WARNINGS: dict[str, WarningCode] = {w.code: w for w in (
    LOSS_ACTIVATION, LOSS_UNITS, FROM_LOGITS, SOFTMAX_ONE_UNIT, DENSE_DOMINATES, DROPOUT_OUTPUT, REDUNDANT_BIAS,
    EARLY_COLLAPSE, UNUSED_VAR, UNUSED_BLOCK, CLASS_COUNT,
)}

# -- messages (templates) ------------------------------------------------------------------
BCE_AFTER_SOFTMAX = ("binary_crossentropy after a {units}-unit softmax (`{node}`) scores each unit as its own yes/no "
                     "question: it does not train a {units}-way choice, and the accuracy it reports is per-unit "
                     "binary accuracy (looks high, means little)")
BCE_AFTER_SOFTMAX_HINT = ("use `categorical_crossentropy` (one-hot labels) or `sparse_categorical_crossentropy` "
                          "(integer labels)")
CE_NOT_PROBABILITIES = ("{loss} expects probabilities, but head `{head}` ends in {activation} (`{node}`), whose "
                        "outputs are not probabilities")
CE_NOT_PROBABILITIES_HINT = "set `activation: {wanted}` on `{node}`"
CE_IMPLICIT_LOGITS = ("head `{head}` ends in a linear `{node}` and {loss} does not say `from_logits`: training reads "
                      "the outputs as logits, but predictions and exports are logits, not probabilities")
CE_IMPLICIT_LOGITS_HINT = ("add `activation: {wanted}` to `{node}`, or write `loss: {{type: {loss}, from_logits: "
                           "true}}` to say the head outputs logits")
CE_SIGMOID_MULTI = ("categorical cross-entropy after a {units}-unit sigmoid (`{node}`): sigmoid outputs do not sum "
                    "to 1, so they are not a distribution over classes")
CE_SIGMOID_MULTI_HINT = ("use `activation: softmax` (one class per example), or `binary_crossentropy` (several labels "
                         "per example)")
CE_ONE_UNIT = ("{loss} over the 1-unit output of `{node}` is always 0 (one class is always right): the model "
               "learns nothing")
CE_ONE_UNIT_HINT = ("for a yes/no output use `binary_crossentropy` with a 1-unit sigmoid; for classes give `{node}` "
                    "one unit per class with softmax")
LOGITS_AFTER_PROBABILITIES = ("`from_logits: true`, but `{node}` already applies {activation}: the loss applies it "
                              "a second time")
LOGITS_AFTER_PROBABILITIES_HINT = "remove `from_logits: true`, or set `activation: linear` on `{node}`"
LOGITS_NO_EFFECT = "`from_logits` has no effect on {loss} (a regression loss)"
LOGITS_NO_EFFECT_HINT = "remove `from_logits`"
SOFTMAX_ONE = "softmax over {what} always outputs 1.0 (`{node}` {shape})"
SOFTMAX_ONE_HINT = "use `activation: sigmoid` for one yes/no output, or give `{node}` one unit per class"
DENSE_KERNEL = ("`{node}` holds {params:,} of the model's {total:,} parameters ({share:.1%}): its kernel reads all "
                "{features:,} values of `{flatten}` {shape}")
DENSE_KERNEL_HINT = ("shrink the feature map before `{flatten}` (pooling or strides), or use global_avg_pool2d instead "
                     "of flatten")
DROPOUT_LAST = ("dropout `{node}` has no layer with weights after it: during training it zeroes {rate:.0%} of head "
                "`{head}`'s outputs themselves")
DROPOUT_LAST_HINT = "move the dropout before the last dense layer, or remove it"
BIAS_BEFORE_BN = ("the bias of `{node}` does nothing: `{bn}` right after it subtracts the batch mean, bias included")
BIAS_BEFORE_BN_HINT = "set `use_bias: false` on `{node}`"
BIAS_AFTER_BN = ("`{bn}`'s beta (center) and the bias of `{node}` right after it do the same job: one of them is "
                 "redundant")
BIAS_AFTER_BN_HINT = "set `use_bias: false` on `{node}` (or `center: false` on `{bn}`)"
COLLAPSE = ("`{node}` shrinks the {axis} to 1 {shape}, and {count} windowed layer(s) still follow ({after}): their "
            "windows see a single position")
COLLAPSE_HINT = "remove a pooling layer before `{node}`, use fewer strides, or `padding: same`"
VAR_UNUSED = "var `{name}` is not used anywhere"
VAR_UNUSED_HINT = "use it as `${name}` or remove it"
BLOCK_UNUSED = "block `{name}` is never used"
BLOCK_UNUSED_HINT = "use it with `- block: {{use: {name}}}` or remove it"
CLASSES = "head `{head}` has {units} unit(s) but {dataset} has {classes} classes"
CLASSES_HINT = "give `{node}` {classes} units"
