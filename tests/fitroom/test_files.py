import stat

import numpy as np
import pytest

from fitroom.files import write_atomic


def test_write_atomic_bytes_text_and_writer(tmp_path):
    target = tmp_path / "new" / "a.bin"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    write_atomic(target, "é")
    assert target.read_bytes() == "é".encode("utf-8")
    write_atomic(tmp_path / "a.npz", lambda f: np.savez(f, x=np.arange(3)))
    assert np.load(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
