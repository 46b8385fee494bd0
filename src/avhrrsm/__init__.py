"""avhrrsm: global daily 0.05° surface soil moisture from AVHRR with deep learning."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("avhrrsm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"
