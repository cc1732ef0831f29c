from typer.testing import CliRunner

import chromafuse
from chromafuse.cli import app


def test_version_option_prints_the_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"chromafuse {chromafuse.__version__}"


def test_folder_weight_needs_name_and_number():
    result = CliRunner().invoke(app, ["train", ".", "--out", "x", "--steps", "1", "--folder-weight", "bsds500=lots"])
    assert result.exit_code == 2 and "expected NAME=FACTOR with a number" in result.output
