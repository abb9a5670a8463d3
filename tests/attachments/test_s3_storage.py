"""The S3-compatible store against a local S3 server (moto's, on 127.0.0.1): what is put comes back, a
missing key or an unreachable store is a StorageError (the API answers 503), and a whole upload through the
API lands in the bucket."""

from __future__ import annotations

import boto3
import pytest

from attachments.storage import S3Storage, StorageError, content_key, storage_from_settings
from cli.devserver import free_port
from config.settings import Settings
from tests.attachments.s3 import BUCKET, s3_endpoint, s3_settings
from tests.attachments.storage_checks import assert_deletes_and_says_so

__all__ = ["s3_endpoint"]  # the fixture


async def test_put_and_get_through_a_local_s3_server(s3_endpoint: str) -> None:
    store = storage_from_settings(s3_settings(s3_endpoint))
    assert isinstance(store, S3Storage)
    key = content_key("original", "ef" * 32)
    await store.put(key, b"\xff\xd8\xffphoto", "image/jpeg")
    assert await store.get(key) == b"\xff\xd8\xffphoto"
    listed = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="ap-southeast-1", aws_access_key_id="t", aws_secret_access_key="t"
    ).list_objects_v2(Bucket=BUCKET)
    assert f"attachments/{key}" in [o["Key"] for o in listed["Contents"]]
    with pytest.raises(StorageError):
        await store.get(content_key("original", "00" * 32))
    await assert_deletes_and_says_so(store, key)


async def test_an_unreachable_store_is_a_storage_error() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    store = storage_from_settings(s3_settings(closed).model_copy(update={"s3_timeout_seconds": 1}))
    with pytest.raises(StorageError):
        await store.put(content_key("original", "aa" * 32), b"x", "image/png")
    with pytest.raises(StorageError):  # not "absent": the store could not say
        await store.exists(content_key("original", "aa" * 32))


def test_s3_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="S3_BUCKET"):
        Settings(env="test", attachment_storage="s3")
