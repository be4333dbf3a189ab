"""``python -m skillbank.runtime.action_recognition``: the same as the ``action_recognition`` command."""
import sys

from .entrypoint import main

sys.exit(main())
