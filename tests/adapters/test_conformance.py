"""Both executors pass the adapter conformance suite (``lifecycle.testing.check_adapter``)."""

from __future__ import annotations

import pytest
from lifecycle_adapters.inprocess import InProcessAdapter
from lifecycle_adapters.local_process import SubprocessAdapter

from lifecycle.testing._adapters import check_adapter

pytestmark = pytest.mark.anyio


async def test_inprocess_conforms() -> None:
    await check_adapter(lambda: InProcessAdapter(grace=2.0))


@pytest.mark.slow
async def test_subprocess_conforms() -> None:
    await check_adapter(lambda: SubprocessAdapter(grace=2.0))


def test_importing_lifecycle_imports_no_executor() -> None:
    import subprocess
    import sys

    code = "import sys, lifecycle; print([m for m in sys.modules if 'lifecycle_adapters' in m])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
