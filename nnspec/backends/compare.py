"""`nnspec summary SPEC --backend keras|torch`: the framework's own counts beside nnspec's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CountRow:
    name: str
    nnspec: tuple[int, int]  # (total, trainable)
    framework: tuple[int, int]

    @property
    def same(self) -> bool:
        return self.nnspec == self.framework


def framework_counts(spec, backend: str) -> dict[str, tuple[int, int]]:
    """Per layer (total, trainable) as the framework itself counts them, from a real built model."""
    from nnspec.backends import get_backend

    module = get_backend(backend)
    return module.layer_counts(module.build(spec, seed=0), spec)


def count_rows(spec, backend: str) -> list[CountRow]:
    mine = {n: (i.param_count, i.trainable_count) for n, i in spec.analysis.nodes.items()}
    theirs = framework_counts(spec, backend)
    return [CountRow(n, mine[n], theirs.get(n, (0, 0))) for n in spec.graph.nodes]


def compare_counts(spec, backend: str, out) -> int:
    """Print per-layer and total counts from nnspec and the framework; 1 when any differ."""
    rows = count_rows(spec, backend)
    label = {"keras": "Keras"}.get(backend, backend)
    width = max([len(r.name) for r in rows] + [5])
    print(f"\nParameter counts: nnspec vs {label} (total / trainable)", file=out)
    print(f"{'Layer':<{width}}  {'nnspec':>19}  {label:>19}", file=out)
    for r in rows:
        flag = "" if r.same else "  <-- differs"
        print(f"{r.name:<{width}}  {r.nnspec[0]:>10,} / {r.nnspec[1]:>6,}  {r.framework[0]:>10,} / {r.framework[1]:>6,}{flag}",
              file=out)
    total_n = (sum(r.nnspec[0] for r in rows), sum(r.nnspec[1] for r in rows))
    total_f = (sum(r.framework[0] for r in rows), sum(r.framework[1] for r in rows))
    print(f"{'Total':<{width}}  {total_n[0]:>10,} / {total_n[1]:>6,}  {total_f[0]:>10,} / {total_f[1]:>6,}", file=out)
    differing = [r.name for r in rows if not r.same]
    if differing or total_n != total_f:
        print(f"{label} counts differ from nnspec's for: {', '.join(differing) or 'the totals'}", file=out)
        return 1
    print(f"{label} agrees with nnspec: {total_n[0]:,} parameters, {total_n[1]:,} trainable.", file=out)
    return 0
