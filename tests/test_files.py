"""sdk.files: the one atomic writer leaves the destination whole or untouched."""
import pytest

from sdk.files import atomic_file, replace_directory, write_bytes_atomic


def test_atomic_file_replaces_only_when_the_block_finishes(tmp_path):
    path = tmp_path / "sub" / "weights.bin"
    write_bytes_atomic(path, b"old")
    with pytest.raises(RuntimeError), atomic_file(path) as partial:
        partial.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["weights.bin"]  # no temporary left behind
    write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new" and oct(path.stat().st_mode & 0o777) == "0o644"


def test_replace_directory_swaps_a_whole_folder_and_keeps_its_suffix(tmp_path):
    final = tmp_path / "graph.mlpackage"
    seen = []

    def write(folder):
        seen.append(folder.suffix)
        folder.mkdir()
        (folder / "model.bin").write_bytes(b"v1")

    assert replace_directory(final, write) == final and seen == [".mlpackage"]

    def fail(folder):
        folder.mkdir()
        raise OSError("disk full")

    with pytest.raises(OSError):
        replace_directory(final, fail)
    assert (final / "model.bin").read_bytes() == b"v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.mlpackage"]
