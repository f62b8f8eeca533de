"""An S3-compatible object store (SeaweedFS, MinIO, Ceph RGW, NetApp StorageGRID, AWS S3).

The connection comes from django-storages' S3Storage (credentials, endpoint, addressing);
the operations it has no call for go to its boto3 client directly: ranged GETs (a player
seeking in a 2 GiB video gets the bytes it asks for, never the whole object), multipart
uploads from a local file in constant memory, object lock, and deleting every version.

Object lock (WORM): with S3_OBJECT_LOCK=auto an original gets a retention period
(S3_OBJECT_LOCK_MODE, S3_OBJECT_LOCK_DAYS) when the bucket was created with object lock
enabled; the store is asked once per process. A bucket without it (or a store that does not
implement it) gets plain objects and one warning in the log. Deleting a locked original
removes every version the lock allows; a version the lock keeps (COMPLIANCE mode, or
credentials without s3:BypassGovernanceRetention) stays hidden behind a delete marker until
its retention ends, and the log says so.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

log = logging.getLogger(__name__)
MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}


def _code(exc) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _oserror(exc, key: str) -> OSError:
    if _code(exc) in MISSING:
        return FileNotFoundError(errno.ENOENT, "not in the object store", key)
    return OSError(errno.EIO, f"object store: {_code(exc) or type(exc).__name__}: {exc}", key)


class _Body:
    """A GET's streaming body as a reader with read(n), close() and `with`."""

    def __init__(self, body, etag: str = "") -> None:
        self.body, self.etag = body, etag

    def read(self, size: int = -1) -> bytes:
        return self.body.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        self.body.close()

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ObjectStore:
    local = False

    def __init__(self, storage, prefix: str = "") -> None:
        self.storage = storage  # storages.backends.s3.S3Storage
        self.bucket = storage.bucket_name
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_settings(cls) -> ObjectStore:
        from botocore.config import Config
        from storages.backends.s3 import S3Storage

        storage = S3Storage(
            bucket_name=settings.S3_BUCKET,
            endpoint_url=settings.S3_ENDPOINT_URL or None,
            region_name=settings.S3_REGION,
            access_key=settings.S3_ACCESS_KEY_ID or None,
            secret_key=settings.S3_SECRET_ACCESS_KEY or None,
            addressing_style="path" if settings.S3_ENDPOINT_URL else None,
            # Checksums only where the API requires them: many S3-compatible stores do not
            # speak the newer default integrity headers. Our own SHA-256 covers the bytes.
            client_config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=20,
            ),
            default_acl=None,
            querystring_auth=False,
        )
        return cls(storage, settings.S3_PREFIX)

    @property
    def client(self):
        return self.storage.connection.meta.client

    def _key(self, key: str) -> str:
        return self.prefix + key

    @cached_property
    def worm(self) -> bool:
        """Whether originals get a retention period: the bucket has object lock enabled."""
        if settings.S3_OBJECT_LOCK == "off":
            return False
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except Exception as exc:  # noqa: BLE001 - botocore's errors; any means "not here"
            log.warning(
                "object store %s: no object lock (%s); originals are stored without a "
                "retention period", self.bucket, _code(exc) or exc,
            )  # fmt: skip
            return False
        return config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def _lock_args(self, mode: str = "", days: int = 0) -> dict:
        until = datetime.now(UTC) + timedelta(days=days or settings.S3_OBJECT_LOCK_DAYS)
        return {
            "ObjectLockMode": mode or settings.S3_OBJECT_LOCK_MODE,
            "ObjectLockRetainUntilDate": until,
        }

    def put_bytes(self, key: str, data: bytes, *, lock_mode: str, lock_days: int) -> None:
        """A small object written once, under a retention lock where the bucket has one."""
        extra = {}
        if self.worm:
            md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
            extra = self._lock_args(lock_mode, lock_days) | {"ContentMD5": md5}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except Exception as exc:
            raise _oserror(exc, key) from exc

    def put(self, source: Path, key: str, *, original: bool) -> None:
        """Upload the local file (in parts past S3_MULTIPART_BYTES), then remove it."""
        from boto3.s3.transfer import TransferConfig

        part = settings.S3_MULTIPART_BYTES
        transfer = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=4
        )
        extra = {"ContentType": "application/octet-stream"}
        if original and self.worm:
            # A write with a retention period must carry a checksum (AWS refuses it without).
            extra.update(self._lock_args(), ChecksumAlgorithm="SHA256")
        try:
            self.client.upload_file(
                str(source), self.bucket, self._key(key), ExtraArgs=extra, Config=transfer
            )
        except Exception as exc:
            raise _oserror(exc, key) from exc
        source.unlink(missing_ok=True)

    def size(self, key: str) -> int | None:
        try:
            return int(
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
            )
        except Exception as exc:
            if _code(exc) in MISSING:
                return None
            raise _oserror(exc, key) from exc

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        args = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            reply = self.client.get_object(**args)
        except Exception as exc:
            raise _oserror(exc, key) from exc
        return _Body(reply["Body"], reply.get("ETag", ""))  # type: ignore[return-value]

    def etag(self, key: str) -> str | None:
        """The object's current ETag (it changes when the object does); None when gone."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ETag"]
        except Exception as exc:
            if _code(exc) in MISSING:
                return None
            raise _oserror(exc, key) from exc

    def delete(self, key: str) -> None:
        self._delete(self._key(key), exact=True)

    def delete_prefix(self, prefix: str) -> None:
        self._delete(self._key(prefix), exact=False)

    def _delete(self, prefix: str, *, exact: bool) -> None:
        """Every version (and delete marker) under `prefix`. A version its object lock keeps
        is hidden behind a new delete marker, and the log says until when it stays."""
        found = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in self._versions(prefix)
            if not exact or v["Key"] == prefix
        ]
        kept = set()
        for first in range(0, len(found), 1000):
            reply = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": found[first : first + 1000], "Quiet": True},
                BypassGovernanceRetention=True,
            )
            for error in reply.get("Errors", []):
                kept.add(error.get("Key"))
                log.warning(
                    "object store kept %s (version %s) under its object lock: %s %s",
                    error.get("Key"), error.get("VersionId"), error.get("Code"),
                    error.get("Message"),
                )  # fmt: skip
        if exact and not found:
            kept.add(prefix)  # a store that lists no versions: delete the plain object
        for key in sorted(kept):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _versions(self, prefix: str) -> list[dict]:
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        versions: list[dict] = []
        for page in pages:
            versions += page.get("Versions", []) + page.get("DeleteMarkers", [])
        return versions

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        found = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(key[len(self.prefix) :] for key in found)

    def local_path(self, key: str) -> Path | None:
        return None
