"""What every attachment store must do with a key it holds, checked the same way for each (disk, S3)."""

from __future__ import annotations

import pytest

from attachments.storage import Storage, StorageError


async def assert_deletes_and_says_so(store: Storage, key: str) -> None:
    """``key`` (stored) exists, is deleted, a second deletion is no error, and then it neither exists nor reads."""
    assert await store.exists(key)
    await store.delete(key)
    await store.delete(key)  # gone already: no error
    assert not await store.exists(key)
    with pytest.raises(StorageError):
        await store.get(key)
