"""Where media live and what the store guarantees: `manage.py media_store`.

    filesystem: MEDIA_ROOT and its free space
    s3:         endpoint, bucket, prefix, whether the bucket answers, versioning and object
                lock (WORM) as the bucket reports them, and what originals get written with

Then this host's worker cache (folder, bound, bytes in it). Exit status 1 when the store
cannot be reached: run it on every host after configuring it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from analysis.media import storage, stores
from analysis.media.stores import cache


class Command(BaseCommand):
    help = "Show the media store, its object lock (WORM) and this host's worker cache."

    def handle(self, *args: Any, **options: Any) -> None:
        store = stores.current()
        if store.local:
            self.stdout.write(f"store: filesystem at {settings.MEDIA_ROOT}")
            self.stdout.write(f"free: {storage.free_bytes() / 2**30:.1f} GiB")
            return
        self._object_store(store)
        entries = cache.current().entries()
        used = sum(size for _, size, _ in entries)
        self.stdout.write(
            f"worker cache: {settings.MEDIA_CACHE_DIR}, {len(entries)} copies, "
            f"{used / 2**30:.2f} of {settings.MEDIA_CACHE_BYTES / 2**30:.2f} GiB"
        )

    def _object_store(self, store) -> None:
        where = settings.S3_ENDPOINT_URL or "AWS"
        self.stdout.write(f"store: s3 {where}, bucket {store.bucket}, prefix {store.prefix!r}")
        try:
            versioning = store.client.get_bucket_versioning(Bucket=store.bucket)
        except Exception as exc:
            raise CommandError(f"the bucket does not answer: {exc}") from exc
        self.stdout.write(f"versioning: {versioning.get('Status') or 'off'}")
        if store.worm:
            self.stdout.write(
                f"object lock: on; originals kept {settings.S3_OBJECT_LOCK_DAYS} days in "
                f"{settings.S3_OBJECT_LOCK_MODE} mode, audit seals {settings.AUDIT_SEAL_LOCK_DAYS}"
                f" days in {settings.AUDIT_SEAL_LOCK_MODE} mode"
            )
        else:
            why = "S3_OBJECT_LOCK=off" if settings.S3_OBJECT_LOCK == "off" else "not on this bucket"
            self.stdout.write(f"object lock: off ({why}): originals are plain objects")
