"""Fixtures: a kernel with the extension loaded, checked for its errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest_asyncio
from kernel_support import KernelSession, start_kernel

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import pytest


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def module_kernel(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[KernelSession]:
    async with start_kernel(tmp_path_factory.mktemp("kernel")) as session:
        yield session


@pytest_asyncio.fixture(loop_scope="module")
async def kernel(module_kernel: KernelSession) -> AsyncIterator[KernelSession]:
    """The module's kernel; fails the test if the extension logged errors."""
    yield module_kernel
    errors = await module_kernel.extension_errors()
    assert errors == [], "\n".join(errors)
