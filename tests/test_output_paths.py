"""Every command that writes refuses an output path it cannot create, in one line, before any work."""
import numpy as np
import pytest

from cellsynth.cli import main
from cellsynth.errors import InputError
from cellsynth.io import check_writable, write_tiff

BAD = "/proc/cellsynth-x/out"  # /proc accepts no new entries, even for root


def _dataset(root, shape, n=2):
    rng = np.random.default_rng(0)
    for i in range(n):
        lab = np.zeros(shape, np.uint16)
        sl = tuple(slice(s // 4, s // 2) for s in shape)
        lab[sl] = 1
        img = (rng.poisson(5, shape) + 40 * (lab > 0)).astype(np.uint16)
        write_tiff(root / "images" / f"s{i}.tif", img)
        write_tiff(root / "masks" / f"s{i}.tif", lab)
    return root


@pytest.fixture(scope="module", params=[(32, 32), (8, 16, 16)], ids=["2d", "3d"])
def data(request, tmp_path_factory):
    return _dataset(tmp_path_factory.mktemp("d"), request.param)


COMMANDS = {
    "simulate": lambda d: ["simulate", "--preset", "nuclei2d-dsb", "--n", "1", "--out", BAD],
    "generate": lambda d: ["generate", "--preset", "nuclei2d-dsb", "--renderer", "physics", "--n", "1",
                           "--out", BAD],
    "train diffusion": lambda d: ["train", "diffusion", "--images", str(d / "images"), "--out", BAD,
                                  "--steps", "1"],
    "segment train": lambda d: ["segment", "train", "--data", str(d), "--out", BAD, "--steps", "1"],
    "segment predict": lambda d: ["segment", "predict", "--model", "classical", "--images", str(d / "images"),
                                  "--out", BAD],
    "fit": lambda d: ["fit", "--images", str(d / "images"), "--preset", "nuclei2d-dsb", "--out", BAD + ".yaml"],
    "benchmark": lambda d: ["benchmark", "syn2real", "--train-images", str(d / "images"), "--test", str(d),
                            "--out", BAD, "--steps", "1", "--n", "1", "--renderers", "physics"],
    "adapt": lambda d: ["adapt", "--images", str(d / "images"), "--masks", str(d / "masks"), "--out", BAD],
    "demo": lambda d: ["demo", "--out", BAD],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_unwritable_output_is_one_line_error(command, data, capsys):
    assert main(COMMANDS[command](data) + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be created or written" in err[0] and "/proc/cellsynth-x/out" in err[0]


def test_check_writable_leaves_nothing_and_refuses_files_as_folders(tmp_path):
    assert check_writable(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert check_writable(tmp_path / "new.yaml", folder=False) == tmp_path / "new.yaml"
    assert list(tmp_path.iterdir()) == []  # the probe is removed, no folder created
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_writable(f)
    with pytest.raises(InputError, match="is not a folder"):
        check_writable(f / "sub")
    with pytest.raises(InputError, match="is a folder, not a file"):
        check_writable(tmp_path, folder=False)
