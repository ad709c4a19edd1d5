"""Training, backend-neutral: ``nnspec.train(spec, backend=...)`` -> :class:`run.RunResult`.

- :mod:`.settings`   the spec's ``train:`` section + overrides -> one resolved dict (settings.json)
- :mod:`.run`        the run: data, loop, history, checkpoints, early stopping, test scores, plots,
                     ensembles, ``--resume``, NaN handling; ``evaluate`` and ``open_model``
- :mod:`.rundir`     the run directory's fixed layout and atomic records
- :mod:`.control`    learning-rate schedules and the best-value monitor (plain Python)
- :mod:`.metrics`    losses and metrics on numpy arrays (the test scores of both backends)
- :mod:`.ensemble`   averaged softmax, confidence and disagreement
- :mod:`.plots`      curves, confusion matrix, predicted vs true (matplotlib Agg, lazy)
- :mod:`.predict`    predictions for .npy/.npz/image files
- :mod:`.torch_loop`, :mod:`.keras_loop`   the only modules here that import a framework
"""
