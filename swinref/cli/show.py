"""``swinref show``: pictures of the cyclic shift, the mask regions and one query's attention."""

from __future__ import annotations

from ..tools.show import render
from .common import add_force_argument, int_at_least


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "show",
        help="draw the cyclic shift, window regrouping, masks and attention",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--out", required=True, help="directory for the PNGs")
    p.add_argument(
        "--size", type=int_at_least(1), nargs=2, default=(8, 8), metavar=("H", "W"), help="token grid"
    )
    p.add_argument("--window", type=int_at_least(1), nargs="+", default=[4], metavar="M", help="M or Mh Mw")
    p.add_argument(
        "--shift",
        type=int_at_least(0),
        nargs="+",
        default=None,
        metavar="S",
        help="S or Sh Sw (default M//2)",
    )
    p.add_argument(
        "--query",
        type=int_at_least(0),
        nargs=2,
        default=None,
        metavar=("I", "J"),
        help="query token for the attention map (default: the last token)",
    )
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the random q, k and bias table")
    add_force_argument(p, "the PNGs")
    p.set_defaults(func=_run)


def _run(args) -> int:
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError as e:
        raise ImportError("swinref show needs matplotlib: pip install 'swinref[show]'") from e
    paths = render(
        args.out, tuple(args.size), args.window, args.shift, args.query, seed=args.seed, overwrite=args.force
    )
    for path in paths.values():
        print(path)
    return 0
