"""The package's outer contract: what ``--help`` loads, and the import paths users' code relies on."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "cv2", "gradio", "skimage")


@pytest.mark.parametrize("argv", [["--help"], ["colorize", "--help"], ["train", "--help"], ["evaluate", "--help"]])
def test_help_answers_without_loading_torch_opencv_or_gradio(argv):
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from chromafuse.cli import app\n"
        f"result = CliRunner().invoke(app, {argv!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "print('Usage' in result.output, 'Options' in result.output)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["True True", "[]"]


def test_documented_and_earlier_import_paths_give_the_same_objects():
    import chromafuse.engine
    import chromafuse.inference

    assert chromafuse.Colorizer is chromafuse.engine.Colorizer is chromafuse.inference.Colorizer
    from chromafuse.color.fullres import join_lab, lightness_of

    assert chromafuse.engine.join_lab is join_lab and chromafuse.engine.lightness_of is lightness_of
    from chromafuse.training import train

    assert chromafuse.train is train
    with pytest.raises(AttributeError, match="no attribute 'colourise'"):
        chromafuse.colourise  # noqa: B018
