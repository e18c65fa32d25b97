"""The ``fatlib`` command: ``fatlib book ...``, ``fatlib campaign ...``, ``fatlib train ...``."""
from __future__ import annotations

import sys

USAGE = """usage: fatlib COMMAND [ARGS]

commands:
  book      execute the book's notebooks with papermill and render the Jupyter Book
  campaign  exhaustive stuck-at campaign of a checkpoint (FAT Algorithm 1)
  train     train (or reuse) CNV at a scale profile and print its metrics

`fatlib COMMAND --help` describes each."""


def train_main(argv: list[str] | None = None) -> int:
    """``fatlib train``: train CNV W*w*A*a* with a scheme at a profile (artifact store reuse)."""
    import argparse
    import json

    from .training import train_cnv

    ap = argparse.ArgumentParser(prog="fatlib train", description=train_main.__doc__)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--weight-bits", type=int, default=1)
    ap.add_argument("--act-bits", type=int, default=1)
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--scheme", default="sat", choices=["sat", "fat-m1", "fat-m2", "dropout2d"])
    ap.add_argument("--pattern", default=None, choices=["channel", "pixel", "element"])
    ap.add_argument("--p", type=float, default=0.0, help="probability in [0, 1]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--store", default=None, help="artifact store root (default $FATLIB_STORE)")
    args = ap.parse_args(argv)
    result = train_cnv(args.profile, args.weight_bits, args.act_bits, dataset=args.dataset,
                       scheme=args.scheme, pattern=args.pattern, p=args.p, seed=args.seed,
                       data_dir=args.data_dir, device=args.device, store=args.store)
    summary = {k: v for k, v in result.metrics.items() if k != "history"}
    print(json.dumps({"artifact": str(result.path), "reused": result.reused, **summary}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "book":
        from .book import main as book_main

        return book_main(rest)
    if command == "campaign":
        from .campaign import main as campaign_main

        return campaign_main(rest)
    if command == "train":
        return train_main(rest)
    print(f"fatlib: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
