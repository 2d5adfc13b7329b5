"""deepcuts: music recommendations that go beyond the hits.

Data flows one way: :mod:`deepcuts.data` -> :mod:`deepcuts.models` -> :mod:`deepcuts.rerank`
-> :mod:`deepcuts.evaluation` -> :mod:`deepcuts.serving`. Lower layers never import higher ones.
"""

from deepcuts._version import __version__
from deepcuts.exceptions import DataError, DeepcutsError, NotFittedError, UnknownIdError

__all__ = ["DataError", "DeepcutsError", "NotFittedError", "UnknownIdError", "__version__"]
