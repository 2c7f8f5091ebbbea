"""``python -m samlora.versioning``: the steps ``workflow/scripts/run-target.sh`` runs
around Snakemake for a DVC stage, and the ``plots`` stage.

    check-presets   refuse a params.yaml edit an active preset would override
    adopt [--force] copy recorded Snakemake metadata where it is missing (all: --force)
    record          record the metadata of the outputs inside the DVC output folders
    plots           rewrite plots/ (training curves, summary bars) for dvc plots
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from samlora.config import ConfigError
from samlora.versioning import plots, presets, records

log = logging.getLogger("samlora.versioning")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samlora.versioning",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check-presets", "adopt", "record", "plots"])
    parser.add_argument("--force", action="store_true",
                        help="adopt: replace existing metadata too (after dvc checkout)")
    parser.add_argument("--repo", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "check-presets":
            presets.check(args.repo)
        elif args.command == "adopt":
            records.adopt(args.repo, force=args.force)
        elif args.command == "record":
            records.record(args.repo)
        else:
            log.info("wrote %d plot files", plots.write_plots(args.repo))
    except (ConfigError, OSError, ValueError) as err:
        log.error("%s", " ".join(str(err).split()))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
