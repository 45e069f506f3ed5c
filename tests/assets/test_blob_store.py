"""The content-addressed blob store: names, sharding, atomic writes, deletion, bad digests."""

from __future__ import annotations

import hashlib
import os

import pytest

from assets.blob_store import BlobStore
from fitroom.errors import FitroomError


def test_put_names_by_sha256_in_sharded_folders(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    data = b"glTF" + os.urandom(1000)
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.path(digest) == tmp_path / "blobs" / digest[:2] / digest[2:4] / digest
    assert store.exists(digest) and store.read(digest) == data
    with store.open(digest) as fh:
        assert fh.read(4) == b"glTF"
    assert list(store.digests()) == [digest]


def test_equal_content_is_stored_once_and_store_says_who_added_it(tmp_path):
    store = BlobStore(tmp_path)
    assert store.store(b"abc") == (hashlib.sha256(b"abc").hexdigest(), True)
    assert store.store(b"abc")[1] is False
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    assert store.store(src) == (hashlib.sha256(b"abc").hexdigest(), False)
    assert len(list(store.digests())) == 1


def test_put_file_streams_and_leaves_no_temporary_file(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "big.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one copy chunk
    src.write_bytes(data)
    digest = store.put_file(src)
    assert digest == hashlib.sha256(data).hexdigest() and store.read(digest) == data
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    assert oct(store.path(digest).stat().st_mode & 0o777) == "0o644"


def test_failed_write_leaves_nothing(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "missing.bin")
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_delete(tmp_path):
    store = BlobStore(tmp_path)
    digest = store.put(b"x")
    assert store.delete(digest) is True and not store.exists(digest)
    assert store.delete(digest) is False
    with pytest.raises(FitroomError) as e:
        store.open(digest)
    assert e.value.code == "no_blob"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "ABC", "0" * 63, "g" * 64, "0" * 64 + "/x", ""])
def test_a_digest_never_names_a_path_outside_the_store(tmp_path, bad):
    store = BlobStore(tmp_path)
    with pytest.raises(FitroomError) as e:
        store.path(bad)
    assert e.value.code == "bad_digest"
