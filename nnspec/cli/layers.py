"""`nnspec layers [TYPE]`: the catalog, with each layer's attributes and defaults."""

from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("type", nargs="?", help="show one layer type in detail")


def run(args, out, err) -> int:
    from nnspec.diagnostics import did_you_mean
    from nnspec.layers import registry

    types = registry.all_types()
    if args.type:
        name = registry.canonical(args.type)
        if name is None:
            hint = did_you_mean(args.type, registry.all_names_and_aliases())
            print(f"error: unknown layer type `{args.type}`" + (f"; {hint}" if hint else ""), file=err)
            return 1
        cls = types[name]
        print(f"{name}  (Keras {cls.keras_class})" + (f"  aliases: {', '.join(cls.aliases)}" if cls.aliases else ""), file=out)
        print(f"  {cls.summary}", file=out)
        if cls.main_attribute():
            print(f"  shorthand: `- {name}: VALUE` sets {cls.main_attribute()}", file=out)
        for key, attr in cls.all_attributes().items():
            flag = "required" if attr.required else f"default {attr.default!r}" if attr.default is not None else "optional"
            print(f"  {key:<22} {attr.expects():<40} {flag}", file=out)
            print(f"  {'':<22} {attr.doc}", file=out)
        return 0
    family = None
    for name, cls in sorted(types.items(), key=lambda kv: (kv[1].family, kv[0])):
        if cls.family != family:
            family = cls.family
            print(f"\n{family}:", file=out)
        attrs = ", ".join(
            (f"{k}*" if a.required else f"{k}={a.default!r}" if a.default is not None else k)
            for k, a in cls.attributes.items()
        )
        print(f"  {name:<22} {attrs}", file=out)
    print("\n* required. `nnspec layers TYPE` shows one type in detail.", file=out)
    return 0
