"""``python -m samlora``: the workflow steps (see :mod:`samlora.cli`)."""

import sys

from samlora.cli import main

sys.exit(main(restart=True))
