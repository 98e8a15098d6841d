"""Glue for thin rule scripts: route output to the rule's log and bad input to one line.

A rule script is::

    from sonodiff.rule import run_rule
    def main(smk): ...   # turn snakemake.input/params/output into arguments, call sonodiff
    run_rule(snakemake, main)
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Any, Callable

from sonodiff.errors import InputError


def run_rule(smk: Any, main: Callable[[Any], None]) -> None:
    """Run ``main(smk)`` with stdout/stderr and logging sent to ``smk.log[0]``.

    An :class:`InputError` becomes one line (``where: reason``) in the log and on the original
    stderr, and exit status 1; any other exception is logged with its traceback and re-raised.
    """
    log_path = smk.log[0] if len(smk.log) else None
    stderr = sys.stderr
    handle = open(log_path, "w", buffering=1) if log_path else None
    if handle:
        sys.stdout = sys.stderr = handle
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        main(smk)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        if handle:
            print(f"error: {err}", file=stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc(file=sys.stderr)
        raise
    finally:
        if handle:
            sys.stdout, sys.stderr = sys.__stdout__, stderr
            handle.close()
