"""Kernel backends: where the runner's kernels run."""

from .base import Kernel, KernelBackend
from .local import LocalBackend, LocalKernel

__all__ = ["Kernel", "KernelBackend", "LocalBackend", "LocalKernel"]
