"""Where attachment bytes live: one small protocol, a disk store (the default) and an S3-compatible one.

Keys are content-addressed (``original/ab/cd/<sha256>``), so a file is written once however often it is sent,
and a key says nothing about the case or the person. Nothing here is reachable by a static URL: the API reads
through :class:`Storage` after checking who asks.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from config.settings import Settings


class StorageError(Exception):
    """The store could not be reached or refused the operation (never a message with personal data)."""


class Storage(Protocol):
    name: str

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; a key that is not there is no error (``rongtuk db archive --delete``)."""

    async def exists(self, key: str) -> bool: ...


def content_key(kind: str, sha256: str) -> str:
    """The key of a blob: its kind (original, public) and its hash, fanned out over two directory levels."""
    return f"{kind}/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class DiskStorage:
    """Files under a root directory; written to a temporary file and renamed, so a reader never sees half."""

    name = "disk"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StorageError("key_outside_root")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():
            return  # content-addressed: the same key holds the same bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await asyncio.to_thread(self._put, key, data)
        except OSError as exc:
            raise StorageError(type(exc).__name__) from None

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except OSError as exc:
            raise StorageError(type(exc).__name__) from None

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._path(key).unlink, missing_ok=True)
        except OSError as exc:
            raise StorageError(type(exc).__name__) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)


class S3Storage:
    """A bucket of any S3-compatible store (AWS S3, MinIO, Ceph), through boto3 with bounded timeouts."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        assert settings.s3_bucket
        self.bucket = settings.s3_bucket
        self.prefix = settings.s3_prefix
        timeout = settings.s3_timeout_seconds
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 3}),
        )

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await asyncio.to_thread(
                self._client.put_object,
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                ContentType=content_type,
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(type(exc).__name__) from None

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        try:
            return await asyncio.to_thread(read)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(type(exc).__name__) from None

    async def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:  # S3 answers a missing key's deletion with success
            await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=self.prefix + key)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(type(exc).__name__) from None

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise StorageError(type(exc).__name__) from None
        except BotoCoreError as exc:
            raise StorageError(type(exc).__name__) from None
        return True


def storage_from_settings(settings: Settings) -> Storage:
    """The configured store: S3-compatible when ``attachment_storage`` is "s3", files on disk otherwise."""
    if settings.attachment_storage == "s3":
        return S3Storage(settings)
    return DiskStorage(settings.attachment_root)
